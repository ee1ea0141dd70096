/** @module Bounds V8's young generation in a process that must stay small (`meshwork sidecar`). */
import { setFlagsFromString } from 'node:v8';

/**
 * Keeps V8's young generation at its initial size (two 1 MB semi-spaces) instead of letting it
 * double up to two 16 MB ones under load: that growth was 20-30 MB of a sidecar's RSS at 1,000
 * rps (107 MB against 80 MB with --max-semi-space-size=1, docs/benchmarks.md "Sidecar memory"),
 * for no measurable loss of throughput or latency: what a sidecar keeps per request is small, so
 * scavenges of 1 MB stay short. The flag can only be set at start, so this sets the one V8 reads
 * at each growth instead, before the command's modules load (loading them grows it already) (SemiSpaceNewSpace::Grow multiplies the capacity by it). Node flags the
 * operator gave (`--max-semi-space-size` in NODE_OPTIONS or on node's command line) win.
 */
export function boundYoungGeneration(env: NodeJS.ProcessEnv, execArgv: readonly string[]): boolean {
  if ([...execArgv, env.NODE_OPTIONS ?? ''].some((a) => a.includes('semi-space'))) return false;
  setFlagsFromString('--semi-space-growth-factor=1');
  return true;
}
