/**
 * Client SDK lifecycle against a real agent (issue 6): self-registration with heartbeats,
 * discovery from a watched cache, static stability while the registry is down, re-registration
 * after it restarts empty, and a graceful shutdown that leaves consumers' caches before the
 * server closes, without a failed request.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { after, describe, it } from 'node:test';
import Fastify from 'fastify';
import { request } from 'undici';
import { createRegistryClient, type RegistryClient } from '../../src/client/registry-client.js';
import { createServiceDiscovery, type ServiceDiscovery } from '../../src/client/discovery.js';
import { registerSelf } from '../../src/client/self-registration.js';
import { createHealthEndpoints } from '../../src/client/health-endpoints.js';
import { installGracefulShutdown } from '../../src/client/graceful-shutdown.js';
import { FAST_CHECKS, startTestAgent, type TestAgent } from '../helpers/agent.js';
import { until } from '../helpers/until.js';
import { deferred } from '../helpers/deferred.js';
import type { WatchEvent } from '../../src/protocol/api-types.js';

async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as { port: number }).port;
}

describe('client SDK lifecycle against a real agent', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  const client = (url: string): RegistryClient => {
    const c = createRegistryClient({ addresses: [url], timeoutMs: 1_000 });
    cleanups.push(() => c.close());
    return c;
  };
  const discovery = (registry: RegistryClient): ServiceDiscovery => {
    const d = createServiceDiscovery({ registry, reconnectBaseMs: 20, reconnectMaxMs: 200 });
    cleanups.push(() => d.close());
    return d;
  };

  it('keeps answering from cache while the registry is down, and re-registers when it returns empty', async () => {
    let agent: TestAgent = await startTestAgent({ flags: FAST_CHECKS });
    const address = agent.url.replace('http://', '');
    cleanups.push(() => agent.stop());
    const reg = registerSelf({
      registry: client(agent.url),
      instance: {
        service: 'orders',
        id: 'orders-1',
        address: '127.0.0.1',
        port: 9001,
        checks: [{ ttl: '300ms' }],
      },
      retryBaseMs: 20,
      retryMaxMs: 200,
    });
    cleanups.push(() => reg.stop());
    await reg.whenRegistered();
    const d = discovery(client(agent.url));
    // The first heartbeat turns the TTL check passing; discovery sees it through its watch.
    await until(
      async () => (await d.discover('orders')).some((i) => i.id === 'orders-1'),
      5_000,
      'orders-1 discovered passing',
    );
    const stale = once(d, 'stale');
    await agent.stop();
    await stale;
    assert.deepEqual(
      (await d.discover('orders')).map((i) => i.id),
      ['orders-1'],
      'last-known instances while the registry is down',
    );
    assert.equal(d.state()[0]?.stale, true);
    assert.match(d.metricsText(), /meshwork_client_discovery_stale\{service="orders"\} 1/);

    // Same address, empty catalog (a restarted dev agent): the heartbeat's 404 re-registers.
    agent = await startTestAgent({ http: address, flags: FAST_CHECKS });
    const fresh = once(d, 'fresh');
    await until(
      () => agent.registry.listInstances('orders').instances.length === 1,
      10_000,
      're-registered',
    );
    await fresh;
    await until(
      async () => (await d.discover('orders')).some((i) => i.id === 'orders-1'),
      5_000,
      'orders-1 discovered again',
    );
    assert.equal(d.state()[0]?.stale, false);
  });

  it('drains on shutdown: consumers drop the instance before its server closes, and no request fails', async () => {
    const agent = await startTestAgent();
    cleanups.push(() => agent.stop());
    const servers: Server[] = [];
    const regs = [];
    for (const n of [1, 2]) {
      const health = createHealthEndpoints();
      const server = createServer((req, res) => {
        if (health.handle(req, res)) return;
        res.end(`payments-${n}`);
      });
      const port = await listen(server);
      servers.push(server);
      cleanups.push(() => void server.close());
      const reg = registerSelf({
        registry: client(agent.url),
        instance: { service: 'payments', id: `payments-${n}`, address: '127.0.0.1', port },
      });
      regs.push({ reg, health, server });
      await reg.whenRegistered();
    }
    const d = discovery(client(agent.url));
    await until(
      async () =>
        (await d.discover('payments', { status: ['passing', 'warning', 'critical', 'starting'] }))
          .length === 2,
      5_000,
      'two instances',
    );

    const leaving = regs[0]!;
    let droppedAt = 0;
    let closedAt = 0;
    d.on('change', (_service, instances) => {
      if (droppedAt === 0 && !instances.some((i) => i.id === 'payments-1'))
        droppedAt = performance.now();
    });
    leaving.server.once('close', () => (closedAt = performance.now()));
    let exited: number | undefined;
    const shutdown = installGracefulShutdown({
      registration: leaving.reg,
      health: leaving.health,
      servers: [leaving.server],
      drainMs: 60_000, // the agent reports `notified`, so this blind delay must not be used
      notifiedDrainMs: 200,
      signals: [],
      exit: (code) => (exited = code),
    });
    // A consumer that picks from its discovery cache, round-robin, while the instance leaves.
    let sent = 0;
    const failures: string[] = [];
    let stop = false;
    const load = (async () => {
      while (!stop) {
        const all = await d.discover('payments', {
          status: ['passing', 'warning', 'critical', 'starting'],
        });
        const target = all[sent++ % all.length];
        if (target === undefined) continue;
        try {
          const r = await request(`http://127.0.0.1:${target.port}/`);
          await r.body.text();
          if (r.statusCode !== 200) failures.push(`${target.id}: ${r.statusCode}`);
        } catch (err) {
          failures.push(`${target.id}: ${(err as Error).message}`);
        }
      }
    })();
    await shutdown.shutdown();
    stop = true;
    await load;
    assert.equal(exited, 0);
    assert.ok(droppedAt > 0, 'the consumer saw the deregistration');
    assert.ok(closedAt > droppedAt, 'the server closed only after consumers dropped it');
    assert.deepEqual(failures, []);
    assert.ok(sent > 10, `requests sent during the drain: ${sent}`);
    const ready = await request(
      `http://127.0.0.1:${(servers[1]!.address() as { port: number }).port}/health/ready`,
    );
    assert.equal(ready.statusCode, 200);
    assert.equal(((await ready.body.json()) as { status: string }).status, 'pass');
    await regs[1]!.reg.stop();
  });

  it('answers a deregistration with ?notify=true once the watchers were sent it, counting them', async () => {
    const agent = await startTestAgent();
    cleanups.push(() => agent.stop());
    const registry = client(agent.url);
    await registry.register({ service: 'ledger', id: 'ledger-1', address: '10.0.0.1', port: 80 });
    const d = discovery(client(agent.url)); // one stream on the service
    await d.ready('ledger');
    const blocking = registry.instances('ledger', {
      index: (await registry.instances('ledger')).index,
      waitMs: 10_000,
    });
    await until(
      () => agent.registry.watchers().blocking === 1,
      5_000,
      'the blocking query waiting',
    );
    const r = await registry.deregister('ledger-1', { notify: true });
    assert.deepEqual(r.notified, { streams: 1, blockingQueries: 1 });
    assert.deepEqual((await blocking).instances, []);
    const plain = await registry.register({ service: 'ledger', address: '10.0.0.2', port: 80 });
    assert.equal((await registry.deregister(plain.instance.id)).notified, undefined);
  });

  it(
    'keeps 40 watches and blocking queries open on one client, and its short requests answer',
    { timeout: 10_000 },
    async () => {
      const agent = await startTestAgent();
      cleanups.push(() => agent.stop());
      const registry = client(agent.url);
      const ac = new AbortController();
      cleanups.push(() => ac.abort());
      // More long-lived requests than the short requests' pool has connections (16).
      const n = 40;
      const snapshots = new Set<number>();
      const all = deferred<void>();
      const upserted = deferred<void>();
      for (let i = 0; i < n; i++) {
        const onEvent = (e: WatchEvent): void => {
          if (e.type === 'snapshot' && snapshots.add(i).size === n) all.resolve();
          if (e.type === 'upsert' && i === n - 1) upserted.resolve();
        };
        void registry.watch(`many-${i}`, onEvent, ac.signal).catch(() => undefined);
      }
      await all.promise;
      const blocking = registry.instances('many-1', {
        index: (await registry.instances('many-1')).index,
        waitMs: 10_000,
      });
      // With all of them open: a registration answers, and the last watch opened hears of it.
      await registry.register({ service: `many-${n - 1}`, address: '127.0.0.1', port: 80 });
      await upserted.promise;
      assert.ok((await registry.services()).services.some((s) => s.name === `many-${n - 1}`));
      await registry.register({ service: 'many-1', address: '127.0.0.1', port: 81 });
      assert.equal((await blocking).instances.length, 1, 'the blocking query answered the change');
    },
  );

  it('serves readiness from fastify in the format the agent’s HTTP check reads', async () => {
    const agent = await startTestAgent({ flags: FAST_CHECKS });
    cleanups.push(() => agent.stop());
    let dbUp = true;
    const health = createHealthEndpoints({
      readiness: {
        db: () => {
          if (!dbUp) throw new Error('db down');
        },
      },
    });
    const app = Fastify();
    health.registerFastify(app);
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    cleanups.push(() => app.close());
    const registry = client(agent.url);
    await registry.register({
      service: 'inventory',
      id: 'inventory-1',
      address: '127.0.0.1',
      port: Number(new URL(address).port),
      checks: [{ http: `${address}/health/ready`, interval: '50ms' }],
    });
    const status = () => agent.registry.getInstance('inventory-1').instance.status;
    await until(() => status() === 'passing', 5_000, 'passing');
    dbUp = false;
    await until(() => status() === 'critical', 5_000, 'critical once the db is down');
    const body = await (await request(`${address}/health/ready`)).body.json();
    assert.deepEqual(body, {
      status: 'fail',
      checks: {
        db: [{ status: 'fail', output: 'db down' }],
        draining: [{ status: 'pass' }],
      },
    });
  });
});
