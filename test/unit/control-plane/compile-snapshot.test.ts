import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { InstanceDto } from '../../../src/protocol/api-types.js';
import type { MeshResource } from '../../../src/protocol/mesh/resource.js';
import type { ProxyIdentity, SnapshotCluster } from '../../../src/protocol/mesh/snapshot.js';
import type { HttpRoute } from '../../../src/protocol/mesh/specs.js';
import { staticCompileCatalog } from '../../../src/control-plane/catalog-endpoints.js';
import { compileSnapshot } from '../../../src/control-plane/compile-snapshot.js';
import { DEFAULT_RETRIES } from '../../../src/control-plane/compile-routes.js';
import { indexMeshResources } from '../../../src/control-plane/mesh-index.js';
import { fakeInstance, fakeResource, fakeStored } from '../../../src/testing/fake-mesh-catalog.js';

const sidecar = (name: string, over: Partial<ProxyIdentity> = {}): ProxyIdentity => ({
  id: `${name}-1`,
  kind: 'sidecar',
  name,
  namespace: 'default',
  ...over,
});
const gateway = (name: string, namespace = 'default'): ProxyIdentity => ({
  id: `${name}~host~1`,
  kind: 'gateway',
  name,
  namespace,
});

function compile(
  proxy: ProxyIdentity,
  instances: readonly InstanceDto[],
  resources: readonly MeshResource[],
) {
  return compileSnapshot({
    proxy,
    index: 7,
    mesh: indexMeshResources(fakeStored(resources)),
    catalog: staticCompileCatalog(instances),
  });
}
const snap = (...args: Parameters<typeof compile>) => compile(...args).snapshot;
const cluster = (clusters: readonly SnapshotCluster[], name: string): SnapshotCluster => {
  const c = clusters.find((x) => x.name === name);
  assert.ok(c, `cluster ${name} in ${clusters.map((x) => x.name).join(', ')}`);
  return c;
};

const PAYMENTS = [
  fakeInstance('p3', 'payments', { meta: { version: 'v2', zone: 'b' }, address: '10.0.0.3' }),
  fakeInstance('p1', 'payments', { meta: { version: 'v1' }, address: '10.0.0.1' }),
  fakeInstance('p2', 'payments', {
    meta: { version: 'v2', zone: 'a' },
    address: '10.0.0.2',
    status: 'critical',
  }),
];
const ORDERS = [fakeInstance('o1', 'orders')];
const ALL = [...PAYMENTS, ...ORDERS];
const DR = fakeResource('DestinationRule', 'payments', {
  host: 'payments',
  trafficPolicy: {
    loadBalancer: { simple: 'ROUND_ROBIN' },
    outlierDetection: { consecutive5xxErrors: 3, interval: '5s' },
    connectionPool: { tcp: { maxConnections: 10, connectTimeout: '250ms' } },
  },
  subsets: [
    { name: 'v1', labels: { version: 'v1' } },
    {
      name: 'v2',
      labels: { version: 'v2', app: 'payments' },
      trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: 'X-User' } } },
    },
  ],
});
const vs = (
  name: string,
  http: HttpRoute[],
  over: { gateways?: string[]; hosts?: string[] } = {},
) => fakeResource('VirtualService', name, { hosts: over.hosts ?? ['payments'], http, ...over });
const to = (subset?: string, weight?: number) => ({
  destination: { host: 'payments', ...(subset ? { subset } : {}) },
  ...(weight === undefined ? {} : { weight }),
});

