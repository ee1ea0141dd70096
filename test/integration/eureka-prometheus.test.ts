/**
 * Debian's Prometheus with `eureka_sd_configs` against the agent's Eureka API (issue 23): it reads
 * the registry (XML), and with the usual relabelling keeps exactly the UP instances; queried
 * through its HTTP API (/api/v1/targets).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { http, useTestAgent } from '../helpers/agent.js';
import { startPrometheus, type PrometheusProcess } from '../helpers/prometheus.js';
import { until } from '../helpers/until.js';

interface Target {
  readonly discoveredLabels: Record<string, string>;
  readonly labels?: Record<string, string>;
}
interface Targets {
  readonly activeTargets: Target[];
  readonly droppedTargets: Target[];
}

function body(id: string, status: string, port: number): { instance: Record<string, unknown> } {
  return {
    instance: {
      instanceId: id,
      app: 'ORDERS',
      hostName: '127.0.0.1',
      ipAddr: '127.0.0.1',
      status,
      port: { $: port, '@enabled': 'true' },
      vipAddress: 'orders',
      dataCenterInfo: {
        '@class': 'com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo',
        name: 'MyOwn',
      },
    },
  };
}

describe('Prometheus eureka_sd_configs', () => {
  const agent = useTestAgent();
  let dir: string;
  let prometheus: PrometheusProcess | undefined;

  before(async () => {
    const base = agent().url;
    for (const [id, status, port] of [
      ['orders-up', 'UP', 9101],
      ['orders-down', 'DOWN', 9102],
      ['orders-starting', 'STARTING', 9103],
      ['orders-out', 'UP', 9104],
    ] as const) {
      const r = await http(base, 'POST', '/eureka/v2/apps/ORDERS', body(id, status, port));
      assert.equal(r.status, 204, r.text);
    }
    const out = await http(
      base,
      'PUT',
      '/eureka/v2/apps/ORDERS/orders-out/status?value=OUT_OF_SERVICE',
    );
    assert.equal(out.status, 200, out.text);
    dir = mkdtempSync(join(tmpdir(), 'meshwork-prom-eureka-'));
    prometheus = await startPrometheus(dir, {
      eureka: {
        yaml: [
          '    eureka_sd_configs:',
          `      - server: ${base}/eureka`,
          '        refresh_interval: 1s',
          '    relabel_configs:',
          '      - source_labels: [__meta_eureka_app_instance_status]',
          '        regex: UP',
          '        action: keep',
        ].join('\n'),
      },
    });
  });
  after(async () => {
    prometheus?.child.kill();
    await prometheus?.exited;
    rmSync(dir, { recursive: true, force: true });
  });

  it('discovers every instance and keeps exactly the UP one', async () => {
    const url = prometheus?.url ?? '';
    const targets = await until(
      async () => {
        const res = await request(`${url}/api/v1/targets?state=any`);
        const t = ((await res.body.json()) as { data: Targets }).data;
        return t.activeTargets.length + t.droppedTargets.length >= 4 ? t : undefined;
      },
      20_000,
      `Prometheus discovering the Eureka instances\n${prometheus?.log() ?? ''}`,
    );
    const id = (t: Target): string => t.discoveredLabels.__meta_eureka_app_instance_id ?? '';
    assert.deepEqual(targets.activeTargets.map(id), ['orders-up']);
    assert.equal(targets.activeTargets[0]?.discoveredLabels.__address__, '127.0.0.1:9101');
    assert.equal(targets.activeTargets[0]?.discoveredLabels.__meta_eureka_app_name, 'ORDERS');
    assert.deepEqual(targets.droppedTargets.map(id).sort(), [
      'orders-down',
      'orders-out',
      'orders-starting',
    ]);
    const statuses = Object.fromEntries(
      targets.droppedTargets.map((t) => [
        id(t),
        t.discoveredLabels.__meta_eureka_app_instance_status,
      ]),
    );
    assert.deepEqual(statuses, {
      'orders-down': 'DOWN',
      'orders-out': 'OUT_OF_SERVICE',
      'orders-starting': 'STARTING',
    });
  });
});
