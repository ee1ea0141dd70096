/**
 * Issue 22: a real Prometheus (Debian's, scripts/ensure-tools.sh prometheus) scraping the agent
 * the way Consul's docs configure it for Consul (`metrics_path: /v1/agent/metrics`,
 * `params: format: [prometheus]`): the target is up and the agent's metrics arrive with the
 * values the agent holds.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { http, startTestAgent, type TestAgent } from '../helpers/agent.js';
import { queryPrometheus, startPrometheus, type PrometheusProcess } from '../helpers/prometheus.js';
import { until } from '../helpers/until.js';

describe('Prometheus scraping /v1/agent/metrics?format=prometheus', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshwork-consul-prometheus-'));
  let agent: TestAgent;
  let prometheus: PrometheusProcess;

  before(async () => {
    agent = await startTestAgent();
    for (const id of ['prom-a-1', 'prom-b-1', 'prom-b-2']) {
      const r = await http(agent.url, 'PUT', '/v1/agent/service/register', {
        Name: id.slice(0, 6),
        ID: id,
        Port: 8080,
      });
      assert.equal(r.status, 200, r.text);
    }
    prometheus = await startPrometheus(dir, {
      consul: {
        target: new URL(agent.url).host,
        path: '/v1/agent/metrics',
        params: { format: ['prometheus'] },
      },
    });
  });
  after(async () => {
    prometheus.child.kill('SIGTERM');
    await prometheus.exited;
    await agent.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("scrapes the agent's metrics there, with the agent's values", async () => {
    await until(
      async () => (await queryPrometheus(prometheus.url, 'up{job="consul"}')) === 1,
      20_000,
      'the consul job up',
    );
    const instances = await until(
      () => queryPrometheus(prometheus.url, 'sum(meshwork_registry_instances{job="consul"})'),
      20_000,
      'the instance gauge scraped',
    );
    assert.equal(instances, 3, 'the three registered services');
  });
});