describe('compileSnapshot', () => {
  it('keeps http routes in order (first match wins) and names them namespace/vs/route', () => {
    const s = snap(sidecar('orders', { upstreams: ['payments'] }), ALL, [
      DR,
      vs('payments', [
        { name: 'canary', match: [{ headers: { 'X-Canary': { exact: '1' } } }], route: [to('v2')] },
        { match: [{ uri: { prefix: '/v2' } }], route: [to('v2')] },
        { route: [to('v1')] },
      ]),
    ]);
    assert.deepEqual(
      s.routes.map((r) => [r.name, r.backends.map((b) => b.cluster)]),
      [
        ['default/payments/canary', ['payments|v2']],
        ['default/payments/1', ['payments|v2']],
        ['default/payments/2', ['payments|v1']],
      ],
    );
    assert.deepEqual(s.routes[0]?.match, [{ headers: [{ name: 'x-canary', exact: '1' }] }]);
    assert.deepEqual(s.routes[1]?.match, [{ path: { prefix: '/v2' } }]);
    assert.deepEqual(s.routes[2]?.match, []);
    assert.deepEqual(s.routes[0]?.hosts, ['payments']);
  });

  it('gives a weighted split its weights and a single destination 100 whatever its weight', () => {
    const s = snap(sidecar('orders', { upstreams: ['payments'] }), ALL, [
      DR,
      vs('payments', [
        { match: [{ uri: { exact: '/a' } }], route: [to('v1', 90), to('v2', 10)] },
        { route: [to('v1', 50)] },
      ]),
    ]);
    assert.deepEqual(s.routes[0]?.backends, [
      { cluster: 'payments|v1', weight: 90 },
      { cluster: 'payments|v2', weight: 10 },
    ]);
    assert.deepEqual(s.routes[1]?.backends, [{ cluster: 'payments|v1', weight: 100 }]);
  });

  it('selects subset endpoints by labels (meta plus app), every status, ordered by id', () => {
    const s = snap(sidecar('orders', { upstreams: ['payments'] }), ALL, [
      DR,
      vs('payments', [{ route: [to('v1', 50), to('v2', 50)] }]),
    ]);
    assert.deepEqual(
      cluster(s.clusters, 'payments|v2').endpoints.map((e) => [e.id, e.status]),
      [
        ['p2', 'critical'],
        ['p3', 'passing'],
      ],
    );
    assert.deepEqual(
      cluster(s.clusters, 'payments|v1').endpoints.map((e) => e.id),
      ['p1'],
    );
    const p1 = cluster(s.clusters, 'payments|v1').endpoints[0];
    assert.deepEqual(p1, {
      id: 'p1',
      address: '10.0.0.1',
      port: 8080,
      status: 'passing',
      tags: [],
      meta: { version: 'v1' },
      weights: { passing: 1, warning: 1 },
    });
  });

  it('applies the rule policy to every subset, a subset policy replacing a whole field', () => {
    const s = snap(sidecar('orders', { upstreams: ['payments'] }), ALL, [
      DR,
      vs('payments', [{ route: [to('v1', 50), to('v2', 50)] }]),
    ]);
    const outlier = {
      consecutive5xxErrors: 3,
      intervalMs: 5000,
      baseEjectionMs: 30_000,
      maxEjectionPercent: 10,
      minHealthPercent: 0,
    };
    const v1 = cluster(s.clusters, 'payments|v1');
    assert.deepEqual(v1.loadBalancer, { type: 'round-robin' });
    assert.deepEqual(v1.outlierDetection, outlier);
    assert.deepEqual(v1.connectionPool, { maxConnections: 10, connectTimeoutMs: 250 });
    const v2 = cluster(s.clusters, 'payments|v2');
    assert.deepEqual(v2.loadBalancer, { type: 'ring-hash', hashOn: { header: 'x-user' } });
    assert.deepEqual(v2.outlierDetection, outlier);
    assert.deepEqual(v2.connectionPool, v1.connectionPool);
  });

  it('maps every load balancer and fills outlier detection with Istio defaults', () => {
    const table: [unknown, unknown][] = [
      [{ simple: 'ROUND_ROBIN' }, { type: 'round-robin' }],
      [{ simple: 'LEAST_REQUEST' }, { type: 'least-request' }],
      [{ simple: 'LEAST_CONN' }, { type: 'least-request' }],
      [{ simple: 'RANDOM' }, { type: 'random' }],
      [{ simple: 'UNSPECIFIED' }, undefined],
      [
        { consistentHash: { httpCookie: { name: 'u', ttl: '10s' }, maglev: {} } },
        { type: 'maglev', hashOn: { cookie: 'u', ttlMs: 10_000 } },
      ],
      [
        { consistentHash: { useSourceIp: true, ringHash: { minimumRingSize: 1024 } } },
        { type: 'ring-hash', hashOn: { sourceIp: true }, minimumRingSize: 1024 },
      ],
      [
        { consistentHash: { httpQueryParameterName: 'user' } },
        { type: 'ring-hash', hashOn: { query: 'user' } },
      ],
    ];
    for (const [lb, expected] of table) {
      const dr = fakeResource('DestinationRule', 'o', {
        host: 'orders',
        trafficPolicy: { loadBalancer: lb as never, outlierDetection: {} },
      });
      const c = cluster(
        snap(sidecar('x', { upstreams: ['orders'] }), ALL, [dr]).clusters,
        'orders',
      );
      assert.deepEqual(c.loadBalancer, expected, JSON.stringify(lb));
      assert.deepEqual(c.outlierDetection, {
        consecutive5xxErrors: 5,
        intervalMs: 10_000,
        baseEjectionMs: 30_000,
        maxEjectionPercent: 10,
        minHealthPercent: 0,
      });
    }
  });

  it('binds VirtualServices to gateways by name or namespace/name, and to sidecars by mesh', () => {
    const route = [{ route: [{ destination: { host: 'orders' } }] }];
    const resources = [
      vs('a-edge', route, { gateways: ['edge'], hosts: ['*'] }),
      vs('b-mesh', route, { hosts: ['orders'] }),
      vs('c-both', route, { gateways: ['mesh', 'edge'], hosts: ['orders'] }),
      vs('d-ops-edge', route, { gateways: ['ops/edge'], hosts: ['*'] }),
      vs('e-other', route, { gateways: ['internal'], hosts: ['*'] }),
    ];
    const names = (p: ProxyIdentity) => snap(p, ALL, resources).routes.map((r) => r.name);
    assert.deepEqual(names(gateway('edge')), ['default/a-edge/0', 'default/c-both/0']);
    assert.deepEqual(names(gateway('edge', 'ops')), [
      'default/a-edge/0',
      'default/c-both/0',
      'default/d-ops-edge/0',
    ]);
    assert.deepEqual(names(sidecar('x', { upstreams: ['orders'] })), [
      'default/b-mesh/0',
      'default/c-both/0',
    ]);
    const g = snap(gateway('edge'), ALL, resources);
    assert.equal(g.inbound, undefined);
    assert.deepEqual(g.egress, { mode: 'ALLOW_ANY' });
    assert.deepEqual(
      g.clusters.map((c) => c.name),
      ['orders'],
    );
  });

  it('orders several VirtualServices of one host by creation, then key', () => {
    const first = vs('z-first', [{ match: [{ uri: { prefix: '/z' } }], route: [to()] }]);
    const second = vs('a-second', [{ route: [to()] }]);
    const s = snap(sidecar('orders', { upstreams: ['payments'] }), ALL, [first, second]);
    assert.deepEqual(
      s.routes.map((r) => r.name),
      ['default/z-first/0', 'default/a-second/0'],
    );
  });

  it('gives a sidecar a default route to each upstream no VirtualService routes', () => {
    const se = fakeResource('ServiceEntry', 'stripe', {
      hosts: ['api.stripe.com'],
      ports: [{ number: 443, name: 'https', protocol: 'HTTPS' }],
      resolution: 'DNS',
    });
    const all = snap(sidecar('orders'), ALL, [se]);
    assert.deepEqual(
      all.routes.map((r) => [r.name, r.hosts, r.backends]),
      [
        [
          'default:api.stripe.com',
          ['api.stripe.com'],
          [{ cluster: 'api.stripe.com', weight: 100 }],
        ],
        ['default:orders', ['orders'], [{ cluster: 'orders', weight: 100 }]],
        ['default:payments', ['payments'], [{ cluster: 'payments', weight: 100 }]],
      ],
    );
    assert.deepEqual(all.routes[0]?.retries, DEFAULT_RETRIES);
    assert.deepEqual(all.routes[0]?.match, []);
    assert.deepEqual(
      cluster(all.clusters, 'payments').endpoints.map((e) => e.id),
      ['p1', 'p2', 'p3'],
    );
    const some = snap(
      sidecar('orders', { upstreams: ['payments.default.svc.cluster.local'] }),
      ALL,
      [se],
    );
    assert.deepEqual(
      some.routes.map((r) => r.name),
      ['default:payments'],
    );
    assert.deepEqual(
      some.clusters.map((c) => c.name),
      ['payments'],
    );
  });

  it('reads a ServiceEntry host as an external cluster, DNS without endpoints as the host', () => {
    const dns = fakeResource('ServiceEntry', 'stripe', {
      hosts: ['api.stripe.com'],
      ports: [{ number: 443, name: 'https', protocol: 'HTTPS' }],
      resolution: 'DNS',
      location: 'MESH_EXTERNAL',
    });
    const fixed = fakeResource('ServiceEntry', 'legacy', {
      hosts: ['legacy.internal'],
      ports: [{ number: 80, name: 'http', protocol: 'HTTP', targetPort: 8080 }],
      resolution: 'STATIC',
      endpoints: [
        { address: '192.168.0.2', labels: { dc: 'b' } },
        { address: '192.168.0.1', ports: { http: 9090 }, weight: 3 },
      ],
    });
    const s = snap(sidecar('orders', { upstreams: ['api.stripe.com', 'legacy.internal'] }), ALL, [
      dns,
      fixed,
    ]);
    assert.deepEqual(cluster(s.clusters, 'api.stripe.com'), {
      name: 'api.stripe.com',
      service: 'api.stripe.com',
      external: { resolution: 'DNS', protocol: 'HTTPS' },
      endpoints: [
        {
          id: 'api.stripe.com:443',
          address: 'api.stripe.com',
          port: 443,
          status: 'passing',
          tags: [],
          meta: {},
          weights: { passing: 1, warning: 1 },
        },
      ],
    });
    assert.deepEqual(
      cluster(s.clusters, 'legacy.internal').endpoints.map((e) => [
        e.id,
        e.meta,
        e.weights.passing,
      ]),
      [
        ['192.168.0.1:9090', {}, 3],
        ['192.168.0.2:8080', { dc: 'b' }, 1],
      ],
    );
  });

  it('compiles timeouts, retries, faults, mirrors, rewrites and header edits', () => {
    const s = snap(sidecar('orders', { upstreams: ['payments'] }), ALL, [
      DR,
      vs('payments', [
        {
          match: [
            {
              uri: { regex: '/u/[0-9]+' },
              method: { exact: 'GET' },
              queryParams: { b: { exact: '2' }, a: { prefix: 'x' } },
              ignoreUriCase: true,
            },
            { authority: { exact: 'pay.example' } },
          ],
          route: [
            {
              destination: { host: 'payments', subset: 'v1', port: { number: 8080 } },
              headers: { request: { set: { 'x-to': 'v1' } } },
            },
          ],
          rewrite: { uri: '/users' },
          timeout: '2s',
          retries: { attempts: 3, perTryTimeout: '500ms', retryOn: '5xx, reset,,gateway-error' },
          fault: {
            delay: { fixedDelay: '100ms' },
            abort: { httpStatus: 503, percentage: { value: 1.5 } },
          },
          mirror: { host: 'payments', subset: 'v2' },
          headers: { response: { remove: ['server'] } },
        },
        {
          route: [to('v1')],
          retries: { attempts: 0 },
          mirror: { host: 'orders' },
          mirrorPercentage: { value: 5 },
        },
      ]),
    ]);
    const [r0, r1] = s.routes;
    assert.deepEqual(r0, {
      name: 'default/payments/0',
      hosts: ['payments'],
      match: [
        {
          path: { regex: '/u/[0-9]+' },
          method: { exact: 'GET' },
          query: [
            { name: 'a', prefix: 'x' },
            { name: 'b', exact: '2' },
          ],
          ignoreUriCase: true,
        },
        { authority: { exact: 'pay.example' } },
      ],
      backends: [
        { cluster: 'payments|v1', weight: 100, requestHeaders: { set: { 'x-to': 'v1' } } },
      ],
      rewrite: { uri: '/users' },
      responseHeaders: { remove: ['server'] },
      timeoutMs: 2000,
      retries: { attempts: 3, perTryTimeoutMs: 500, retryOn: ['5xx', 'reset', 'gateway-error'] },
      fault: { delay: { ms: 100, percent: 100 }, abort: { status: 503, percent: 1.5 } },
      mirror: { cluster: 'payments|v2', percent: 100 },
    });
    assert.deepEqual(r1?.retries, { attempts: 0, retryOn: DEFAULT_RETRIES.retryOn });
    assert.deepEqual(r1?.mirror, { cluster: 'orders', percent: 5 });
    assert.equal(cluster(s.clusters, 'payments|v1').port, 8080);
    assert.deepEqual(
      s.clusters.map((c) => c.name),
      ['orders', 'payments|v1', 'payments|v2'],
    );
  });

  it('resolves long host forms to the catalog service', () => {
    const s = snap(sidecar('orders', { upstreams: ['payments'] }), ALL, [
      vs(
        'payments',
        [{ route: [{ destination: { host: 'payments.default.svc.cluster.local' } }] }],
        {
          hosts: ['payments.default'],
        },
      ),
    ]);
    assert.deepEqual(s.routes[0]?.hosts, ['payments']);
    assert.deepEqual(
      s.clusters.map((c) => [c.name, c.service, c.endpoints.length]),
      [['payments', 'payments', 3]],
    );
  });

  it('adds the retry budget, response cache and outbound rate limit of a host to its cluster', () => {
    const s = snap(sidecar('orders', { upstreams: ['payments'] }), ALL, [
      fakeResource('RetryBudget', 'rb', {
        host: 'payments',
        budgetPercent: 20,
        minRetriesPerSecond: 10,
      }),
      fakeResource('ResponseCache', 'rc', {
        host: 'payments',
        maxEntries: 100,
        maxBodyBytes: 65536,
        defaultTtl: '30s',
      }),
      fakeResource('LocalRateLimit', 'rl', {
        host: 'payments',
        tokenBucket: { maxTokens: 10, tokensPerFill: 5, fillInterval: '1s' },
      }),
    ]);
    const c = cluster(s.clusters, 'payments');
    assert.deepEqual(c.retryBudget, { budgetPercent: 20, minRetriesPerSecond: 10, ttlMs: 10_000 });
    assert.deepEqual(c.cache, { maxEntries: 100, maxBodyBytes: 65536, defaultTtlMs: 30_000 });
    assert.deepEqual(c.rateLimit, { maxTokens: 10, tokensPerFill: 5, fillIntervalMs: 1000 });
    assert.equal(s.inbound?.rateLimit, undefined, 'a host limit is outbound only');
  });

  it('compiles the inbound policies of the sidecar service: selector > namespace > mesh', () => {
    const pa = (name: string, mode: string, ns = 'default', selector?: Record<string, string>) =>
      fakeResource(
        'PeerAuthentication',
        name,
        {
          ...(selector ? { selector: { matchLabels: selector } } : {}),
          mtls: { mode: mode as never },
        },
        ns,
      );
    const mesh = pa('mesh', 'STRICT', 'istio-system');
    const nsWide = pa('ns', 'DISABLE');
    const own = pa('own', 'UNSET', 'default', { app: 'payments' });
    const other = pa('other', 'DISABLE', 'default', { app: 'orders' });
    const mtls = (resources: MeshResource[], name = 'payments') =>
      snap(sidecar(name, { upstreams: [] }), ALL, resources).inbound?.mtls;
    assert.equal(mtls([]), 'PERMISSIVE');
    assert.equal(mtls([mesh]), 'STRICT');
    assert.equal(mtls([mesh, nsWide]), 'DISABLE');
    assert.equal(mtls([mesh, nsWide, own]), 'DISABLE', 'UNSET inherits the namespace mode');
    assert.equal(mtls([mesh, other]), 'STRICT');
    assert.equal(mtls([mesh, other], 'orders'), 'DISABLE');
    const ports = fakeResource('PeerAuthentication', 'ports', {
      selector: { matchLabels: { app: 'payments' } },
      mtls: { mode: 'STRICT' },
      portLevelMtls: { '8080': { mode: 'PERMISSIVE' }, '9090': { mode: 'UNSET' } },
    });
    const inbound = snap(sidecar('payments', { upstreams: [] }), ALL, [ports]).inbound;
    assert.equal(inbound?.mtls, 'STRICT');
    assert.deepEqual(inbound?.portLevelMtls, { '8080': 'PERMISSIVE', '9090': 'STRICT' });
  });

  it('lists the AuthorizationPolicies selecting the service, by key, and its inbound rate limit', () => {
    const ap = (name: string, ns = 'default', app?: string) =>
      fakeResource(
        'AuthorizationPolicy',
        name,
        { action: 'ALLOW', ...(app ? { selector: { matchLabels: { app } } } : {}) },
        ns,
      );
    const limit = (name: string, app?: string) =>
      fakeResource('LocalRateLimit', name, {
        ...(app ? { selector: { matchLabels: { app } } } : {}),
        tokenBucket: { maxTokens: app ? 1 : 2, tokensPerFill: 1, fillInterval: '100ms' },
      });
    const s = snap(sidecar('payments', { upstreams: [] }), ALL, [
      ap('z-all'),
      ap('a-payments', 'default', 'payments'),
      ap('orders-only', 'default', 'orders'),
      ap('mesh-wide', 'istio-system'),
      ap('elsewhere', 'shop'),
      limit('a-ns'),
      limit('b-own', 'payments'),
    ]);
    assert.deepEqual(
      s.inbound?.authorization.map((a) => a.key),
      [
        'AuthorizationPolicy/default/a-payments',
        'AuthorizationPolicy/default/z-all',
        'AuthorizationPolicy/istio-system/mesh-wide',
      ],
    );
    assert.deepEqual(s.inbound?.rateLimit, { maxTokens: 1, tokensPerFill: 1, fillIntervalMs: 100 });
    assert.equal(s.inbound?.service, 'payments');
  });

  it('never takes a host LocalRateLimit (the calls to that host) as an inbound rate limit', () => {
    const hostLimit = fakeResource('LocalRateLimit', 'calls-to-orders', {
      host: 'orders',
      tokenBucket: { maxTokens: 1, tokensPerFill: 1, fillInterval: '100ms' },
    });
    for (const name of ['payments', 'orders'])
      assert.equal(
        snap(sidecar(name, { upstreams: [] }), ALL, [hostLimit]).inbound?.rateLimit,
        undefined,
        name,
      );
  });

  it('takes the egress mode from the Sidecar resource selecting it, else the namespace one', () => {
    const sc = (name: string, mode: 'ALLOW_ANY' | 'REGISTRY_ONLY', app?: string, ns = 'default') =>
      fakeResource(
        'Sidecar',
        name,
        {
          ...(app ? { workloadSelector: { matchLabels: { app } } } : {}),
          outboundTrafficPolicy: { mode },
        },
        ns,
      );
    const egress = (resources: MeshResource[]) =>
      snap(sidecar('orders', { upstreams: [] }), ALL, resources).egress.mode;
    assert.equal(egress([]), 'ALLOW_ANY');
    assert.equal(egress([sc('root', 'REGISTRY_ONLY', undefined, 'istio-system')]), 'REGISTRY_ONLY');
    assert.equal(egress([sc('ns', 'REGISTRY_ONLY')]), 'REGISTRY_ONLY');
    assert.equal(
      egress([sc('ns', 'REGISTRY_ONLY'), sc('own', 'ALLOW_ANY', 'orders')]),
      'ALLOW_ANY',
    );
    assert.equal(egress([sc('other', 'REGISTRY_ONLY', 'payments')]), 'ALLOW_ANY');
  });

  it('prefers the DestinationRule in the proxy namespace, then the service namespace', () => {
    const dr = (ns: string, simple: 'RANDOM' | 'LEAST_CONN' | 'ROUND_ROBIN') =>
      fakeResource(
        'DestinationRule',
        `pay-${ns}`,
        { host: 'payments', trafficPolicy: { loadBalancer: { simple } } },
        ns,
      );
    const lb = (proxyNs: string, resources: MeshResource[]) =>
      cluster(
        snap(sidecar('orders', { namespace: proxyNs, upstreams: ['payments'] }), ALL, resources)
          .clusters,
        'payments',
      ).loadBalancer;
    const rules = [dr('default', 'RANDOM'), dr('shop', 'LEAST_CONN')];
    assert.deepEqual(lb('shop', rules), { type: 'least-request' });
    assert.deepEqual(lb('default', rules), { type: 'random' });
    assert.deepEqual(lb('elsewhere', rules), { type: 'random' }, 'the service namespace (default)');
  });

  it('records what it read: services, hosts and kinds', () => {
    const { deps } = compile(sidecar('orders', { upstreams: ['payments'] }), ALL, [
      DR,
      vs('payments', [{ route: [to('v1', 90), to('v2', 10)] }]),
    ]);
    assert.deepEqual([...deps.services], ['payments']);
    assert.equal(deps.allServices, false);
    for (const key of [
      'DestinationRule:payments',
      'ServiceEntry:payments',
      'VirtualService:mesh:payments',
      'VirtualService:mesh:*',
      'PeerAuthentication@default',
      'AuthorizationPolicy@default',
      'Sidecar@default',
    ]) {
      assert.ok(deps.resources.has(key), key);
    }
    assert.equal(deps.resources.has('VirtualService:mesh'), false);
    const all = compile(sidecar('orders'), ALL, []).deps;
    assert.equal(all.allServices, true);
    assert.ok(all.resources.has('VirtualService:mesh') && all.resources.has('ServiceEntry:*'));
  });

  it('versions by content: same content same version, whatever the proxy id or index', () => {
    const resources = [DR, vs('payments', [{ route: [to('v1', 90), to('v2', 10)] }])];
    const a = snap(sidecar('orders', { upstreams: ['payments'] }), ALL, resources);
    const b = snap(
      sidecar('orders', { id: 'other', upstreams: ['payments'] }),
      [...ALL].reverse(),
      resources,
    );
    assert.match(a.version, /^[0-9a-f]{16}$/);
    assert.equal(a.version, b.version);
    assert.equal(a.index, 7);
    const moved = ALL.map((i) => (i.id === 'p1' ? { ...i, status: 'critical' as const } : i));
    assert.notEqual(
      snap(sidecar('orders', { upstreams: ['payments'] }), moved, resources).version,
      a.version,
    );
  });

  it("compiles a DestinationRule's tls mode into its clusters, a subset's replacing the rule's (issue 20)", () => {
    const rule = fakeResource('DestinationRule', 'payments', {
      host: 'payments',
      trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } },
      subsets: [
        { name: 'v1', labels: { version: 'v1' } },
        { name: 'v2', labels: { version: 'v2' }, trafficPolicy: { tls: { mode: 'DISABLE' } } },
      ],
    });
    const s = snap(sidecar('orders', { upstreams: ['payments'] }), ALL, [
      rule,
      vs('payments', [{ route: [to('v1', 50), to('v2', 50)] }]),
    ]);
    assert.deepEqual(cluster(s.clusters, 'payments|v1').tls, { mode: 'ISTIO_MUTUAL' });
    assert.deepEqual(cluster(s.clusters, 'payments|v2').tls, { mode: 'DISABLE' });
    // No rule: auto mTLS, no field.
    const plain = snap(sidecar('orders', { upstreams: ['payments'] }), ALL, []);
    assert.equal(cluster(plain.clusters, 'payments').tls, undefined);
  });
});
