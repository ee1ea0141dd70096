/**
 * /v1/txn (issue 22) against a real in-process agent: the npm `consul` package's
 * transaction.create, and raw requests for what the client hides (status codes, 413, 409).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Consul from 'consul';
import { request } from 'undici';
import { startTestAgent, type TestAgent } from '../helpers/agent.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the client answers arbitrary JSON
type Any = any;

const b64 = (s: string): string => Buffer.from(s).toString('base64');

describe('Consul /v1/txn', () => {
  let agent: TestAgent;
  let consul: Consul;
  const put = async (body: unknown) => {
    const res = await request(`${agent.url}/v1/txn`, {
      method: 'PUT',
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.body.text();
    return { status: res.statusCode, text, json: () => JSON.parse(text) as Any };
  };

  before(async () => {
    agent = await startTestAgent();
    const { hostname, port } = new URL(agent.url);
    consul = new Consul({ host: hostname, port: Number(port) });
  });
  after(() => agent.stop());

  it('sets, reads and deletes KV all at once through the npm client', async () => {
    const r: Any = await consul.transaction.create(<Any>[
      { KV: { Verb: 'set', Key: 'txn/a', Value: b64('one'), Flags: 7 } },
      { KV: { Verb: 'set', Key: 'txn/b', Value: b64('two') } },
      { KV: { Verb: 'get', Key: 'txn/a' } },
      { KV: { Verb: 'get-tree', Key: 'txn/' } },
    ]);
    assert.equal(r.Errors, null);
    assert.equal(r.Results.length, 5);
    const [setA, , getA, treeA, treeB] = r.Results.map((x: Any) => x.KV);
    // A set answers the entry without its value; a get (in the txn, after the set) with it.
    assert.equal(setA.Key, 'txn/a');
    assert.equal(setA.Value, null);
    assert.equal(setA.Flags, 7);
    assert.equal(getA.Value, b64('one'));
    assert.equal(getA.ModifyIndex, setA.ModifyIndex);
    assert.deepEqual([treeA.Key, treeB.Key, treeB.Value], ['txn/a', 'txn/b', b64('two')]);
    assert.equal(await consul.kv.get('txn/b').then((e: Any) => e.Value), 'two');

    const cas: Any = await consul.transaction.create(<Any>[
      { KV: { Verb: 'check-index', Key: 'txn/a', Index: setA.ModifyIndex } },
      { KV: { Verb: 'cas', Key: 'txn/b', Value: b64('three'), Index: setA.ModifyIndex } },
      { KV: { Verb: 'delete', Key: 'txn/a' } },
    ]);
    assert.equal(cas.Errors, null);
    assert.equal(await consul.kv.get('txn/a'), undefined);
    assert.equal(await consul.kv.get('txn/b').then((e: Any) => e.Value), 'three');
  });

  it('rolls back a set when a check in the same txn fails: 409 with OpIndex and What', async () => {
    const r = await put([
      { KV: { Verb: 'set', Key: 'rollback/x', Value: b64('must not stay') } },
      { KV: { Verb: 'check-not-exists', Key: 'txn/b' } },
      { KV: { Verb: 'get', Key: 'rollback/missing' } },
    ]);
    assert.equal(r.status, 409);
    assert.deepEqual(r.json(), {
      Results: null,
      Errors: [
        { OpIndex: 1, What: 'key "txn/b" exists' },
        { OpIndex: 2, What: 'key "rollback/missing" doesn\'t exist' },
      ],
    });
    assert.equal(await consul.kv.get('rollback/x'), undefined);
    // The npm client rejects a 409.
    await assert.rejects(
      consul.transaction.create(<Any>[{ KV: { Verb: 'check-index', Key: 'txn/b', Index: 1 } }]),
    );
  });

  it("refuses 65 ops with 413 and Consul's message, applying none of them", async () => {
    const ops = Array.from({ length: 65 }, (_, i) => ({
      KV: { Verb: 'set', Key: `many/${i}`, Value: b64('v') },
    }));
    const r = await put(ops);
    assert.equal(r.status, 413);
    assert.equal(r.text, 'Transaction contains too many operations (65 > 64)');
    assert.deepEqual(await consul.kv.keys({ key: 'many/' }).catch(() => []), []);
    const ok = await put(ops.slice(0, 64));
    assert.equal(ok.status, 200);
    assert.equal(ok.json().Results.length, 64);
  });

  it('answers bad bodies with 400 naming the problem', async () => {
    assert.deepEqual(await put('{"KV": {}}').then((r) => [r.status, r.text]), [
      400,
      'Failed to parse body: json: cannot unmarshal object into Go value of type api.TxnOps',
    ]);
    const bad = await put([{ KV: { Verb: 'set', Key: 'k', Value: 'not base64!' } }]);
    assert.equal(bad.status, 400);
    assert.match(bad.text, /failed to decode value/);
    const verb = await put([{ KV: { Verb: 'frobnicate', Key: 'k' } }]);
    assert.equal(verb.status, 409);
    assert.equal(verb.json().Errors[0].What, 'unknown KV verb "frobnicate"');
    // A lock verb names a session that exists, or the op fails (as Consul's `invalid session`).
    const lock = await put([{ KV: { Verb: 'lock', Key: 'k', Session: 'abc' } }]);
    assert.equal(lock.status, 409);
    assert.equal(lock.json().Errors[0].What, 'invalid session "abc"');
    const noSession = await put([{ KV: { Verb: 'unlock', Key: 'k' } }]);
    assert.equal(noSession.json().Errors[0].What, 'unlock requires a Session');
  });

  it('locks, checks and unlocks a key with sessions, and keeps the lock delay', async () => {
    const session = async (body: object): Promise<string> => {
      const res = await request(`${agent.url}/v1/session/create`, {
        method: 'PUT',
        body: JSON.stringify(body),
      });
      assert.equal(res.statusCode, 200);
      return ((await res.body.json()) as { ID: string }).ID;
    };
    const a = await session({ Name: 'a', LockDelay: '0s' });
    const b = await session({ Name: 'b', LockDelay: '0s' });
    const locked = await put([
      { KV: { Verb: 'lock', Key: 'txn-lock/k', Value: b64('a'), Session: a } },
      { KV: { Verb: 'check-session', Key: 'txn-lock/k', Session: a } },
    ]);
    assert.equal(locked.status, 200, locked.text);
    const [taken, checked] = locked.json().Results.map((r: Any) => r.KV);
    assert.deepEqual([taken.Session, taken.LockIndex, checked.Session], [a, 1, a]);
    assert.equal(await consul.kv.get('txn-lock/k').then((e: Any) => e.Session), a);

    // Held by a: b cannot lock it, nor pass a session check; nothing of that txn applies.
    const refused = await put([
      { KV: { Verb: 'set', Key: 'txn-lock/side', Value: b64('x') } },
      { KV: { Verb: 'lock', Key: 'txn-lock/k', Session: b } },
      { KV: { Verb: 'check-session', Key: 'txn-lock/k', Session: b } },
    ]);
    assert.equal(refused.status, 409);
    assert.deepEqual(
      refused.json().Errors.map((e: Any) => [e.OpIndex, e.What]),
      [
        [1, 'failed to lock key "txn-lock/k", lock is already held'],
        [2, `failed session check for key "txn-lock/k", current session "${a}" != "${b}"`],
      ],
    );
    assert.equal(await consul.kv.get('txn-lock/side'), undefined);

    // a unlocks (b may not), then b takes it: a new holder, lock index 2.
    const wrong = await put([{ KV: { Verb: 'unlock', Key: 'txn-lock/k', Session: b } }]);
    assert.match(wrong.json().Errors[0].What, /lock isn't held, or is held by another session/);
    const unlocked = await put([
      { KV: { Verb: 'unlock', Key: 'txn-lock/k', Value: b64('free'), Session: a } },
      { KV: { Verb: 'lock', Key: 'txn-lock/k', Value: b64('b'), Session: b } },
    ]);
    assert.equal(unlocked.status, 200, unlocked.text);
    const [, retaken] = unlocked.json().Results.map((r: Any) => r.KV);
    assert.deepEqual([retaken.Session, retaken.LockIndex], [b, 2]);

    // A session ended while holding a key starts its lock delay: a txn lock is refused.
    const c = await session({ Name: 'c', LockDelay: '1m' });
    const d = await session({ Name: 'd', LockDelay: '0s' });
    assert.equal(
      (await put([{ KV: { Verb: 'lock', Key: 'txn-lock/delayed', Session: c } }])).status,
      200,
    );
    const destroyed = await request(`${agent.url}/v1/session/destroy/${c}`, { method: 'PUT' });
    assert.equal(destroyed.statusCode, 200);
    await destroyed.body.text();
    const delayed = await put([{ KV: { Verb: 'lock', Key: 'txn-lock/delayed', Session: d } }]);
    assert.equal(delayed.status, 409);
    assert.equal(
      delayed.json().Errors[0].What,
      'failed to lock key "txn-lock/delayed" due to lock delay',
    );
  });

  it("sets, reads and deletes a service on this agent's node, with Node and Check reads", async () => {
    const set = await put([
      {
        Service: {
          Verb: 'set',
          Node: 'test-node',
          Service: { ID: 'txn-web-1', Service: 'txn-web', Port: 8080, Tags: ['a'] },
        },
      },
      { KV: { Verb: 'set', Key: 'svc/txn-web', Value: b64('registered') } },
      { Node: { Verb: 'get', Node: { Node: 'test-node' } } },
      { Check: { Verb: 'get', Check: { Node: 'test-node', CheckID: 'serfHealth' } } },
    ]);
    assert.equal(set.status, 200, set.text);
    const results = set.json().Results;
    assert.equal(results[0].Service.ID, 'txn-web-1');
    assert.equal(results[0].Service.Port, 8080);
    assert.equal(results[2].Node.Node, 'test-node');
    assert.equal(results[3].Check.Status, 'passing');
    const health: Any[] = await consul.health.service('txn-web');
    assert.deepEqual(
      health.map((h) => h.Service.ID),
      ['txn-web-1'],
    );

    const index = results[0].Service.ModifyIndex as number;
    const stale = await put([
      {
        Service: {
          Verb: 'delete-cas',
          Node: 'test-node',
          Service: { ID: 'txn-web-1', ModifyIndex: index + 99 },
        },
      },
    ]);
    assert.equal(stale.status, 409);
    assert.match(stale.json().Errors[0].What, /index is stale/);
    const other = await put([
      { Service: { Verb: 'set', Node: 'elsewhere', Service: { Service: 'x' } } },
    ]);
    assert.equal(other.status, 409);
    assert.match(other.json().Errors[0].What, /Missing node registration/);
    const del = await put([
      {
        Service: {
          Verb: 'delete-cas',
          Node: 'test-node',
          Service: { ID: 'txn-web-1', ModifyIndex: index },
        },
      },
    ]);
    assert.equal(del.status, 200, del.text);
    assert.deepEqual(await consul.health.service('txn-web'), []);
  });
});
