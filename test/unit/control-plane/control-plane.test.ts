import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry as PromRegistry } from 'prom-client';
import type { MeshSnapshot, ProxyIdentity } from '../../../src/protocol/mesh/snapshot.js';
import { createControlPlane } from '../../../src/control-plane/control-plane.js';
import {
  FakeMeshCatalog,
  fakeInstance,
  fakeResource,
} from '../../../src/testing/fake-mesh-catalog.js';

/** A control plane over `catalog` whose bursts run when the test calls `flush()`. */
function setup(catalog: FakeMeshCatalog) {
  const metrics = new PromRegistry();
  let pending: (() => void) | undefined;
  let scheduledRuns = 0;
  const cp = createControlPlane({
    catalog,
    metrics,
    schedule: (run) => {
      scheduledRuns += 1;
      pending = run;
    },
  });
  const compiles = async (kind: 'sidecar' | 'gateway' = 'sidecar') => {
    const m = await metrics.getSingleMetric('meshwork_control_plane_compiles_total')?.get();
    return m?.values.find((v) => v.labels['kind'] === kind)?.value ?? 0;
  };
  const flush = () => {
    const run = pending;
    pending = undefined;
    run?.();
  };
  return { cp, compiles, flush, metrics, scheduled: () => scheduledRuns };
}

const sidecar = (name: string, upstreams?: string[], id = `${name}-1`): ProxyIdentity => ({
  id,
  kind: 'sidecar',
  name,
  namespace: 'default',
  ...(upstreams ? { upstreams } : {}),
});

function recorder() {
  const got: MeshSnapshot[] = [];
  return { got, on: (s: MeshSnapshot) => void got.push(s) };
}

const catalogOf = () =>
  new FakeMeshCatalog([
    fakeInstance('p1', 'payments', { meta: { version: 'v1' } }),
    fakeInstance('p2', 'payments', { meta: { version: 'v2' } }),
    fakeInstance('i1', 'inventory'),
    fakeInstance('o1', 'orders'),
  ]);

