/**
 * The npm `consul` package (2.x), unmodified: its `session.*` methods and KV acquire / release
 * against an in-process agent (issue 22).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Consul from 'consul';
import { startTestAgent, type TestAgent } from '../helpers/agent.js';

// The package's typings lag its behaviour (SetOptions wants `value`, results are unions).
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- as above
type Any = any;

describe('npm consul: sessions and locks', () => {
  let agent: TestAgent;
  let consul: Consul;

  before(async () => {
    agent = await startTestAgent();
    const { hostname, port } = new URL(agent.url);
    consul = new Consul({ host: hostname, port: Number(port) });
  });
  after(async () => {
    await agent.stop();
  });

  it('creates, reads, renews and destroys a session', async () => {
    const created = (await consul.session.create({
      name: 'node-client',
      ttl: '30s',
      lockdelay: '1s',
      behavior: 'release',
    })) as { ID: string };
    assert.match(created.ID, /^[0-9a-f-]{36}$/);
    const info = (await consul.session.info(created.ID)) as Any;
    assert.equal(info.ID, created.ID);
    assert.equal(info.Name, 'node-client');
    assert.equal(info.TTL, '30s');
    assert.equal(info.LockDelay, 1e9);
    assert.equal(info.Node, 'test-node');
    const onNode = (await consul.session.node('test-node')) as { ID: string }[];
    assert.deepEqual(
      onNode.map((s) => s.ID),
      [created.ID],
    );
    const all = (await consul.session.list()) as { ID: string }[];
    assert.deepEqual(
      all.map((s) => s.ID),
      [created.ID],
    );
    const renewed = (await consul.session.renew(created.ID)) as { ID: string }[];
    assert.equal(renewed[0]?.ID, created.ID);
    await consul.session.destroy(created.ID);
    assert.equal(await consul.session.info(created.ID), undefined);
    await assert.rejects(
      consul.session.renew(created.ID),
      (err: Error & { statusCode?: number }) => {
        assert.equal(err.statusCode, 404);
        return true;
      },
    );
  });

  it('acquires and releases a key through kv.set', async () => {
    const a = ((await consul.session.create({ lockdelay: '0s' })) as { ID: string }).ID;
    const b = ((await consul.session.create({ lockdelay: '0s' })) as { ID: string }).ID;
    assert.equal(await consul.kv.set('node/lock', 'a', { acquire: a } as Any), true);
    // A refused acquire answers JSON false, which this client resolves as undefined (papi keeps
    // only truthy bodies there); the key stays the holder's.
    assert.notEqual(await consul.kv.set('node/lock', 'b', { acquire: b } as Any), true);
    const held = (await consul.kv.get('node/lock')) as Any;
    assert.equal(held.Session, a);
    assert.equal(held.LockIndex, 1);
    assert.equal(held.Value, 'a');
    assert.notEqual(await consul.kv.set('node/lock', 'x', { release: b } as Any), true);
    assert.equal(((await consul.kv.get('node/lock')) as Any).Value, 'a');
    assert.equal(await consul.kv.set('node/lock', 'free', { release: a } as Any), true);
    const free = (await consul.kv.get('node/lock')) as Any;
    assert.equal(free.Session, undefined);
    assert.equal(free.Value, 'free');
    assert.equal(await consul.kv.set('node/lock', 'b', { acquire: b } as Any), true);
    assert.equal(((await consul.kv.get('node/lock')) as Any).LockIndex, 2);
    // Destroying the holder releases its lock at once (lock delay 0).
    await consul.session.destroy(b);
    assert.equal(((await consul.kv.get('node/lock')) as Any).Session, undefined);
    assert.equal(await consul.kv.set('node/lock', 'a', { acquire: a } as Any), true);
    await consul.session.destroy(a);
  });
});
