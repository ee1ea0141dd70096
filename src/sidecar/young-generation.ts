/** @module Bounds V8's young generation in a process that must stay small (`meshwork sidecar`). */
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';

/** Whether boundYoungGeneration set the bound in this process. */
let boundSet = false;

/**
 * Keeps V8's young generation at its initial size (two 1 MB semi-spaces) instead of letting it
 * double up to two 16 MB ones under load: that growth was 15-30 MB of a sidecar's RSS at 1,000
 * rps (89 MB against 74 MB, docs/benchmarks.md "Sidecar memory"), for no measurable loss at that
 * rate: little of what a sidecar allocates per request survives, so scavenges of 1 MB stay short
 * (0.5-0.8% of a core at 1,000 rps, against 0.2%). At saturation it costs ~10% of the throughput
 * (docs/benchmarks.md, "Sidecar"): the opt-out below is for sidecars that must carry that. The maximum can only be set
 * at start (Node 20 has no execve to re-exec with it), so this sets the flag V8 reads at each
 * growth instead (SemiSpaceNewSpace::Grow multiplies the capacity by it), before the command's
 * modules load: loading them grows it already. Node flags the operator gave
 * (`--max-semi-space-size` in NODE_OPTIONS or on node's command line) win.
 * @returns Whether the bound was set.
 */
export function boundYoungGeneration(env: NodeJS.ProcessEnv, execArgv: readonly string[]): boolean {
  if ([...execArgv, env.NODE_OPTIONS ?? ''].some((a) => a.includes('semi-space'))) return false;
  setFlagsFromString('--semi-space-growth-factor=1');
  boundSet = true;
  return true;
}

/**
 * The new space V8 keeps while the bound holds is two 1 MB semi-spaces; past twice that, it grew.
 * Unbounded it grows to 32 MB under a sidecar's load.
 */
const HELD_NEW_SPACE_BYTES = 4 * 1024 * 1024;

/** The new space's size in bytes now (V8's public heap statistics). */
export function newSpaceBytes(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
}

/**
 * The self-test of {@link boundYoungGeneration}: `undefined` where the bound was not set here (the
 * operator's flags, or a process that never asked) or holds; else why it does not hold (V8 took
 * the flag but grew the new space anyway: a later V8 may drop or rename it). The caller warns and
 * counts it; the process works as it would without the bound, with more memory.
 */
export function youngGenerationDrift(
  set: boolean = boundSet,
  bytes: number = newSpaceBytes(),
): string | undefined {
  if (!set || bytes <= HELD_NEW_SPACE_BYTES) return undefined;
  return `the young generation grew to ${(bytes / 1048576).toFixed(1)} MB despite --semi-space-growth-factor=1 (this V8 ignores the flag)`;
}
