/**
 * The push protocol in cluster mode: two agents over one real etcd, a sidecar on each. A
 * VirtualService applied through agent A reaches the proxy streaming from agent B, and
 * `GET /api/v1/mesh/proxies` on either agent lists both proxies, each with the agent it is on.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RunningAgent } from '../../src/cli/agent-runtime.js';
import { MeshSubscriber } from '../../src/client/mesh-subscriber.js';
import type { ProxyStatus } from '../../src/protocol/mesh/snapshot.js';
import { http, startClusterAgent } from '../helpers/agent.js';
import { startEtcd, type EtcdProcess } from '../helpers/etcd.js';
import {
  nextEvent,
  PAYMENTS_DESTINATION_RULE,
  paymentsVirtualService,
} from '../helpers/mesh-push.js';

describe('mesh push over two agents on one etcd', () => {
  let etcd: EtcdProcess;
  let a: RunningAgent;
  let b: RunningAgent;
  const subs: MeshSubscriber[] = [];
  before(async () => {
    etcd = await startEtcd();
    const prefix = `/mesh-push-${process.pid}/`;
    a = await startClusterAgent([etcd.endpoint], 'agent-a', prefix);
    b = await startClusterAgent([etcd.endpoint], 'agent-b', prefix);
  });
  after(async () => {
    for (const s of subs) await s.close();
    await a.close();
    await b.close();
    await etcd.stop();
  });

  const subscriber = (url: string, id: string): MeshSubscriber => {
    const sub = new MeshSubscriber({
      registry: [url],
      proxy: { id, kind: 'sidecar', name: 'orders', namespace: 'default', upstreams: ['payments'] },
      apply: () => undefined,
    });
    subs.push(sub);
    return sub;
  };

  it('pushes a change applied through one agent to a proxy on the other, and lists both', async () => {
    const applied = await http(a.url, 'POST', '/api/v1/mesh/apply', {
      documents: [PAYMENTS_DESTINATION_RULE, paymentsVirtualService(90)],
    });
    assert.equal(applied.status, 200, applied.text);
    const onA = subscriber(a.url, 'orders-a');
    const onB = subscriber(b.url, 'orders-b');
    const firstA = nextEvent(onA, 'answered');
    const firstB = nextEvent(onB, 'answered');
    assert.deepEqual(await Promise.all([onA.start(), onB.start()]), ['agent', 'agent']);
    const [[ackA], [ackB]] = await Promise.all([firstA, firstB]);
    // One identity, one compile per agent: the same content, the same version.
    assert.equal(ackA.version, ackB.version);

    const changed = nextEvent(onB, 'answered', (ack) => ack.version !== ackB.version);
    const again = await http(a.url, 'POST', '/api/v1/mesh/apply', {
      documents: [paymentsVirtualService(0)],
    });
    assert.equal(again.status, 200, again.text);
    const [next] = await changed;
    const route = onB.current?.routes.find((r) => r.hosts.includes('payments'));
    assert.deepEqual(
      route?.backends.map((x) => [x.cluster, x.weight]),
      [
        ['payments|v1', 0],
        ['payments|v2', 100],
      ],
    );

    const list = async (url: string): Promise<ProxyStatus[]> => {
      const r = await http(url, 'GET', '/api/v1/mesh/proxies');
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.body.unreachable, []);
      return r.body.proxies as ProxyStatus[];
    };
    // onA may still be taking the change: its row is listed, SYNCED or STALE.
    for (const url of [a.url, b.url]) {
      const rows = (await list(url)).map((p) => [p.id, p.agent]);
      assert.deepEqual(rows, [
        ['orders-a', 'agent-a'],
        ['orders-b', 'agent-b'],
      ]);
    }
    const mine = (await http(b.url, 'GET', '/api/v1/mesh/proxies?local=true')).body.proxies;
    assert.deepEqual(
      mine.map((p: ProxyStatus) => [p.id, p.acked, p.state]),
      [['orders-b', next.version, 'SYNCED']],
    );
  });
});
