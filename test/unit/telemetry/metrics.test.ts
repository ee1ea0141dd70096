import assert from 'node:assert/strict';
import perfHooks from 'node:perf_hooks';
import { afterEach, describe, it, mock } from 'node:test';
import { createMetricsRegistry } from '../../../src/telemetry/metrics.js';

/** The resolutions prom-client asked node's event-loop delay monitor for, while spied on. */
function spyOnEventLoopMonitor(): (number | undefined)[] {
  const asked: (number | undefined)[] = [];
  const real = perfHooks.monitorEventLoopDelay;
  mock.method(perfHooks, 'monitorEventLoopDelay', (o?: perfHooks.EventLoopMonitorOptions) => {
    asked.push(o?.resolution);
    return real(o);
  });
  return asked;
}

describe('createMetricsRegistry', () => {
  afterEach(() => mock.restoreAll());

  it("samples the event-loop delay at prom-client's 10 ms when not told otherwise", async () => {
    const asked = spyOnEventLoopMonitor();
    const registry = createMetricsRegistry();
    assert.deepEqual(asked, [10]);
    assert.match(await registry.metrics(), /^meshwork_nodejs_eventloop_lag_p99_seconds /m);
  });

  it('samples it every eventLoopSampleMs when given, and still exports the lag metrics', async () => {
    const asked = spyOnEventLoopMonitor();
    const registry = createMetricsRegistry({ eventLoopSampleMs: 100 });
    assert.deepEqual(asked, [100]);
    const text = await registry.metrics();
    for (const m of ['min', 'max', 'mean', 'p50', 'p90', 'p99'])
      assert.match(text, new RegExp(`^meshwork_nodejs_eventloop_lag_${m}_seconds `, 'm'));
  });
});
