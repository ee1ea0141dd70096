/**
 * Cluster mode with etcd down (issue 3, failure test 4 on one member): the agent serves its
 * last-known catalog, answers writes with 503, is not ready, and recovers when etcd returns.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RunningAgent } from '../../src/cli/agent-runtime.js';
import { http, startClusterAgent } from '../helpers/agent.js';
import { startEtcd, type EtcdProcess } from '../helpers/etcd.js';

describe('an agent whose etcd goes away', () => {
  let etcd: EtcdProcess;
  let agent: RunningAgent;
  before(async () => {
    etcd = await startEtcd();
    agent = await startClusterAgent([etcd.endpoint], 'lonely');
  });
  after(async () => {
    await agent.close();
    await etcd.stop();
  });

  const register = (n: number) =>
    http(agent.url, 'PUT', '/api/v1/instances', {
      service: 'steady',
      id: `steady-${n}`,
      address: `10.0.0.${n}`,
      port: 80,
    });

  it(
    'serves last-known reads, refuses writes with 503, and recovers by itself',
    { timeout: 60_000 },
    async () => {
      const reg = await register(1);
      assert.equal(reg.status, 200);
      assert.equal((await http(agent.url, 'GET', '/health/ready')).status, 200);

      await etcd.kill();
      const refused = await register(2);
      assert.equal(refused.status, 503, refused.text);
      assert.equal(refused.body.error.code, 'MESHWORK_ERR_STORE_UNAVAILABLE');
      assert.match(refused.body.error.message, /etcd/);
      assert.equal((await http(agent.url, 'GET', '/health/ready')).status, 503);
      const read = await http(agent.url, 'GET', '/api/v1/services/steady/instances');
      assert.equal(read.status, 200);
      assert.deepEqual(
        read.body.instances.map((i: { id: string }) => i.id),
        ['steady-1'],
      );

      await etcd.restart();
      // Recovery is the agent's own doing: wait for it to say it is ready (bounded by the timeout).
      while ((await http(agent.url, 'GET', '/health/ready')).status !== 200) {
        await new Promise((r) => setTimeout(r, 100));
      }
      const again = await register(2);
      assert.equal(again.status, 200, again.text);
      assert.ok(again.body.index > reg.body.index);
    },
  );
});
