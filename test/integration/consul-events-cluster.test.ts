/**
 * Consul user events, transactions and prepared queries in cluster mode (issue 22): two agents
 * on one real etcd; an event fired through one is listed (and wakes a blocking list) on the
 * other, a query created on one executes on the other, a txn's check fails across agents.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RunningAgent } from '../../src/cli/agent-runtime.js';
import { http, startClusterAgent } from '../helpers/agent.js';
import { startEtcd, type EtcdProcess } from '../helpers/etcd.js';

const PREFIX = '/meshwork-events-test/';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- Consul answers arbitrary JSON
type Any = any;

describe('Consul events, txn and queries on two agents over one etcd', () => {
  let etcd: EtcdProcess;
  let a: RunningAgent;
  let b: RunningAgent;
  before(async () => {
    etcd = await startEtcd();
    a = await startClusterAgent([etcd.endpoint], 'agent-a', PREFIX);
    b = await startClusterAgent([etcd.endpoint], 'agent-b', PREFIX);
  });
  after(async () => {
    await a.close();
    await b.close();
    await etcd.stop();
  });

  it("lists on B an event fired through A, and wakes B's blocking list", async () => {
    const empty = await http<Any[]>(b.url, 'GET', '/v1/event/list?name=deploy');
    assert.deepEqual(empty.body, []);
    const index = empty.headers['x-consul-index'];
    const waiting = http<Any[]>(b.url, 'GET', `/v1/event/list?name=deploy&index=${index}&wait=20s`);
    const fired = await http<Any>(a.url, 'PUT', '/v1/event/fire/deploy?node=agent-', 'v2');
    assert.equal(fired.status, 200, fired.text);
    const woke = await waiting;
    assert.deepEqual(
      woke.body.map((e) => [e.ID, Buffer.from(e.Payload, 'base64').toString()]),
      [[fired.body.ID, 'v2']],
    );
    // LTimes are shared: a second event through B comes after A's.
    const second = await http<Any>(b.url, 'PUT', '/v1/event/fire/deploy', 'v3');
    assert.equal(second.body.LTime, fired.body.LTime + 1);
    const onA = await http<Any[]>(a.url, 'GET', '/v1/event/list?name=deploy');
    assert.deepEqual(
      onA.body.map((e) => e.ID),
      [fired.body.ID, second.body.ID],
    );
  });

  it('executes on B a prepared query created through A, and runs txns against either', async () => {
    const created = await http<Any>(a.url, 'POST', '/v1/query', {
      Name: 'shared',
      Service: { Service: 'nothing-yet' },
    });
    assert.equal(created.status, 200, created.text);
    const run = await http<Any>(b.url, 'GET', '/v1/query/shared/execute');
    assert.equal(run.status, 200, run.text);
    assert.deepEqual(run.body.Nodes, []);

    const set = await http<Any>(a.url, 'PUT', '/v1/txn', [
      { KV: { Verb: 'set', Key: 'c/x', Value: Buffer.from('1').toString('base64') } },
    ]);
    assert.equal(set.status, 200, set.text);
    const at = set.body.Results[0].KV.ModifyIndex as number;
    const stale = await http<Any>(b.url, 'PUT', '/v1/txn', [
      { KV: { Verb: 'set', Key: 'c/y', Value: Buffer.from('no').toString('base64') } },
      { KV: { Verb: 'check-index', Key: 'c/x', Index: at + 1 } },
    ]);
    assert.equal(stale.status, 409);
    const held = await http<Any>(b.url, 'PUT', '/v1/txn', [
      { KV: { Verb: 'check-index', Key: 'c/x', Index: at } },
      { KV: { Verb: 'get-tree', Key: 'c/' } },
    ]);
    assert.equal(held.status, 200, held.text);
    assert.deepEqual(
      held.body.Results.map((r: Any) => r.KV.Key),
      ['c/x', 'c/x'],
    );
  });

  it('deletes a tree of any size in one txn, and puts under it after the delete', async () => {
    const v = Buffer.from('v').toString('base64');
    for (let chunk = 0; chunk < 3; chunk++) {
      const ops = Array.from({ length: 50 }, (_, i) => ({
        KV: { Verb: 'set', Key: `tree/${chunk}/${i}`, Value: v },
      }));
      assert.equal((await http(a.url, 'PUT', '/v1/txn', ops)).status, 200);
    }
    // 150 keys: more than one etcd transaction holds key by key; one range delete holds them.
    const big = await http<Any>(b.url, 'PUT', '/v1/txn', [
      { KV: { Verb: 'delete-tree', Key: 'tree/' } },
    ]);
    assert.equal(big.status, 200, big.text);
    assert.equal((await http(a.url, 'GET', '/v1/kv/tree/?keys')).status, 404);

    // A put under the prefix after the delete: etcd refuses a put inside a range deleted by the
    // same transaction, so the delete goes key by key (and past 128 keys it is refused).
    for (const k of ['tree/x', 'tree/y'])
      assert.equal((await http(a.url, 'PUT', `/v1/kv/${k}`, 'v')).status, 200);
    const del = await http<Any>(b.url, 'PUT', '/v1/txn', [
      { KV: { Verb: 'delete-tree', Key: 'tree/' } },
      { KV: { Verb: 'set', Key: 'tree/after', Value: v } },
      { KV: { Verb: 'get-tree', Key: 'tree/' } },
    ]);
    assert.equal(del.status, 200, del.text);
    assert.deepEqual(
      del.body.Results.map((r: Any) => r.KV.Key),
      ['tree/after', 'tree/after'],
    );
    const left = await http<string[]>(a.url, 'GET', '/v1/kv/tree/?keys');
    assert.deepEqual(left.body, ['tree/after']);
  });
});
