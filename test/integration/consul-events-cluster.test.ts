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
});
