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
import { until } from '../helpers/until.js';

describe('two agents over one etcd', () => {
  let etcd: EtcdProcess;
  let a: RunningAgent;
  let b: RunningAgent;
  const QUOTA_BYTES = 64 * 1024;
  const agent = (nodeName: string): Promise<RunningAgent> =>
    startClusterAgent([etcd.endpoint], nodeName, `/cluster-test-${process.pid}/`, {
      kv: { quotaBytes: QUOTA_BYTES },
    });
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

  // Issue 16: each agent counts the KV quota from the catalog as it sees it, other agents' puts
  // included.
  it("counts the other agents' KV puts against the quota", async () => {
    const put = await http(a.url, 'PUT', '/api/v1/kv/quota/a', Buffer.alloc(40 * 1024));
    assert.equal(put.status, 200, put.text);
    const used = a.registry.kvBytes;
    await until(() => b.registry.kvBytes === used, 10_000, "B counting A's put");
    const refused = await http(b.url, 'PUT', '/api/v1/kv/quota/b', Buffer.alloc(30 * 1024));
    assert.equal(refused.status, 507, refused.text);
    assert.match(refused.body.error.message, new RegExp(`${used} used of ${QUOTA_BYTES}`));
    assert.equal((await http(b.url, 'DELETE', '/api/v1/kv/quota/a')).status, 200);
    await until(() => a.registry.kvBytes === used - 40 * 1024 - 7, 10_000, 'A freed');
    const taken = await http(a.url, 'PUT', '/api/v1/kv/quota/b', Buffer.alloc(30 * 1024));
    assert.equal(taken.status, 200, taken.text);
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

  it("keeps each agent's Consul node checks its own: stored in etcd, run and shown by that agent only", async () => {
    const v1 = (x: RunningAgent, method: string, path: string, body?: unknown) =>
      http(x.url, method, `/v1${path}`, body);
    const passing = async (x: RunningAgent): Promise<number> =>
      (await v1(x, 'GET', '/health/service/cl-web?passing')).body.length;
    assert.equal((await v1(a, 'PUT', '/agent/service/register', { Name: 'cl-web' })).status, 200);
    const reg = await v1(a, 'PUT', '/agent/check/register', { Name: 'a-disk', TTL: '1h' });
    assert.equal(reg.status, 200, reg.text);
    assert.equal(await passing(a), 0, "A's critical node check gates ?passing through A");
    assert.equal(await passing(b), 1, "B is another node: A's checks are not B's");
    assert.equal((await v1(b, 'GET', '/agent/checks')).body['a-disk'], undefined);
    assert.equal((await v1(b, 'PUT', '/agent/check/pass/a-disk')).status, 404);
    assert.equal(a.registry.runsChecksOf('_node:agent-a'), true);
    assert.equal(b.registry.runsChecksOf('_node:agent-a'), false, 'only its own agent runs them');
    // Instances belong to no node in cluster mode: the shared catalog's statuses do not change.
    const native = await http(b.url, 'GET', '/api/v1/services/cl-web/instances');
    assert.equal(native.body.instances[0].status, 'passing');

    const first = await v1(a, 'GET', '/health/service/cl-web?passing');
    const waiting = v1(
      a,
      'GET',
      `/health/service/cl-web?passing&index=${first.headers['x-consul-index']}&wait=10s`,
    );
    assert.equal((await v1(a, 'PUT', '/agent/check/pass/a-disk')).status, 200);
    assert.equal((await waiting).body.length, 1, 'the blocking query woke on the pass');
    assert.equal((await v1(a, 'PUT', '/agent/check/fail/a-disk?note=full')).status, 200);

    // A restarts under the same node name: its node checks come back from etcd.
    await a.close();
    a = await agent('agent-a');
    const checks = (await v1(a, 'GET', '/agent/checks')).body;
    assert.equal(checks['a-disk'].Status, 'critical');
    assert.equal(checks['a-disk'].Output, 'full');
    assert.equal(await passing(a), 0);
    assert.equal((await v1(a, 'PUT', '/agent/check/deregister/a-disk')).status, 200);
    assert.equal(await passing(a), 1);
  });
});
