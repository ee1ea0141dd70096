/** DNS in cluster mode: an agent answers for instances registered through another (one etcd). */
import assert from 'node:assert/strict';
import { Resolver } from 'node:dns/promises';
import { after, before, describe, it } from 'node:test';
import type { RunningAgent } from '../../src/cli/agent-runtime.js';
import { http, startClusterAgent } from '../helpers/agent.js';
import { until } from '../helpers/until.js';
import { startEtcd, type EtcdProcess } from '../helpers/etcd.js';

describe('DNS over a cluster (two agents, one etcd)', () => {
  let etcd: EtcdProcess;
  let a: RunningAgent;
  let b: RunningAgent;
  const agent = (nodeName: string): Promise<RunningAgent> =>
    startClusterAgent([etcd.endpoint], nodeName, `/dns-cluster-test-${process.pid}/`);
  before(async () => {
    etcd = await startEtcd();
    a = await agent('dns-a');
    b = await agent('dns-b');
  });
  after(async () => {
    await a.close();
    await b.close();
    await etcd.stop();
  });

  it("answers through B's DNS what was registered and removed through A", async () => {
    const resolver = new Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([`127.0.0.1:${b.dns?.port ?? 0}`]);
    const lookup = async (): Promise<string[]> => {
      try {
        return (await resolver.resolve4('clustered.service.consul')).sort();
      } catch (err) {
        if ((err as { code?: string }).code === 'ENOTFOUND') return [];
        throw err;
      }
    };
    assert.deepEqual(await lookup(), []);
    const reg = await http(a.url, 'PUT', '/api/v1/instances', {
      service: 'clustered',
      id: 'clustered-1',
      address: '10.7.0.1',
      port: 80,
    });
    assert.equal(reg.status, 200, reg.text);
    await until(async () => (await lookup()).join() === '10.7.0.1', 10_000, 'resolved through B');
    const del = await http(a.url, 'DELETE', '/api/v1/instances/clustered-1');
    assert.equal(del.status, 200);
    await until(async () => (await lookup()).length === 0, 10_000, 'gone from B');
  });

  it('answers the other agents of the cluster as nodes', async () => {
    const resolver = new Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([`127.0.0.1:${b.dns?.port ?? 0}`]);
    assert.deepEqual(await resolver.resolve4('dns-b.node.consul'), ['127.0.0.1']);
    await until(
      async () => {
        try {
          return (await resolver.resolve4('DNS-A.node.dc1.consul')).join() === '127.0.0.1';
        } catch {
          return false;
        }
      },
      10_000,
      'the node resolved through B',
    );
    await assert.rejects(resolver.resolve4('dns-c.node.consul'), { code: 'ENOTFOUND' });
  });
});
