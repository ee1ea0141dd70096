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
import { youngGenerationDrift } from './young-generation.js';

/** How often the young generation's bound is checked (it can only break under load). */
export const YOUNG_GENERATION_CHECK_MS = 10_000;

/** What is checked: the real ones by default, stand-ins in tests. */
export interface MemoryFallbackChecks {
  /** Why undici's index serves instead of its own files, if it does. */
  readonly undici: string | undefined;
  /** Why the young generation's bound does not hold, if it does not (checked again each time). */
  readonly youngGeneration: () => string | undefined;
}

const REAL_CHECKS: MemoryFallbackChecks = {
  undici: undiciParts.fallback,
  youngGeneration: () => youngGenerationDrift(),
};

/** Reports the fallbacks on `metrics` and `log`; the young generation every check interval. */
export function watchMemoryFallbacks(
  metrics: Registry,
  log: Logger,
  clock: Clock,
  checks: MemoryFallbackChecks = REAL_CHECKS,
): { stop(): void } {
  const gauge = new Gauge({
    name: 'meshwork_sidecar_memory_fallback',
    help: 'A memory saving this runtime refused (part: undici, young-generation): 1 while the sidecar runs without it, with more memory',
    labelNames: ['part'],
    registers: [metrics],
  });
  gauge.set({ part: 'undici' }, checks.undici === undefined ? 0 : 1);
  if (checks.undici !== undefined)
    log.warn({ part: 'undici', reason: checks.undici }, 'memory saving off: undici index loaded');
  gauge.set({ part: 'young-generation' }, 0);
  let timer: TimerHandle | undefined;
  const check = (): void => {
    const drift = checks.youngGeneration();
    if (drift !== undefined) {
      gauge.set({ part: 'young-generation' }, 1);
      log.warn({ part: 'young-generation', reason: drift }, 'memory saving off');
      timer = undefined; // once broken it stays broken: no more checks
      return;
    }
    timer = clock.setTimeout(check, YOUNG_GENERATION_CHECK_MS);
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