describe('createControlPlane', () => {
  it('gives a watcher the current snapshot before watch returns, with its own identity', () => {
    const { cp } = setup(catalogOf());
    const a = recorder();
    const b = recorder();
    cp.watch(sidecar('orders', ['payments'], 'o-1'), a.on);
    cp.watch(sidecar('orders', ['payments'], 'o-2'), b.on);
    assert.equal(a.got.length, 1);
    assert.equal(b.got.length, 1);
    assert.equal(a.got[0]?.proxy.id, 'o-1');
    assert.equal(b.got[0]?.proxy.id, 'o-2');
    assert.equal(a.got[0]?.version, b.got[0]?.version);
    assert.deepEqual(
      a.got[0]?.clusters.map((c) => c.endpoints.map((e) => e.id)),
      [['p1', 'p2']],
    );
    cp.close();
  });

  it('shares one compile among the watchers of one identity (upstreams in any order)', async () => {
    const { cp, compiles } = setup(catalogOf());
    cp.watch(sidecar('orders', ['payments', 'inventory'], 'a'), () => undefined);
    cp.watch(sidecar('orders', ['inventory', 'payments', 'payments'], 'b'), () => undefined);
    assert.equal(await compiles(), 1);
    cp.watch(sidecar('orders', ['inventory'], 'c'), () => undefined);
    assert.equal(await compiles(), 2);
    cp.close();
  });

  it('leaves a proxy alone on a change to a service it does not call', async () => {
    const catalog = catalogOf();
    const { cp, compiles, flush } = setup(catalog);
    const w = recorder();
    cp.watch(sidecar('orders', ['payments']), w.on);
    catalog.setStatus('i1', 'critical');
    catalog.putInstance(fakeInstance('i2', 'inventory'));
    flush();
    assert.equal(await compiles(), 1);
    assert.equal(w.got.length, 1);
    cp.close();
  });

  it('recompiles a proxy once per burst of changes to a service it calls', async () => {
    const catalog = catalogOf();
    const { cp, compiles, flush, scheduled } = setup(catalog);
    const w = recorder();
    cp.watch(sidecar('orders', ['payments']), w.on);
    catalog.setStatus('p1', 'critical');
    catalog.setStatus('p2', 'warning');
    catalog.putInstance(fakeInstance('p3', 'payments', { meta: { version: 'v2' } }));
    assert.equal(scheduled(), 1, 'one recompile scheduled for the burst');
    assert.equal(w.got.length, 1, 'nothing before the burst ends');
    flush();
    assert.equal(await compiles(), 2);
    assert.equal(w.got.length, 2);
    assert.deepEqual(
      w.got[1]?.clusters[0]?.endpoints.map((e) => [e.id, e.status]),
      [
        ['p1', 'critical'],
        ['p2', 'warning'],
        ['p3', 'passing'],
      ],
    );
    assert.notEqual(w.got[1]?.version, w.got[0]?.version);
    cp.close();
  });

  it('recompiles every sidecar without declared upstreams on any service change', async () => {
    const catalog = catalogOf();
    const { cp, compiles, flush } = setup(catalog);
    const w = recorder();
    cp.watch(sidecar('orders'), w.on);
    catalog.putInstance(fakeInstance('n1', 'newcomer'));
    flush();
    assert.equal(await compiles(), 2);
    assert.ok(w.got[1]?.routes.some((r) => r.name === 'default:newcomer'));
    cp.close();
  });

  it('calls nobody when a recompile gives the same version', async () => {
    const catalog = catalogOf();
    const { cp, compiles, flush } = setup(catalog);
    const w = recorder();
    cp.watch(sidecar('orders', ['payments']), w.on);
    const p1 = catalog.serviceInstances('payments').find((i) => i.id === 'p1');
    assert.ok(p1);
    catalog.putInstance({ ...p1, modifyIndex: 99, statusReason: 'a reason outside snapshots' });
    flush();
    assert.equal(await compiles(), 2);
    assert.equal(w.got.length, 1);
    cp.close();
  });

  it('recompiles on a resource change only the proxies whose hosts or binding it touches', async () => {
    const catalog = catalogOf();
    const { cp, compiles, flush } = setup(catalog);
    const pay = recorder();
    const inv = recorder();
    const edge = recorder();
    cp.watch(sidecar('orders', ['payments']), pay.on);
    cp.watch(sidecar('orders', ['inventory']), inv.on);
    cp.watch({ id: 'g', kind: 'gateway', name: 'edge', namespace: 'default' }, edge.on);
    assert.equal(await compiles(), 2);
    assert.equal(await compiles('gateway'), 1);

    catalog.putResource(
      fakeResource('DestinationRule', 'payments', {
        host: 'payments',
        subsets: [{ name: 'v2', labels: { version: 'v2' } }],
        trafficPolicy: { loadBalancer: { simple: 'RANDOM' } },
      }),
    );
    flush();
    assert.equal(await compiles(), 3, 'only the payments caller');
    assert.equal(pay.got.length, 2);
    assert.deepEqual(pay.got[1]?.clusters[0]?.loadBalancer, { type: 'random' });

    const vs = fakeResource('VirtualService', 'payments', {
      hosts: ['payments'],
      gateways: ['edge'],
      http: [{ route: [{ destination: { host: 'payments', subset: 'v2' } }] }],
    });
    catalog.putResource(vs);
    flush();
    assert.equal(await compiles(), 3, 'a gateway-only VirtualService leaves the sidecars alone');
    assert.equal(await compiles('gateway'), 2);
    assert.deepEqual(
      edge.got[1]?.routes.map((r) => r.backends[0]?.cluster),
      ['payments|v2'],
    );

    // Rebinding to the mesh: the old version (gateway) and the new (payments sidecars) count.
    catalog.putResource(
      fakeResource('VirtualService', 'payments', { ...vs.spec, gateways: ['mesh'] }),
    );
    flush();
    assert.equal(await compiles('gateway'), 3);
    assert.equal(await compiles(), 4);
    assert.deepEqual(edge.got[2]?.routes, []);
    assert.deepEqual(
      pay.got[2]?.routes.map((r) => r.name),
      ['default/payments/0'],
    );
    assert.equal(inv.got.length, 1);

    catalog.deleteResource('VirtualService/default/payments');
    flush();
    assert.equal(await compiles(), 5);
    assert.deepEqual(
      pay.got[3]?.routes.map((r) => r.name),
      ['default:payments'],
    );
    cp.close();
  });

  it('recompiles the inbound side on a policy change in the proxy namespace only', async () => {
    const catalog = catalogOf();
    const { cp, compiles, flush } = setup(catalog);
    const w = recorder();
    cp.watch(sidecar('payments', []), w.on);
    catalog.putResource(
      fakeResource('PeerAuthentication', 'strict', { mtls: { mode: 'STRICT' } }, 'shop'),
    );
    flush();
    assert.equal(await compiles(), 1);
    catalog.putResource(fakeResource('PeerAuthentication', 'strict', { mtls: { mode: 'STRICT' } }));
    flush();
    assert.equal(await compiles(), 2);
    assert.equal(w.got[1]?.inbound?.mtls, 'STRICT');
    cp.close();
  });

  it('drops an identity with its last watcher and stops on close', async () => {
    const catalog = catalogOf();
    const { cp, compiles, flush, metrics } = setup(catalog);
    const stopA = cp.watch(sidecar('orders', ['payments'], 'a'), () => undefined);
    const stopB = cp.watch(sidecar('orders', ['payments'], 'b'), () => undefined);
    stopA();
    catalog.setStatus('p1', 'critical');
    flush();
    assert.equal(await compiles(), 2, 'b still watches');
    stopB();
    const gauge = await metrics.getSingleMetric('meshwork_control_plane_proxy_identities')?.get();
    assert.equal(gauge?.values[0]?.value, 0);
    catalog.setStatus('p1', 'passing');
    flush();
    assert.equal(await compiles(), 2);

    const w = recorder();
    cp.watch(sidecar('orders', ['payments']), w.on);
    cp.close();
    catalog.setStatus('p1', 'critical');
    flush();
    assert.equal(w.got.length, 1);

    // Watched after close: the catalog as it is now, once.
    const late = recorder();
    const stop = cp.watch(sidecar('orders', ['payments']), late.on);
    assert.deepEqual(
      late.got.map((s) => s.clusters[0]?.endpoints.find((e) => e.id === 'p1')?.status),
      ['critical'],
    );
    stop();
  });

  it('keeps calling the other watchers when one throws', () => {
    const catalog = catalogOf();
    const { cp, flush } = setup(catalog);
    const w = recorder();
    let calls = 0;
    cp.watch(sidecar('orders', ['payments'], 'bad'), () => {
      calls += 1;
      if (calls > 1) throw new Error('boom');
    });
    cp.watch(sidecar('orders', ['payments'], 'good'), w.on);
    catalog.setStatus('p1', 'critical');
    flush();
    assert.equal(calls, 2);
    assert.equal(w.got.length, 2);
    cp.close();
  });
});

