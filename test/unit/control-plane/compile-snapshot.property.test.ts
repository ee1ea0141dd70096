/** Property tests of compileSnapshot: deterministic, blind to input order, and its deps sound. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { InstanceDto } from '../../../src/protocol/api-types.js';
import type { StoredMeshResource } from '../../../src/protocol/mesh/resource.js';
import type { ProxyIdentity } from '../../../src/protocol/mesh/snapshot.js';
import type { HttpRouteDestination } from '../../../src/protocol/mesh/specs.js';
import { staticCompileCatalog } from '../../../src/control-plane/catalog-endpoints.js';
import { compileSnapshot } from '../../../src/control-plane/compile-snapshot.js';
import { resourceTouches } from '../../../src/control-plane/mesh-deps.js';
import { indexMeshResources } from '../../../src/control-plane/mesh-index.js';
import { fakeInstance, fakeResource } from '../../../src/testing/fake-mesh-catalog.js';

const SEED = 18;
const SERVICES = ['a', 'b', 'c', 'd'];
const NAMESPACES = ['default', 'shop', 'istio-system'];

const instanceArb = fc
  .uniqueArray(
    fc.record({
      id: fc.integer({ min: 0, max: 40 }).map((n) => `i${n}`),
      service: fc.constantFrom(...SERVICES),
      version: fc.constantFrom('v1', 'v2'),
      ns: fc.constantFrom(...NAMESPACES.slice(0, 2)),
      status: fc.constantFrom('passing', 'warning', 'critical' as const),
    }),
    { selector: (i) => i.id, maxLength: 12 },
  )
  .map((list) =>
    list.map((i) =>
      fakeInstance(i.id, i.service, {
        meta: { version: i.version, namespace: i.ns },
        status: i.status,
      }),
    ),
  );

const hostArb = fc.constantFrom(...SERVICES, 'a.default.svc.cluster.local', 'ext.example.com');
const destinationArb = fc.record({
  host: hostArb,
  subset: fc.option(fc.constantFrom('v1', 'v2'), { nil: undefined }),
});
const routeArb: fc.Arbitrary<HttpRouteDestination[]> = fc.oneof(
  destinationArb.map((d) => [{ destination: d }]),
  fc.tuple(destinationArb, destinationArb, fc.integer({ min: 0, max: 100 })).map(([d1, d2, w]) => [
    { destination: d1, weight: w },
    { destination: d2, weight: 100 - w },
  ]),
);

const resourceArb = fc.oneof(
  fc
    .record({
      name: fc.constantFrom('r1', 'r2'),
      ns: fc.constantFrom(...NAMESPACES),
      host: hostArb,
      lb: fc.constantFrom('RANDOM', 'ROUND_ROBIN' as const),
      sub: fc.boolean(),
    })
    .map((r) =>
      fakeResource(
        'DestinationRule',
        r.name,
        {
          host: r.host,
          trafficPolicy: { loadBalancer: { simple: r.lb } },
          subsets: [
            { name: 'v1', labels: { version: 'v1' } },
            {
              name: 'v2',
              labels: { version: 'v2' },
              ...(r.sub ? { trafficPolicy: { outlierDetection: { interval: '1s' } } } : {}),
            },
          ],
        },
        r.ns,
      ),
    ),
  fc
    .record({
      name: fc.constantFrom('v1', 'v2', 'v3'),
      hosts: fc.uniqueArray(fc.constantFrom(...SERVICES, '*'), { minLength: 1, maxLength: 2 }),
      gateways: fc.option(fc.subarray(['edge', 'mesh', 'default/edge', 'other']), {
        nil: undefined,
      }),
      http: fc.array(
        fc.record({
          prefix: fc.option(fc.constantFrom('/x', '/y'), { nil: undefined }),
          route: routeArb,
        }),
        { minLength: 1, maxLength: 3 },
      ),
    })
    .map((v) =>
      fakeResource('VirtualService', v.name, {
        hosts: v.hosts,
        ...(v.gateways ? { gateways: v.gateways } : {}),
        http: v.http.map((h) => ({
          ...(h.prefix ? { match: [{ uri: { prefix: h.prefix } }] } : {}),
          route: h.route,
        })),
      }),
    ),
  fc.constantFrom(
    fakeResource('ServiceEntry', 'ext', {
      hosts: ['ext.example.com'],
      ports: [{ number: 443, name: 'https' }],
      resolution: 'DNS',
    }),
    fakeResource('PeerAuthentication', 'pa', { mtls: { mode: 'STRICT' } }, 'istio-system'),
    fakeResource('AuthorizationPolicy', 'ap', {
      action: 'DENY',
      selector: { matchLabels: { app: 'a' } },
    }),
    fakeResource('Sidecar', 'sc', { outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' } }),
    fakeResource('RetryBudget', 'rb', { host: 'b', budgetPercent: 20, minRetriesPerSecond: 5 }),
    fakeResource('LocalRateLimit', 'rl', {
      selector: { matchLabels: { app: 'a' } },
      tokenBucket: { maxTokens: 1, tokensPerFill: 1, fillInterval: '1s' },
    }),
  ),
);

/** Resources with distinct keys, created in the order generated. */
const storedArb = fc
  .uniqueArray(resourceArb, {
    selector: (r) => `${r.kind}/${r.metadata.namespace}/${r.metadata.name}`,
    maxLength: 8,
  })
  .map((list): StoredMeshResource[] =>
    list.map((r, i) => ({ resource: r, createIndex: i + 1, modifyIndex: i + 1 })),
  );

