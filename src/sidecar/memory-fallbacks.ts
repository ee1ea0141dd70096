/**
 * @module The sidecar's memory savings that rest on something other than a public interface
 * (undici's own files, a V8 flag set at run time), each checked and, where this runtime refused
 * it, reported: a warning log and `meshwork_sidecar_memory_fallback{part}` 1. The sidecar then
 * works as it would without the saving, with more memory; nothing switches silently.
 */
import { Gauge, type Registry } from 'prom-client';
import { undiciParts } from '../client/undici.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { wasmTierDrift } from './wasm-tier.js';
import { youngGenerationDrift } from './young-generation.js';

/**
 * How often the young generation's bound and WebAssembly's tier are checked (the one can only
 * break under load, the other with the first undici connection).
 */
export const MEMORY_FALLBACK_CHECK_MS = 10_000;

/** What is checked: the real ones by default, stand-ins in tests. */
export interface MemoryFallbackChecks {
  /** Why undici's index serves instead of its own files, if it does. */
  readonly undici: string | undefined;
  /** Why the young generation's bound does not hold, if it does not (checked again each time). */
  readonly youngGeneration: () => string | undefined;
  /** Why WebAssembly was not kept at its baseline tier, if it was not (checked again each time). */
  readonly wasmTier: () => string | undefined;
}

const REAL_CHECKS: MemoryFallbackChecks = {
  undici: undiciParts.fallback,
  youngGeneration: () => youngGenerationDrift(),
  wasmTier: () => wasmTierDrift(),
};

/** The savings checked again every interval, by their `part` label. */
const PERIODIC = ['young-generation', 'wasm-tier'] as const;

/**
 * Reports the fallbacks on `metrics` and `log`: undici's at start, the young generation and
 * WebAssembly's tier every check interval until each breaks (once broken, it stays so).
 */
export function watchMemoryFallbacks(
  metrics: Registry,
  log: Logger,
  clock: Clock,
  checks: MemoryFallbackChecks = REAL_CHECKS,
): { stop(): void } {
  const gauge = new Gauge({
    name: 'meshwork_sidecar_memory_fallback',
    help: 'A memory saving this runtime refused (part: undici, young-generation, wasm-tier): 1 while the sidecar runs without it, with more memory',
    labelNames: ['part'],
    registers: [metrics],
  });
  gauge.set({ part: 'undici' }, checks.undici === undefined ? 0 : 1);
  if (checks.undici !== undefined)
    log.warn({ part: 'undici', reason: checks.undici }, 'memory saving off: undici index loaded');
  const checkOf = { 'young-generation': checks.youngGeneration, 'wasm-tier': checks.wasmTier };
  const holding = new Set<(typeof PERIODIC)[number]>(PERIODIC);
  for (const part of PERIODIC) gauge.set({ part }, 0);
  let timer: TimerHandle | undefined;
  const check = (): void => {
    for (const part of holding) {
      const drift = checkOf[part]();
      if (drift === undefined) continue;
      gauge.set({ part }, 1);
      log.warn({ part, reason: drift }, 'memory saving off');
      holding.delete(part); // once broken it stays broken: no more checks of it
    }
    if (holding.size === 0) {
      timer = undefined;
      return;
    }
    timer = clock.setTimeout(check, MEMORY_FALLBACK_CHECK_MS);
    timer.unref?.(); // never what keeps a process alive
  };
  check();
  return {
    stop: () => {
      if (timer !== undefined) clock.clearTimeout(timer);
      timer = undefined;
    },
  };
}