describe('createControlPlane with the CA trust (issue 20)', () => {
  /** A trust source the test changes by hand. */
  function trustSource() {
    let current = { trustDomain: 'cluster.local', bundlePem: 'ROOT-1\n', activeRootId: 'r1' };
    const listeners = new Set<() => void>();
    return {
      source: {
        current: () => current,
        onChange: (l: () => void) => {
          listeners.add(l);
          return () => listeners.delete(l);
        },
      },
      set(next: typeof current) {
        current = next;
        for (const l of listeners) l();
      },
      listeners,
    };
  }

  it('puts the trust in every snapshot and its version, and re-pushes every identity when it changes', () => {
    const trust = trustSource();
    let pending: (() => void) | undefined;
    const cp = createControlPlane({
      catalog: catalogOf(),
      trust: trust.source,
      schedule: (run) => (pending = run),
    });
    const orders = recorder();
    const gw = recorder();
    cp.watch(sidecar('orders', ['payments']), orders.on);
    cp.watch({ id: 'gw-1', kind: 'gateway', name: 'edge', namespace: 'default' }, gw.on);
    assert.deepEqual(orders.got[0]?.ca, trust.source.current());
    assert.deepEqual(gw.got[0]?.ca, trust.source.current());

    const rotated = {
      trustDomain: 'cluster.local',
      bundlePem: 'ROOT-2\nROOT-1\n',
      activeRootId: 'r2',
    };
    trust.set(rotated);
    assert.equal(orders.got.length, 1, 'pushed at the flush, not before');
    pending?.();
    assert.equal(orders.got.length, 2);
    assert.equal(gw.got.length, 2);
    assert.deepEqual(orders.got[1]?.ca, rotated);
    assert.notEqual(orders.got[1]?.version, orders.got[0]?.version, 'the version covers ca');
    // The same trust again changes nothing: no push.
    trust.set({ ...rotated });
    pending?.();
    assert.equal(orders.got.length, 2);
    cp.close();
    assert.equal(trust.listeners.size, 0, 'close stops following the trust');
  });

  it('carries no ca without a trust source', () => {
    const { cp } = setup(catalogOf());
    const r = recorder();
    cp.watch(sidecar('orders'), r.on);
    assert.equal(r.got[0]?.ca, undefined);
    cp.close();
  });
});
