/**
 * @module The sidecar's control side against a real agent and a real app: registration with the
 * right address, port and meta; the app's health reported through the TTL check; re-registration
 * when the registry loses the instance; deregistration on stop; the snapshot subscription and
 * static stability from the persisted snapshot; the admin endpoints. Routing is the data path's
 * tests' business (sidecar-traffic.test.ts).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FAST_CHECKS, http, startTestAgent, type TestAgent } from '../helpers/agent.js';
import { startTestApp, startTestSidecar, type TestApp } from '../helpers/sidecar.js';
import { until } from '../helpers/until.js';
import type { InstanceDto } from '../../src/protocol/api-types.js';
import { SIDECAR_VERSION } from '../../src/sidecar/sidecar.js';
import { TLS_MODE_ISTIO, TLS_MODE_META } from '../../src/sidecar/sidecar-proxy.js';

describe('sidecar control side', () => {
  let agent: TestAgent;
  let app: TestApp;
  const dirs: string[] = [];
  const dataDir = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'sidecar-data-'));
    dirs.push(d);
    return d;
  };
  before(async () => {
    agent = await startTestAgent({ flags: FAST_CHECKS });
    app = await startTestApp();
  });
  after(async () => {
    await agent.stop();
    await app.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const instances = async (service: string): Promise<InstanceDto[]> =>
    (await http(agent.url, 'GET', `/api/v1/services/${service}/instances`)).body?.instances ?? [];
  const instance = async (service: string, id: string): Promise<InstanceDto | undefined> =>
    (await instances(service)).find((i) => i.id === id);

  it('registers the app with its inbound address, port and meta, and reports its health', async () => {
    app.healthy = true;
    const sidecar = await startTestSidecar({
      service: 'orders',
      appPort: app.port,
      appHealth: '/healthz',
      registry: [agent.url],
      dataDir: dataDir(),
      meta: ['version=v1'],
      tags: ['blue'],
    });
    try {
      const inboundPort = Number(new URL(sidecar.inboundUrl).port);
      const passing = await until(
        async () => {
          const i = await instance('orders', sidecar.instanceId);
          return i?.status === 'passing' ? i : undefined;
        },
        5_000,
        'registered and passing',
      );
      assert.equal(passing.address, '127.0.0.1');
      assert.equal(passing.port, inboundPort);
      assert.deepEqual(passing.tags, ['blue']);
      assert.deepEqual(passing.meta, {
        version: 'v1',
        'app-port': String(app.port),
        'sidecar-version': SIDECAR_VERSION,
        protocol: 'http',
        // The agent has a CA: the sidecar got a leaf and tells callers it speaks mTLS.
        [TLS_MODE_META]: TLS_MODE_ISTIO,
      });
      assert.equal(passing.source, 'sidecar');

      const ready = await until(
        async () => {
          const r = await http(sidecar.adminUrl, 'GET', '/ready');
          return r.status === 200 ? r : undefined;
        },
        5_000,
        'ready',
      );
      assert.deepEqual(ready.body, { status: 'ready' });
      assert.equal(
        (await http(sidecar.inboundUrl, 'GET', '/x')).text,
        'app',
        'inbound reaches the app',
      );

      app.healthy = false;
      const critical = await until(
        async () => {
          const i = await instance('orders', sidecar.instanceId);
          return i?.status === 'critical' ? i : undefined;
        },
        5_000,
        'critical',
      );
      assert.match(critical.checks[0]?.output ?? '', /HTTP GET .*\/healthz: 500/);
      const notReady = await http(sidecar.adminUrl, 'GET', '/ready');
      assert.equal(notReady.status, 503);
      assert.equal(notReady.body.status, 'app-unhealthy');

      app.healthy = true;
      await until(
        async () => (await instance('orders', sidecar.instanceId))?.status === 'passing',
        5_000,
        'passing again',
      );
      const metrics = (await http(sidecar.adminUrl, 'GET', '/metrics')).text;
      assert.match(metrics, /^meshwork_sidecar_registered 1$/m);
      assert.match(metrics, /^meshwork_sidecar_app_health 1$/m);
      assert.match(metrics, /^meshwork_sidecar_app_probes_total\{result="failed"\} [1-9]/m);
      assert.match(metrics, /^meshwork_sidecar_active_requests /m, 'the data path’s metrics too');
      assert.equal((await http(sidecar.adminUrl, 'GET', '/live')).status, 200);
    } finally {
      assert.equal(await sidecar.stop('test'), 0);
    }
    assert.equal(await instance('orders', sidecar.instanceId), undefined, 'deregistered');
  });

  it('registers again when the registry loses the instance', async () => {
    const sidecar = await startTestSidecar({
      service: 'lost',
      appPort: app.port,
      registry: [agent.url],
      dataDir: dataDir(),
    });
    try {
      await until(
        async () => (await instance('lost', sidecar.instanceId)) !== undefined,
        5_000,
        'registered',
      );
      const del = await http(agent.url, 'DELETE', `/api/v1/instances/${sidecar.instanceId}`);
      assert.equal(del.status, 200);
      assert.equal(await instance('lost', sidecar.instanceId), undefined);
      // The next heartbeat (every third of the 1 s TTL) answers 404: registered again.
      await until(
        async () => (await instance('lost', sidecar.instanceId))?.status === 'passing',
        5_000,
        're-registered and passing',
      );
      const metrics = (await http(sidecar.adminUrl, 'GET', '/metrics')).text;
      assert.match(metrics, /^meshwork_sidecar_registrations_total 2$/m);
    } finally {
      await sidecar.stop('test');
    }
  });

  it('applies the agent’s snapshot, persists it, and starts from it when no agent answers', async () => {
    const dir = dataDir();
    const first = await startTestSidecar({
      service: 'stable',
      appPort: app.port,
      registry: [agent.url],
      dataDir: dir,
      upstreams: ['payments=127.0.0.1:0'],
    });
    let version: string;
    try {
      const dump = await until(
        async () => {
          const d = await http(first.adminUrl, 'GET', '/config_dump');
          return d.body.version === null ? undefined : d.body;
        },
        5_000,
        'a snapshot in force',
      );
      version = dump.version;
      assert.equal(dump.from, 'agent');
      assert.equal(dump.snapshot.proxy.kind, 'sidecar');
      assert.equal(dump.snapshot.proxy.name, 'stable');
      assert.deepEqual(dump.snapshot.proxy.upstreams, ['payments']);
      assert.equal(first.proxy.snapshot()?.version, version);
      const proxies = await http(agent.url, 'GET', '/api/v1/mesh/proxies?local=true');
      assert.ok(
        JSON.stringify(proxies.body).includes(first.instanceId),
        'the agent lists the sidecar as a proxy',
      );
    } finally {
      await first.stop('test');
    }
    // A push may have come after the read above: the last one applied is the one persisted.
    version = first.proxy.snapshot()?.version as string;

    // No agent at all: the registry address is closed. The persisted snapshot serves.
    const second = await startTestSidecar({
      service: 'stable',
      appPort: app.port,
      registry: ['http://127.0.0.1:1'],
      dataDir: dir,
      upstreams: ['payments=127.0.0.1:0'],
    });
    try {
      const dump = await until(
        async () => {
          const d = await http(second.adminUrl, 'GET', '/config_dump');
          return d.body.version === null ? undefined : d.body;
        },
        5_000,
        'the persisted snapshot in force',
      );
      assert.equal(dump.version, version);
      assert.equal(dump.from, 'disk');
      const ready = await until(
        async () => {
          const r = await http(second.adminUrl, 'GET', '/ready');
          return r.status === 200 ? r : undefined;
        },
        5_000,
        'ready without an agent',
      );
      assert.equal(ready.status, 200);
    } finally {
      await second.stop('test');
    }
  });

  it('is not ready before a snapshot, and stops on POST /quitquitquit', async () => {
    const sidecar = await startTestSidecar({
      service: 'quitter',
      appPort: app.port,
      registry: ['http://127.0.0.1:1'],
      dataDir: dataDir(),
    });
    const notReady = await http(sidecar.adminUrl, 'GET', '/ready');
    assert.equal(notReady.status, 503);
    assert.equal(notReady.body.status, 'no-snapshot');
    assert.equal((await http(sidecar.adminUrl, 'GET', '/quitquitquit')).status, 405);
    assert.equal((await http(sidecar.adminUrl, 'POST', '/quitquitquit')).status, 200);
    assert.equal(await sidecar.ended, 0);
    await assert.rejects(http(sidecar.inboundUrl, 'GET', '/'), 'inbound closed');
    await assert.rejects(http(sidecar.outboundUrl, 'GET', '/'), 'outbound closed');
  });
});
