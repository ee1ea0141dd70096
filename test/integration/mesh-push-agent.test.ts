/**
 * The push protocol on a real agent (startAgent: registry, control plane, push routes wired by
 * the composition root), over real sockets: a sidecar's subscriber gets the snapshot compiled
 * from the catalog and the mesh resources, follows a VirtualService change, and the agent lists
 * it SYNCED; the agent's shutdown ends its stream.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MeshSubscriber } from '../../src/client/mesh-subscriber.js';
import { parseMeshResource } from '../../src/protocol/mesh/parse.js';
import type { MeshResource } from '../../src/protocol/mesh/resource.js';
import type { MeshSnapshot, ProxyStatus } from '../../src/protocol/mesh/snapshot.js';
import { http, startTestAgent, type TestAgent } from '../helpers/agent.js';
import {
  nextEvent,
  PAYMENTS_DESTINATION_RULE,
  paymentsVirtualService,
} from '../helpers/mesh-push.js';

function resource(doc: unknown): MeshResource {
  const r = parseMeshResource(doc);
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.resource;
}

const destinationRule = resource(PAYMENTS_DESTINATION_RULE);
const virtualService = (v1: number): MeshResource => resource(paymentsVirtualService(v1));

/** The weights of the first route to payments, by cluster. */
const weights = (s: MeshSnapshot | undefined): Record<string, number> =>
  Object.fromEntries(
    (s?.routes.find((r) => r.hosts.includes('payments'))?.backends ?? []).map((b) => [
      b.cluster,
      b.weight,
    ]),
  );

describe('mesh push on a real agent', () => {
  let agent: TestAgent;
  let sub: MeshSubscriber | undefined;
  let stopped = false;
  before(async () => {
    agent = await startTestAgent();
    for (const [id, version] of [
      ['payments-1', 'v1'],
      ['payments-2', 'v2'],
    ] as const) {
      const r = await http(agent.url, 'PUT', '/api/v1/instances', {
        service: 'payments',
        id,
        address: '127.0.0.1',
        port: version === 'v1' ? 9001 : 9002,
        meta: { version },
      });
      assert.equal(r.status, 200, r.text);
    }
    await agent.registry.applyMesh({ resources: [destinationRule, virtualService(90)] });
  });
  after(async () => {
    await sub?.close();
    if (!stopped) await agent.stop();
  });

  it('pushes the compiled snapshot, follows a VirtualService change, and ends on shutdown', async () => {
    sub = new MeshSubscriber({
      registry: [agent.url],
      proxy: {
        id: 'orders-1',
        kind: 'sidecar',
        name: 'orders',
        namespace: 'default',
        upstreams: ['payments'],
      },
      apply: () => undefined,
      backoff: { initialMs: 60_000, maxMs: 60_000 },
    });
    const acked = nextEvent(sub, 'answered');
    assert.equal(await sub.start(), 'agent');
    const [first] = await acked;
    assert.deepEqual(weights(sub.current), { 'payments|v1': 90, 'payments|v2': 10 });
    const endpoints = sub.current?.clusters.find((c) => c.name === 'payments|v2')?.endpoints;
    assert.deepEqual(
      endpoints?.map((e) => e.id),
      ['payments-2'],
    );

    const changed = nextEvent(sub, 'answered', (a) => a.version !== first.version);
    await agent.registry.applyMesh({ resources: [virtualService(0)] });
    const [second] = await changed;
    assert.equal(sub.current?.version, second.version);
    assert.deepEqual(weights(sub.current), { 'payments|v1': 0, 'payments|v2': 100 });

    const r = await http(agent.url, 'GET', '/api/v1/mesh/proxies');
    assert.equal(r.status, 200);
    const proxies = r.body.proxies as ProxyStatus[];
    assert.deepEqual(
      proxies.map((p) => [p.id, p.kind, p.name, p.agent, p.sent, p.acked, p.state]),
      [['orders-1', 'sidecar', 'orders', 'test-node', second.version, second.version, 'SYNCED']],
    );
    const metrics = (await http(agent.url, 'GET', '/metrics')).text;
    assert.match(metrics, /meshwork_mesh_proxies_connected\{kind="sidecar"\} 1/);

    const gone = nextEvent(sub, 'disconnected');
    stopped = true;
    await agent.stop();
    assert.deepEqual(await gone, [agent.url, 'the agent ended the stream']);
  });
});
