/** A spy on node's event-loop delay monitor (prom-client's default metrics make one). */
import perfHooks from 'node:perf_hooks';
import { mock } from 'node:test';

/**
 * Spies on `perf_hooks.monitorEventLoopDelay` (undone by `mock.restoreAll()`): the answer fills
 * with the resolution of each monitor asked for, and the monitors are real.
 */
export function spyOnEventLoopMonitor(): (number | undefined)[] {
  const asked: (number | undefined)[] = [];
  const real = perfHooks.monitorEventLoopDelay;
  mock.method(perfHooks, 'monitorEventLoopDelay', (o?: perfHooks.EventLoopMonitorOptions) => {
    asked.push(o?.resolution);
    return real(o);
  });
  return asked;
}
