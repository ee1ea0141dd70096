/** @module fast-check arbitraries of catalogs, mesh resources and proxies for the compiler's tests. */
import fc from 'fast-check';
import type { StoredMeshResource } from '../../../src/protocol/mesh/resource.js';
import type { ProxyIdentity } from '../../../src/protocol/mesh/snapshot.js';
import type { HttpRouteDestination } from '../../../src/protocol/mesh/specs.js';
import { fakeInstance, fakeResource } from '../../../src/testing/fake-mesh-catalog.js';

export const SERVICES = ['a', 'b', 'c', 'd'];
const NAMESPACES = ['default', 'shop', 'istio-system'];

export const instanceArb = fc
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

export const resourceArb = fc.oneof(
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
export const storedArb = fc
  .uniqueArray(resourceArb, {
    selector: (r) => `${r.kind}/${r.metadata.namespace}/${r.metadata.name}`,
    maxLength: 8,
  })
  .map((list): StoredMeshResource[] =>
    list.map((r, i) => ({ resource: r, createIndex: i + 1, modifyIndex: i + 1 })),
  );

export const proxyArb: fc.Arbitrary<ProxyIdentity> = fc.oneof(
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

/** One catalog or resource change (`pick` chooses among what exists). */
export const changeArb = fc.oneof(
  fc.record({
    kind: fc.constant('status' as const),
    pick: fc.nat(),
    status: fc.constantFrom('passing', 'critical' as const),
  }),
  fc.record({
    kind: fc.constant('add' as const),
    service: fc.constantFrom(...SERVICES, 'e'),
    id: fc.constantFrom('n1', 'n2', 'n3'),
    version: fc.constantFrom('v1', 'v2'),
  }),
  fc.record({ kind: fc.constant('remove' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('put' as const), r: resourceArb }),
  fc.record({ kind: fc.constant('delete' as const), pick: fc.nat() }),
);
