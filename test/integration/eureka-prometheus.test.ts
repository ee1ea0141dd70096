/**
 * Prometheus's Eureka service discovery against Meshwork (issue 23): Debian's `prometheus`
 * (scripts/ensure-tools.sh prometheus) with `eureka_sd_configs` pointed at the agent's
 * `/eureka/v2`, keeping the targets whose `__meta_eureka_app_instance_status` is UP (Prometheus
 * discovers every instance; the keep rule is how its docs select the healthy ones). Instances are
 * registered through Eureka (UP, DOWN, STARTING, an OUT_OF_SERVICE override) and through the
 * Consul API; the test reads Prometheus's `/api/v1/targets` until the active targets are exactly
 * the UP instances, then changes the registry and waits for Prometheus to follow.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { startTestAgent, type TestAgent } from '../helpers/agent.js';
import {
  prometheusTargets,
  startPrometheus,
  type DiscoveredTarget,
  type PrometheusProcess,
} from '../helpers/prometheus.js';
import { until } from '../helpers/until.js';

const STATUS = '__meta_eureka_app_instance_status';
const ID = '__meta_eureka_app_instance_id';

function instanceBody(app: string, id: string, status: string, ip: string): string {
  return JSON.stringify({
    instance: {
      instanceId: id,
      app,
      hostName: `${id}.example.internal`,
      ipAddr: ip,
      status,
      port: { $: 8080, '@enabled': 'true' },
      vipAddress: app.toLowerCase(),
      dataCenterInfo: {
        '@class': 'com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo',
        name: 'MyOwn',
      },
      metadata: { version: 'v1' },
    },
  });
}

const ids = (targets: readonly DiscoveredTarget[]): string[] =>
  targets.map((t) => t.discoveredLabels[ID] ?? '?').sort();

describe('Prometheus eureka_sd_configs against the Eureka API', () => {
  let agent: TestAgent;
  let prometheus: PrometheusProcess;
  let dir: string;

  const call = async (method: 'POST' | 'PUT' | 'DELETE', path: string, body?: string) => {
    const res = await request(agent.url + path, {
      method,
      ...(body === undefined ? {} : { body, headers: { 'content-type': 'application/json' } }),
    });
    const text = await res.body.text();
    assert.ok(res.statusCode < 300, `${method} ${path}: ${res.statusCode} ${text}`);
  };

  before(async () => {
    agent = await startTestAgent();
    dir = mkdtempSync(join(tmpdir(), 'meshwork-eureka-prometheus-'));
    await call('POST', '/eureka/v2/apps/ORDERS', instanceBody('ORDERS', 'o-1', 'UP', '10.1.0.1'));
    await call('POST', '/eureka/v2/apps/ORDERS', instanceBody('ORDERS', 'o-2', 'DOWN', '10.1.0.2'));
    await call(
      'POST',
      '/eureka/v2/apps/ORDERS',
      instanceBody('ORDERS', 'o-3', 'STARTING', '10.1.0.3'),
    );
    await call(
      'POST',
      '/eureka/v2/apps/PAYMENTS',
      instanceBody('PAYMENTS', 'p-1', 'UP', '10.2.0.1'),
    );
    await call(
      'POST',
      '/eureka/v2/apps/PAYMENTS',
      instanceBody('PAYMENTS', 'p-2', 'UP', '10.2.0.2'),
    );
    await call('PUT', '/eureka/v2/apps/PAYMENTS/p-2/status?value=OUT_OF_SERVICE');
    // Registered through the Consul API: Prometheus discovers it through Eureka too.
    await call(
      'PUT',
      '/v1/agent/service/register',
      JSON.stringify({ Name: 'web', ID: 'web-1', Address: '10.3.0.1', Port: 9000 }),
    );
    prometheus = await startPrometheus(dir, {
      eureka: {
        yaml: `    eureka_sd_configs:
      - server: ${agent.url}/eureka/v2
        refresh_interval: 1s
    relabel_configs:
      - source_labels: [${STATUS}]
        regex: UP
        action: keep`,
      },
    });
  });

  after(async () => {
    prometheus?.child.kill('SIGKILL');
    await prometheus?.exited;
    await agent?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('discovers exactly the UP instances, with their Eureka labels', async () => {
    const got = await until(
      async () => {
        const t = await prometheusTargets(prometheus.url, 'eureka');
        return ids(t.active).join(',') === 'o-1,p-1,web-1' && t.dropped.length === 3
          ? t
          : undefined;
      },
      20_000,
      'the UP instances discovered',
      250,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${prometheus.log()}`);
    });
    const byId = new Map(got.active.map((t) => [t.discoveredLabels[ID], t]));
    const o1 = byId.get('o-1')?.discoveredLabels ?? {};
    assert.equal(o1.__address__, 'o-1.example.internal:8080');
    assert.equal(o1.__meta_eureka_app_name, 'ORDERS');
    assert.equal(o1.__meta_eureka_app_instance_ip_addr, '10.1.0.1');
    assert.equal(o1.__meta_eureka_app_instance_vip_address, 'orders');
    assert.equal(o1.__meta_eureka_app_instance_port_enabled, 'true');
    assert.equal(o1.__meta_eureka_app_instance_datacenterinfo_name, 'MyOwn');
    assert.equal(o1.__meta_eureka_app_instance_metadata_version, 'v1');
    const web = byId.get('web-1')?.discoveredLabels ?? {};
    assert.equal(web.__meta_eureka_app_name, 'WEB');
    assert.equal(web.__address__, '10.3.0.1:9000');
    // The others were discovered too, with the status that dropped them.
    const dropped = new Map(got.dropped.map((t) => [t.discoveredLabels[ID], t.discoveredLabels]));
    assert.equal(dropped.get('o-2')?.[STATUS], 'DOWN');
    assert.equal(dropped.get('o-3')?.[STATUS], 'STARTING');
    assert.equal(dropped.get('p-2')?.[STATUS], 'OUT_OF_SERVICE');
  });

  it('follows the registry: a cancelled instance goes, a recovered one comes', async () => {
    await call('DELETE', '/eureka/v2/apps/PAYMENTS/p-1');
    await call('POST', '/eureka/v2/apps/ORDERS', instanceBody('ORDERS', 'o-2', 'UP', '10.1.0.2'));
    await call('DELETE', '/eureka/v2/apps/PAYMENTS/p-2/status');
    await until(
      async () => {
        const t = await prometheusTargets(prometheus.url, 'eureka');
        return ids(t.active).join(',') === 'o-1,o-2,p-2,web-1';
      },
      20_000,
      'the changed set discovered',
      250,
    );
  });
});
