/**
 * Consul locks in cluster mode (issue 22), with real processes: one etcd-server and two
 * `meshwork agent --store etcd` binaries. A lock held through agent A by a TTL session is
 * released when A is killed with SIGKILL and the session's etcd lease lapses (twice its TTL,
 * Consul's grace), then acquired through agent B once the lock delay has passed. Real time: the
 * shortest TTL Consul allows is 10 s, so this test takes about 25 s.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { http } from '../helpers/agent.js';
import { spawnAgent, type AgentProcess } from '../helpers/cli.js';
import { startEtcd, type EtcdProcess } from '../helpers/etcd.js';
import { until } from '../helpers/until.js';

describe(
  'a Consul lock across two agents over etcd, when the holder dies',
  { timeout: 120_000 },
  () => {
    let etcd: EtcdProcess;
    const agents: AgentProcess[] = [];
    let a: AgentProcess;
    let b: AgentProcess;

    const agent = async (name: string): Promise<AgentProcess> => {
      const p = await spawnAgent(
        ['--store', 'etcd', '--etcd-endpoints', etcd.endpoint, '--node-name', name],
        { MESHWORK_AGENT__ETCD_PREFIX: `/sessions-${process.pid}/` },
      );
      agents.push(p);
      return p;
    };

    before(async () => {
      etcd = await startEtcd();
      a = await agent('agent-a');
      b = await agent('agent-b');
    });
    after(async () => {
      for (const p of agents) p.child.kill('SIGKILL');
      await Promise.all(agents.map((p) => p.exited));
      await etcd?.stop();
    });

    it('releases the lock once the TTL lapses in etcd, and B takes it after the lock delay', async () => {
      const created = await http(a.url, 'PUT', '/v1/session/create', {
        Name: 'leader-a',
        TTL: '10s',
        LockDelay: '2s',
      });
      assert.equal(created.status, 200, created.text);
      const holder = created.body.ID as string;
      const mine = await http(b.url, 'PUT', '/v1/session/create', { Name: 'leader-b' });
      const contender = mine.body.ID as string;

      assert.equal(
        (await http(a.url, 'PUT', `/v1/kv/cluster/leader?acquire=${holder}`, 'a')).body,
        true,
      );
      // The session and the lock are in etcd: B sees both, and cannot take the lock.
      const seen = await until(
        async () => (await http(b.url, 'GET', '/v1/kv/cluster/leader')).body?.[0],
        5_000,
        'the lock seen through B',
      );
      assert.equal(seen.Session, holder);
      assert.equal(
        (await http(b.url, 'GET', `/v1/session/info/${holder}`)).body[0]?.Node,
        'agent-a',
      );
      const refused = await http(b.url, 'PUT', `/v1/kv/cluster/leader?acquire=${contender}`, 'b');
      assert.equal(refused.body, false);

      a.child.kill('SIGKILL');
      await a.exited;
      const killedAt = Date.now();
      await until(
        async () =>
          (await http(b.url, 'GET', '/v1/kv/cluster/leader')).body?.[0]?.Session === undefined,
        40_000,
        'the lock released after the TTL lapsed',
        200,
      );
      const releasedAfterMs = Date.now() - killedAt;
      // Never before the TTL (Consul's promise); at the latest twice it, plus etcd's lease tick.
      assert.ok(releasedAfterMs >= 9_000, `released ${releasedAfterMs} ms after the kill`);
      assert.deepEqual((await http(b.url, 'GET', `/v1/session/info/${holder}`)).body, []);
      const kept = (await http(b.url, 'GET', '/v1/kv/cluster/leader')).body[0];
      assert.equal(Buffer.from(kept.Value, 'base64').toString(), 'a', 'behavior release keeps it');

      // The 2 s lock delay holds B off at first, then B takes the lock.
      const early = await http(b.url, 'PUT', `/v1/kv/cluster/leader?acquire=${contender}`, 'b');
      assert.equal(early.body, false, 'within the lock delay');
      await until(
        async () =>
          (await http(b.url, 'PUT', `/v1/kv/cluster/leader?acquire=${contender}`, 'b')).body ===
            true || undefined,
        10_000,
        'B acquires after the lock delay',
        250,
      );
      const taken = (await http(b.url, 'GET', '/v1/kv/cluster/leader')).body[0];
      assert.equal(taken.Session, contender);
      assert.equal(taken.LockIndex, 2);
    });
  },
);
