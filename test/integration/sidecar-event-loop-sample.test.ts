// The sidecar's data path samples its event-loop delay every SIDECAR_EVENT_LOOP_SAMPLE_MS (100
// ms), not prom-client's 10: that timer was what woke an idle sidecar 100 times a second. A real
// in-process sidecar, its metrics read as a scrape would.
import assert from 'node:assert/strict';
import perfHooks from 'node:perf_hooks';
import { after, describe, it, mock } from 'node:test';
import { silentLogger } from '../../src/core/logger.js';
import {
  SIDECAR_EVENT_LOOP_SAMPLE_MS,
  startSidecarProxy,
} from '../../src/sidecar/sidecar-proxy.js';
import { SIDECAR_PROXY_BASE } from '../helpers/sidecar.js';

describe('sidecar event-loop delay sampling', () => {
  after(() => mock.restoreAll());

  it('asks for one monitor at 100 ms and exports the lag metrics', async () => {
    const asked: (number | undefined)[] = [];
    const real = perfHooks.monitorEventLoopDelay;
    mock.method(perfHooks, 'monitorEventLoopDelay', (o?: perfHooks.EventLoopMonitorOptions) => {
      asked.push(o?.resolution);
      return real(o);
    });
    const sidecar = await startSidecarProxy(SIDECAR_PROXY_BASE, silentLogger);
    try {
      assert.equal(SIDECAR_EVENT_LOOP_SAMPLE_MS, 100);
      assert.deepEqual(asked, [100]);
      assert.match(await sidecar.metricsText(), /^meshwork_nodejs_eventloop_lag_p99_seconds /m);
    } finally {
      await sidecar.close();
    }
  });
});
