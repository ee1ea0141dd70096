/** @module Bounds V8's young generation in a process that must stay small (`meshwork sidecar`). */
import { setFlagsFromString } from 'node:v8';

/**
 * Keeps V8's young generation at its initial size (two 1 MB semi-spaces) instead of letting it
 * double up to two 16 MB ones under load: that growth was 15-30 MB of a sidecar's RSS at 1,000
 * rps (89 MB against 74 MB, docs/benchmarks.md "Sidecar memory"), for no measurable loss of
 * throughput or latency: little of what a sidecar allocates per request survives, so scavenges
 * of 1 MB stay short (0.5-0.8% of a core at 1,000 rps, against 0.2%). The maximum can only be set
 * at start (Node 20 has no execve to re-exec with it), so this sets the flag V8 reads at each
 * growth instead (SemiSpaceNewSpace::Grow multiplies the capacity by it), before the command's
 * modules load: loading them grows it already. Node flags the operator gave
 * (`--max-semi-space-size` in NODE_OPTIONS or on node's command line) win.
 * @returns Whether the bound was set.
 */
export function boundYoungGeneration(env: NodeJS.ProcessEnv, execArgv: readonly string[]): boolean {
  if ([...execArgv, env.NODE_OPTIONS ?? ''].some((a) => a.includes('semi-space'))) return false;
  setFlagsFromString('--semi-space-growth-factor=1');
  return true;
}
