/**
 * Cluster mode (issue 3, first failure test): two agents over one real etcd. A registration
 * through agent A is read and watched through agent B, at the same index.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RunningAgent } from '../../src/cli/agent-runtime.js';
import { http, startClusterAgent } from '../helpers/agent.js';
import { startEtcd, type EtcdProcess } from '../helpers/etcd.js';
import { collectSse } from '../helpers/sse.js';

describe('two agents over one etcd', () => {
  let etcd: EtcdProcess;
  let a: RunningAgent;
  let b: RunningAgent;
  const agent = (nodeName: string): Promise<RunningAgent> =>
    startClusterAgent([etcd.endpoint], nodeName, `/cluster-test-${process.pid}/`);
  before(async () => {
    etcd = await startEtcd();
    a = await agent('agent-a');
    b = await agent('agent-b');
  });
  after(async () => {
    await a.close();
    await b.close();
    await etcd.stop();
  });

  it('serves through B, at the same index, what was registered through A', async () => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- events are read as loose JSON
    const watch = await collectSse<{ type: string; index: number; [k: string]: any }>(
      `${b.url}/api/v1/watch?service=shared`,
    );
    await watch.until(1);
    const reg = await http(a.url, 'PUT', '/api/v1/instances', {
      service: 'shared',
      id: 'shared-1',
      address: '10.0.0.1',
      port: 80,
      tags: ['via-a'],
    });
    assert.equal(reg.status, 200, reg.text);
    await watch.until(2);
    assert.equal(watch.events[1]?.type, 'upsert');
    assert.equal(watch.events[1]?.index, reg.body.index, 'the etcd revision is the index on both');
    const read = await http(b.url, 'GET', '/api/v1/services/shared/instances');
    assert.deepEqual(
      read.body.instances.map((i: { id: string }) => i.id),
      ['shared-1'],
    );
    assert.equal(read.headers['x-meshwork-index'], String(reg.body.index));

    const del = await http(b.url, 'DELETE', '/api/v1/instances/shared-1');
    assert.equal(del.status, 200);
    const gone = await http(
      a.url,
      'GET',
      `/api/v1/services/shared/instances?index=${reg.body.index}&wait=10s`,
    );
    assert.deepEqual(gone.body.instances, []);
    await watch.close();
  });

  it('keeps KV check-and-set consistent across agents', async () => {
    const first = await http(a.url, 'PUT', '/api/v1/kv/leader?cas=0', 'agent-a');
    const second = await http(b.url, 'PUT', '/api/v1/kv/leader?cas=0', 'agent-b');
    assert.equal(first.body.ok, true);
    assert.equal(second.body.ok, false);
  });

  it('lists both agents in /api/v1/agents, and drops one that leaves', async () => {
    const both = await http(a.url, 'GET', '/api/v1/agents');
    assert.deepEqual(
      both.body.agents.map((m: { nodeName: string; url: string }) => [m.nodeName, m.url]),
      [
        ['agent-a', a.url],
        ['agent-b', b.url],
      ],
    );
    const c = await agent('agent-c');
    assert.equal((await http(b.url, 'GET', '/api/v1/agents')).body.agents.length, 3);
    await c.close();
    const after = await http(b.url, 'GET', '/api/v1/agents');
    assert.deepEqual(
      after.body.agents.map((m: { nodeName: string }) => m.nodeName),
      ['agent-a', 'agent-b'],
    );
  });
});
