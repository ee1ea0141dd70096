/** The npm `consul` package (2.x), unmodified, against the Consul API of a real agent on port 0. */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import Consul from 'consul';
import { startTestAgent, type TestAgent } from '../helpers/agent.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the client answers arbitrary JSON
type Any = any;

/** Re-reads `read()` with blocking queries until `done` holds, or fails after `deadlineMs`. */
async function eventually<T>(
  read: () => Promise<T>,
  done: (v: T) => boolean,
  deadlineMs = 10_000,
): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = await read();
    if (done(v)) return v;
    if (Date.now() > end) assert.fail(`condition not reached: ${JSON.stringify(v)}`);
    await new Promise((r) => setImmediate(r));
  }
}

describe('npm consul 2.x against the Consul API', () => {
  let agent: TestAgent;
  let target: Server;
  let targetUrl: string;
  let consul: Consul;

  before(async () => {
    agent = await startTestAgent();
    target = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    targetUrl = `http://127.0.0.1:${(target.address() as AddressInfo).port}/health`;
    const { hostname, port } = new URL(agent.url);
    consul = new Consul({ host: hostname, port: Number(port) });
  });
  after(async () => {
    await agent.stop();
    await new Promise((r) => target.close(r));
  });

  it('registers with HTTP and TTL checks and reads health with passing and tags', async () => {
    await consul.agent.service.register({
      name: 'node-web',
      id: 'node-web-1',
      address: '127.0.0.1',
      port: 3000,
      tags: ['v2', 'blue'],
      meta: { version: '2.0.0' },
      check: { http: targetUrl, interval: '1s', timeout: '1s' },
    } as Any); // the bundled .d.ts asks for fields the client itself does not need
    await consul.agent.service.register({
      name: 'node-ttl',
      id: 'node-ttl-1',
      port: 3001,
      checks: [{ ttl: '30s', notes: 'heartbeat from the app' }],
    } as Any);

    const passing: Any[] = await eventually(
      () => consul.health.service({ service: 'node-web', passing: true }),
      (list: Any[]) => list.length === 1,
    );
    assert.equal(passing[0].Service.ID, 'node-web-1');
    assert.deepEqual(passing[0].Service.Meta, { version: '2.0.0' });
    assert.deepEqual(passing[0].Checks.map((c: Any) => c.CheckID).sort(), [
      'serfHealth',
      'service:node-web-1',
    ]);
    assert.equal((await consul.health.service({ service: 'node-web', tag: 'v2' })).length, 1);
    assert.equal(
      (await consul.health.service({ service: 'node-web', tag: ['v2', 'blue'] } as Any)).length,
      1,
    );
    assert.equal((await consul.health.service({ service: 'node-web', tag: 'v3' })).length, 0);

    // The TTL check starts critical; a pass makes it pass; notes are kept.
    assert.equal((await consul.health.service({ service: 'node-ttl', passing: true })).length, 0);
    await consul.agent.check.pass({ id: 'service:node-ttl-1', note: 'alive' });
    const ttl: Any[] = await consul.health.service({ service: 'node-ttl', passing: true });
    const check = ttl[0].Checks.find((c: Any) => c.CheckID === 'service:node-ttl-1');
    assert.equal(check.Status, 'passing');
    assert.equal(check.Output, 'alive');
    assert.equal(check.Notes, 'heartbeat from the app');
    // The address defaults to the node's.
    assert.equal(ttl[0].Service.Address, '127.0.0.1');
  });

  it('watch() on a service hears a change within a second', async () => {
    const watch = consul.watch({
      method: consul.health.service,
      options: { service: 'node-ttl', passing: true, wait: '5s' } as Any,
    });
    try {
      const changes: Any[][] = [];
      const next = (): Promise<Any[]> =>
        new Promise((resolve, reject) => {
          watch.once('change', (data: Any[]) => {
            changes.push(data);
            resolve(data);
          });
          watch.once('error', reject);
        });
      const initial = await next();
      assert.equal(initial.length, 1);
      const changed = next();
      const started = Date.now();
      await consul.agent.check.fail({ id: 'service:node-ttl-1', note: 'down' });
      const data = await changed;
      assert.ok(Date.now() - started < 1000, `change took ${Date.now() - started} ms`);
      assert.equal(data.length, 0, 'a failing instance leaves ?passing');
    } finally {
      watch.end();
    }
  });

  it('registers a node-level check (no serviceid) that gates every service of the node', async () => {
    const passing = async (): Promise<number> =>
      ((await consul.health.service({ service: 'node-web', passing: true })) as Any[]).length;
    assert.equal(await passing(), 1);
    await consul.agent.check.register({ name: 'node-disk', ttl: '30s', notes: 'df' } as Any);
    const checks: Any = await consul.agent.check.list();
    assert.equal(checks['node-disk'].ServiceID, '');
    assert.equal(checks['node-disk'].Status, 'critical');
    assert.equal(await passing(), 0, 'a critical node check leaves every instance out');
    await consul.agent.check.pass({ id: 'node-disk', note: 'ok' });
    assert.equal(await passing(), 1);
    const node: Any[] = await consul.health.node('test-node');
    assert.deepEqual(
      node.filter((c) => c.ServiceID === '').map((c) => [c.CheckID, c.Status]),
      [
        ['serfHealth', 'passing'],
        ['node-disk', 'passing'],
      ],
    );
    await consul.agent.check.fail('node-disk');
    assert.equal(await passing(), 0);
    await consul.agent.check.deregister('node-disk');
    assert.equal(await passing(), 1);
    await assert.rejects(consul.agent.check.deregister('node-disk'), (err: Any) => {
      assert.equal(err.statusCode, 404);
      return true;
    });
  });

  it('uses KV: set, get, keys, cas, del', async () => {
    assert.equal(await consul.kv.set('node/app/a', 'one'), true);
    assert.equal(await consul.kv.set('node/app/b', 'two'), true);
    const a: Any = await consul.kv.get('node/app/a');
    assert.equal(a.Value, 'one');
    assert.deepEqual(Object.keys(a).sort(), [
      'CreateIndex',
      'Flags',
      'Key',
      'LockIndex',
      'ModifyIndex',
      'Value',
    ]);
    assert.deepEqual(await consul.kv.keys('node/'), ['node/app/a', 'node/app/b']);
    assert.deepEqual(await consul.kv.keys({ key: 'node/', separator: '/' }), ['node/app/']);
    // A refused cas answers JSON false, which this client resolves as undefined (papi keeps only
    // truthy bodies there); the value is unchanged.
    const refusedSet = await consul.kv.set('node/app/a', 'stale', {
      cas: a.ModifyIndex + 999,
    } as Any);
    assert.notEqual(refusedSet, true);
    assert.equal(((await consul.kv.get('node/app/a')) as Any).Value, 'one');
    assert.equal(await consul.kv.set('node/app/a', 'fresh', { cas: a.ModifyIndex } as Any), true);
    assert.equal(((await consul.kv.get('node/app/a')) as Any).Value, 'fresh');
    const raw = await consul.kv.get({ key: 'node/app/b', raw: true } as Any);
    assert.equal(Buffer.from(raw as Any).toString(), 'two');
    const current: Any = await consul.kv.get('node/app/a');
    const refused = await consul.kv.del({ key: 'node/app/a', cas: current.ModifyIndex + 1 });
    assert.notEqual(refused, true);
    assert.equal(((await consul.kv.get('node/app/a')) as Any).Value, 'fresh');
    assert.equal(await consul.kv.del({ key: 'node/app/a', cas: current.ModifyIndex }), true);
    assert.equal(await consul.kv.get('node/app/a'), undefined);
    assert.equal(await consul.kv.del({ key: 'node/', recurse: true }), true);
    assert.equal(await consul.kv.get('node/app/b'), undefined);
  });

  it('reads agent, catalog and status endpoints', async () => {
    const self: Any = await consul.agent.self();
    assert.equal(self.Config.NodeName, 'test-node');
    assert.equal(self.Config.Datacenter, 'dc1');
    assert.equal(self.Member.Name, 'test-node');
    const services: Any = await consul.agent.service.list();
    assert.deepEqual(Object.keys(services).sort(), ['node-ttl-1', 'node-web-1']);
    assert.deepEqual(await consul.catalog.datacenters(), ['dc1']);
    const catalog: Any = await consul.catalog.service.list();
    assert.deepEqual(catalog['node-web'], ['blue', 'v2']);
    const nodes: Any[] = await consul.catalog.node.list();
    assert.deepEqual(
      nodes.map((n) => [n.Node, n.Address]),
      [['test-node', '127.0.0.1']],
    );
    assert.equal(await consul.status.leader(), '127.0.0.1:8300');
  });

  it('deregisters', async () => {
    await consul.agent.service.deregister('node-web-1');
    await consul.agent.service.deregister({ id: 'node-ttl-1' });
    assert.deepEqual(await consul.agent.service.list(), {});
    await assert.rejects(consul.agent.service.deregister('node-web-1'), (err: Any) => {
      assert.equal(err.statusCode, 404);
      return true;
    });
  });
});