const proxyArb: fc.Arbitrary<ProxyIdentity> = fc.oneof(
  fc.constantFrom<ProxyIdentity>(
    { id: 'g', kind: 'gateway', name: 'edge', namespace: 'default' },
    { id: 's', kind: 'sidecar', name: 'a', namespace: 'default' },
  ),
  fc
    .record({
      name: fc.constantFrom(...SERVICES),
      ns: fc.constantFrom(...NAMESPACES.slice(0, 2)),
      upstreams: fc.subarray([...SERVICES, 'ext.example.com']),
    })
    .map((p) => ({
      id: 'x',
      kind: 'sidecar' as const,
      name: p.name,
      namespace: p.ns,
      upstreams: p.upstreams,
    })),
);

const compile = (
  proxy: ProxyIdentity,
  instances: readonly InstanceDto[],
  resources: readonly StoredMeshResource[],
) =>
  compileSnapshot({
    proxy,
    index: 1,
    mesh: indexMeshResources(resources),
    catalog: staticCompileCatalog(instances),
  });

describe('compileSnapshot (properties)', () => {
  it('is deterministic and blind to the order of instances and resources', () => {
    fc.assert(
      fc.property(
        proxyArb,
        instanceArb.chain((i) =>
          fc.tuple(fc.constant(i), fc.shuffledSubarray(i, { minLength: i.length })),
        ),
        storedArb.chain((r) =>
          fc.tuple(fc.constant(r), fc.shuffledSubarray(r, { minLength: r.length })),
        ),
        (proxy, [instances, shuffledInstances], [resources, shuffledResources]) => {
          const a = compile(proxy, instances, resources).snapshot;
          const b = compile(proxy, shuffledInstances, shuffledResources).snapshot;
          assert.deepEqual(b, a);
          assert.equal(
            compile({ ...proxy, id: 'another' }, instances, resources).snapshot.version,
            a.version,
          );
        },
      ),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('names only clusters it has, sums each route to 100, and orders endpoints by id', () => {
    fc.assert(
      fc.property(proxyArb, instanceArb, storedArb, (proxy, instances, resources) => {
        const s = compile(proxy, instances, resources).snapshot;
        const names = s.clusters.map((c) => c.name);
        assert.equal(new Set(names).size, names.length);
        for (const r of s.routes) {
          for (const b of r.backends) assert.ok(names.includes(b.cluster), b.cluster);
          if (r.mirror) assert.ok(names.includes(r.mirror.cluster));
          assert.equal(
            r.backends.reduce((sum, b) => sum + b.weight, 0),
            100,
            r.name,
          );
        }
        for (const c of s.clusters) {
          const ids = c.endpoints.map((e) => e.id);
          assert.deepEqual(ids, [...ids].sort());
        }
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  // What the control plane's precision rests on: a change that meets nothing in the deps leaves
  // the snapshot as it was.
  it('reports deps soundly: a change outside them leaves the version alone', () => {
    const changeArb = fc.oneof(
      fc.record({
        kind: fc.constant('status' as const),
        pick: fc.nat(),
        status: fc.constantFrom('passing', 'critical' as const),
      }),
      fc.record({
        kind: fc.constant('add' as const),
        service: fc.constantFrom(...SERVICES, 'e'),
        id: fc.constantFrom('n1', 'n2'),
      }),
      fc.record({ kind: fc.constant('remove' as const), pick: fc.nat() }),
      fc.record({ kind: fc.constant('put' as const), r: resourceArb }),
      fc.record({ kind: fc.constant('delete' as const), pick: fc.nat() }),
    );
    fc.assert(
      fc.property(
        proxyArb,
        instanceArb,
        storedArb,
        changeArb,
        (proxy, instances, resources, change) => {
          const before = compile(proxy, instances, resources);
          let nextInstances = instances;
          let nextResources = resources;
          let services: string[] = [];
          let touched: string[] = [];
          if (change.kind === 'status' || change.kind === 'remove') {
            const target = instances[change.pick % Math.max(1, instances.length)];
            if (target === undefined) return;
            services = [target.service];
            nextInstances =
              change.kind === 'remove'
                ? instances.filter((i) => i !== target)
                : instances.map((i) => (i === target ? { ...i, status: change.status } : i));
          } else if (change.kind === 'add') {
            services = [change.service];
            nextInstances = [
              ...instances.filter((i) => i.id !== change.id),
              fakeInstance(change.id, change.service),
            ];
          } else if (change.kind === 'put') {
            const key = (r: StoredMeshResource) =>
              `${r.resource.kind}/${r.resource.metadata.namespace}/${r.resource.metadata.name}`;
            const k = `${change.r.kind}/${change.r.metadata.namespace}/${change.r.metadata.name}`;
            const old = resources.find((r) => key(r) === k);
            touched = [...resourceTouches(change.r), ...(old ? resourceTouches(old.resource) : [])];
            nextResources = [
              ...resources.filter((r) => r !== old),
              { resource: change.r, createIndex: old?.createIndex ?? 100, modifyIndex: 100 },
            ];
          } else {
            const gone = resources[change.pick % Math.max(1, resources.length)];
            if (gone === undefined) return;
            touched = resourceTouches(gone.resource);
            nextResources = resources.filter((r) => r !== gone);
          }
          const { deps } = before;
          const meets =
            services.some((s) => deps.allServices || deps.services.has(s)) ||
            touched.some((k) => deps.resources.has(k));
          if (meets) return;
          const after = compile(proxy, nextInstances, nextResources).snapshot;
          assert.equal(after.version, before.snapshot.version);
        },
      ),
      { seed: SEED, numRuns: 1000 },
    );
  });
});
