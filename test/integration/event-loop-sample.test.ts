// Every Meshwork process samples its event-loop delay every EVENT_LOOP_SAMPLE_MS (100 ms), not
// prom-client's 10: that timer was what woke an idle sidecar or agent 100 times a second. A real
// in-process sidecar and a real agent, their metrics read as a scrape would.
import assert from 'node:assert/strict';
import { afterEach, describe, it, mock } from 'node:test';
import { silentLogger } from '../../src/core/logger.js';
import { startSidecarProxy } from '../../src/sidecar/sidecar-proxy.js';
import { EVENT_LOOP_SAMPLE_MS } from '../../src/telemetry/metrics.js';
import { http, startTestAgent } from '../helpers/agent.js';
import { SIDECAR_PROXY_BASE } from '../helpers/sidecar.js';
import { spyOnEventLoopMonitor } from '../helpers/event-loop-monitor.js';

describe('event-loop delay sampling', () => {
  afterEach(() => mock.restoreAll());

  it('a sidecar asks for one monitor at 100 ms and exports the lag metrics', async () => {
    const asked = spyOnEventLoopMonitor();
    const sidecar = await startSidecarProxy(SIDECAR_PROXY_BASE, silentLogger);
    try {
      assert.equal(EVENT_LOOP_SAMPLE_MS, 100);
      assert.deepEqual(asked, [100]);
      assert.match(await sidecar.metricsText(), /^meshwork_nodejs_eventloop_lag_p99_seconds /m);
    } finally {
      await sidecar.close();
    }
  });

  it('an agent does too', async () => {
    const asked = spyOnEventLoopMonitor();
    const agent = await startTestAgent();
    try {
      assert.deepEqual(asked, [100]);
      const metrics = (await http(agent.url, 'GET', '/metrics')).text;
      assert.match(metrics, /^meshwork_nodejs_eventloop_lag_p99_seconds /m);
    } finally {
      await agent.stop();
    }
  });
});
