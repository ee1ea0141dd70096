import assert from 'node:assert/strict';
import { afterEach, describe, it, mock } from 'node:test';
import { createMetricsRegistry, EVENT_LOOP_SAMPLE_MS } from '../../../src/telemetry/metrics.js';
import { spyOnEventLoopMonitor } from '../../helpers/event-loop-monitor.js';

describe('createMetricsRegistry', () => {
  afterEach(() => mock.restoreAll());

  it("samples the event-loop delay every 100 ms, not prom-client's 10, and exports the lag metrics", async () => {
    const asked = spyOnEventLoopMonitor();
    const registry = createMetricsRegistry();
    assert.equal(EVENT_LOOP_SAMPLE_MS, 100);
    assert.deepEqual(asked, [100]);
    const text = await registry.metrics();
    for (const m of ['min', 'max', 'mean', 'p50', 'p90', 'p99'])
      assert.match(text, new RegExp(`^meshwork_nodejs_eventloop_lag_${m}_seconds `, 'm'));
  });
});
