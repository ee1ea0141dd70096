import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { describe, it } from 'node:test';
import { isMeshError } from '../../../src/core/errors.js';
import { buildMeshRoutes } from '../../../src/gateway/mesh-routes.js';
import { resolveGatewayOptions, type GatewayOptions } from '../../../src/gateway/options.js';
import type {
  MeshSnapshot,
  SnapshotCluster,
  SnapshotRoute,
} from '../../../src/protocol/mesh/snapshot.js';
import type { Cluster } from '../../../src/proxy/cluster.js';
import type { ProxyRoute } from '../../../src/proxy/contract.js';
import type { FilterExchange } from '../../../src/proxy/filter.js';
import type { MatchInput } from '../../../src/proxy/route-table.js';
import {
  meshSnapshot,
  snapshotCluster,
  snapshotEndpoint,
  snapshotRoute,
} from '../../helpers/mesh-snapshot.js';

const OPTIONS: GatewayOptions = resolveGatewayOptions({ flags: { mesh: true } });

const endpoint = snapshotEndpoint;
const cluster = snapshotCluster;
const route = snapshotRoute;
const snapshot = meshSnapshot;

const input = (over: Partial<MatchInput> = {}): MatchInput => ({
  method: 'GET',
  host: 'shop.example.com',
  path: '/',
  query: '',
  headers: {},
  ...over,
});

/** The route a request takes in a built table (undefined: 404). */
function routeFor(s: MeshSnapshot, over: Partial<MatchInput> = {}): ProxyRoute | undefined {
  return buildMeshRoutes(s, OPTIONS).table.match(input(over));
}

/** Runs a route's filters (for `cluster`) over a request; answers what the upstream would get. */
function runFilters(
  r: ProxyRoute,
  path: string,
  responseHeaders: string[] = [],
  headers: IncomingHttpHeaders = {},
) {
  const cluster = r.pickCluster();
  const set: [string, string][] = [];
  const added: [string, string][] = [];
  const removed: string[] = [];
  const ex: FilterExchange = {
    method: 'GET',
    socket: {},
    headers,
    path,
    setRequestHeader: (n, v) => set.push([n, v]),
    addRequestHeader: (n, v) => added.push([n, v]),
    removeRequestHeader: (n) => removed.push(n),
  };
  const filters = r.filtersFor?.(cluster) ?? r.filters;
  for (const f of filters) assert.equal(f.onRequest?.(ex) ?? 'continue', 'continue');
  const response = responseHeaders.slice();
  for (const f of filters) f.onResponseHeaders?.(response);
  return { cluster, path: ex.path, set, added, removed, response };
}

/** The problems a refused snapshot lists. */
function refusal(s: MeshSnapshot): string[] {
  try {
    buildMeshRoutes(s, OPTIONS);
  } catch (err) {
    assert.ok(isMeshError(err, 'MESHWORK_ERR_CONFIG_INVALID'), String(err));
    return err.details?.problems as string[];
  }
  assert.fail('the snapshot was accepted');
}

describe('buildMeshRoutes', () => {
  describe('matching', () => {
    it('takes the first route whose host and match fit', () => {
      const s = snapshot(
        [
          route('a', { match: [{ path: { prefix: '/api' } }] }),
          route('b'),
          route('c', { match: [{ path: { prefix: '/api' } }] }),
        ],
        [cluster('web')],
      );
      assert.equal(routeFor(s, { path: '/api/x' })?.name, 'a');
      assert.equal(routeFor(s, { path: '/other' })?.name, 'b');
    });

    const cases: [string, Partial<SnapshotRoute>, Partial<MatchInput>, boolean][] = [
      ['hosts: an exact name', { hosts: ['shop.example.com'] }, {}, true],
      ['hosts: another name', { hosts: ['admin.example.com'] }, {}, false],
      ['hosts: * is any', { hosts: ['*'] }, { host: 'x' }, true],
      ['hosts: *.example.com', { hosts: ['*.example.com'] }, {}, true],
      [
        'hosts: *.example.com not the apex',
        { hosts: ['*.example.com'] },
        { host: 'example.com' },
        false,
      ],
      ['uri exact', { match: [{ path: { exact: '/a' } }] }, { path: '/a' }, true],
      ['uri exact, longer path', { match: [{ path: { exact: '/a' } }] }, { path: '/a/b' }, false],
      ['uri prefix', { match: [{ path: { prefix: '/a' } }] }, { path: '/a/b' }, true],
      [
        'uri regex, anchored',
        { match: [{ path: { regex: '/u/[0-9]+' } }] },
        { path: '/u/1/x' },
        false,
      ],
      ['uri regex', { match: [{ path: { regex: '/u/[0-9]+' } }] }, { path: '/u/12' }, true],
      [
        'ignoreUriCase prefix',
        { match: [{ path: { prefix: '/API' }, ignoreUriCase: true }] },
        { path: '/api/x' },
        true,
      ],
      [
        'ignoreUriCase regex',
        { match: [{ path: { regex: '/api/[a-z]+' }, ignoreUriCase: true }] },
        { path: '/API/X' },
        true,
      ],
      [
        'case matters without ignoreUriCase',
        { match: [{ path: { prefix: '/API' } }] },
        { path: '/api' },
        false,
      ],
      ['method exact', { match: [{ method: { exact: 'POST' } }] }, { method: 'POST' }, true],
      ['method exact, other', { match: [{ method: { exact: 'POST' } }] }, {}, false],
      [
        'authority prefix (port included)',
        { match: [{ authority: { prefix: 'shop.example.com:' } }] },
        { authority: 'shop.example.com:8080' },
        true,
      ],
      [
        'header exact',
        { match: [{ headers: [{ name: 'x-user', exact: 'ann' }] }] },
        { headers: { 'x-user': 'ann' } },
        true,
      ],
      [
        'header prefix',
        { match: [{ headers: [{ name: 'x-user', prefix: 'an' }] }] },
        { headers: { 'x-user': 'ann' } },
        true,
      ],
      [
        'header regex, absent header',
        { match: [{ headers: [{ name: 'x-user', regex: '.*' }] }] },
        {},
        false,
      ],
      [
        'query exact',
        { match: [{ query: [{ name: 'v', exact: '2' }] }] },
        { query: 'a=1&v=2' },
        true,
      ],
      [
        'matches are OR',
        { match: [{ path: { exact: '/x' } }, { path: { exact: '/y' } }] },
        { path: '/y' },
        true,
      ],
      [
        'conditions of one match are AND',
        { match: [{ path: { exact: '/y' }, method: { exact: 'POST' } }] },
        { path: '/y' },
        false,
      ],
    ];
    for (const [what, r, req, matches] of cases) {
      it(`${what}: ${matches ? 'matches' : 'does not match'}`, () => {
        assert.equal(routeFor(snapshot([route('r', r)]), req)?.name, matches ? 'r' : undefined);
      });
    }

    it('has no host routing: a <service>.<domain> Host no route serves is a 404', () => {
      const s = snapshot([route('r', { hosts: ['shop.example.com'] })]);
      assert.equal(routeFor(s, { host: 'web.mesh.local' }), undefined);
    });
  });

  describe('backends', () => {
    it('splits by weight exactly over a window of 100 requests (smooth weighted round-robin)', () => {
      const s = snapshot(
        [
          route('r', {
            backends: [
              { cluster: 'web|v1', weight: 90 },
              { cluster: 'web|v2', weight: 10 },
            ],
          }),
        ],
        [cluster('web|v1'), cluster('web|v2')],
      );
      const r = routeFor(s) as ProxyRoute;
      const counts = new Map<string, number>();
      for (let i = 0; i < 100; i++) {
        const c = r.pickCluster().name;
        counts.set(c, (counts.get(c) ?? 0) + 1);
      }
      assert.deepEqual(Object.fromEntries(counts), { 'web|v1': 90, 'web|v2': 10 });
    });

    it('feeds each cluster its endpoints (a subset: the ones the snapshot lists), named as in the snapshot', () => {
      const s = snapshot(
        [route('r', { backends: [{ cluster: 'web|v2', weight: 100 }] })],
        [cluster('web|v2', { endpoints: [endpoint('a', 1), endpoint('b', 2)] })],
      );
      const c = (routeFor(s) as ProxyRoute).pickCluster();
      assert.equal(c.name, 'web|v2');
      assert.equal(c.service, 'web');
      assert.equal(c.total, 2);
      const picked = new Set([c.pick(undefined, undefined)?.id, c.pick(undefined, undefined)?.id]);
      assert.deepEqual([...picked].sort(), ['a', 'b']);
    });
  });

  describe('rewrite and header edits', () => {
    it('replaces the matched prefix of a prefix match', () => {
      const r = routeFor(
        snapshot([route('r', { match: [{ path: { prefix: '/api/' } }], rewrite: { uri: '/' } })]),
        { path: '/api/users' },
      ) as ProxyRoute;
      assert.equal(runFilters(r, '/api/users?x=1').path, '/users?x=1');
    });

    it('replaces the whole path (query kept) of an exact or regex match, per match', () => {
      const s = snapshot([
        route('r', {
          match: [{ path: { exact: '/old' } }, { path: { prefix: '/legacy' } }],
          rewrite: { uri: '/new' },
        }),
      ]);
      const exact = routeFor(s, { path: '/old' }) as ProxyRoute;
      assert.equal(runFilters(exact, '/old?q=1').path, '/new?q=1');
      const prefix = routeFor(s, { path: '/legacy/a' }) as ProxyRoute;
      assert.equal(runFilters(prefix, '/legacy/a').path, '/new/a');
    });

    it('rewrites the authority: the Host sent upstream', () => {
      const r = routeFor(snapshot([route('r', { rewrite: { authority: 'internal.web' } })]));
      assert.deepEqual(runFilters(r as ProxyRoute, '/').set, [['host', 'internal.web']]);
    });

    it('applies route then backend header edits: request set/add/remove, response set/add/remove', () => {
      const s = snapshot([
        route('r', {
          requestHeaders: { set: { 'X-Route': '1' }, add: { 'x-multi': 'a' }, remove: ['x-drop'] },
          responseHeaders: { set: { 'x-served-by': 'gw' }, remove: ['server'] },
          backends: [
            {
              cluster: 'web',
              weight: 100,
              requestHeaders: { set: { 'x-backend': 'web' } },
              responseHeaders: { add: { 'x-via': 'web' } },
            },
          ],
        }),
      ]);
      const out = runFilters(routeFor(s) as ProxyRoute, '/', ['Server', 'node', 'x-a', '1']);
      assert.deepEqual(out.set, [
        ['x-route', '1'],
        ['x-backend', 'web'],
      ]);
      assert.deepEqual(out.added, [['x-multi', 'a']]);
      assert.deepEqual(out.removed, ['x-drop']);
      assert.deepEqual(out.response, ['x-a', '1', 'x-served-by', 'gw', 'x-via', 'web']);
    });
  });

  describe('timeouts and retries', () => {
    it('maps timeoutMs to the deadline and retries onto the retry policy (attempts are retries)', () => {
      const r = routeFor(
        snapshot([
          route('r', {
            timeoutMs: 2500,
            retries: { attempts: 2, perTryTimeoutMs: 300, retryOn: ['gateway-error', '409'] },
          }),
        ]),
      ) as ProxyRoute;
      const o = r.retry.options;
      assert.equal(o.overallTimeoutMs, 2500);
      assert.equal(o.maxAttempts, 3);
      assert.equal(o.perTryTimeoutMs, 300);
      assert.deepEqual(o.retryOnStatuses, [409, 502, 503, 504]);
      assert.equal(o.retryOnConnectErrors, true);
      assert.equal(r.retry.retriesOnStatus(409), true);
      assert.equal(r.retry.retriesOnStatus(500), false);
    });

    const retryOn: [readonly string[], number[], boolean][] = [
      [['5xx'], Array.from({ length: 100 }, (_, i) => 500 + i), true],
      [['connect-failure'], [], true],
      [['retriable-4xx'], [409], false],
      [['503', 'cancelled', 'unavailable'], [503], false],
      [[], [503], true],
      [
        ['connect-failure', 'refused-stream', 'unavailable', 'cancelled', 'retriable-status-codes'],
        [503],
        true,
      ],
      [['retriable-status-codes', '502'], [502], false],
    ];
    for (const [conditions, statuses, connect] of retryOn) {
      it(`retryOn [${conditions.join(',')}] retries ${statuses.length} statuses, connect errors ${connect}`, () => {
        const r = routeFor(
          snapshot([route('r', { retries: { attempts: 1, retryOn: conditions } })]),
        ) as ProxyRoute;
        assert.deepEqual(r.retry.options.retryOnStatuses, statuses);
        assert.equal(r.retry.options.retryOnConnectErrors, connect);
      });
    }

    it("uses the gateway's retry options and request timeout on a route without retries", () => {
      const r = routeFor(snapshot([route('r')])) as ProxyRoute;
      assert.equal(r.retry.options.maxAttempts, 3);
      assert.equal(r.retry.options.overallTimeoutMs, OPTIONS.requestTimeoutMs);
    });

    it("takes the retry budget of the route's destinations", () => {
      const r = routeFor(
        snapshot(
          [route('r')],
          [
            cluster('web', {
              retryBudget: { budgetPercent: 25, minRetriesPerSecond: 3, ttlMs: 5000 },
            }),
          ],
        ),
      ) as ProxyRoute;
      assert.deepEqual(r.retry.options.budget, {
        ratio: 0.25,
        minRetriesPerSecond: 3,
        windowMs: 5000,
      });
    });
  });

  describe('cluster policies', () => {
    const clusterOf = (over: Partial<SnapshotCluster>): Cluster =>
      (routeFor(snapshot([route('r')], [cluster('web', over)])) as ProxyRoute).pickCluster();

    it('maps the load balancer to the SDK balancer (the gateway default without one)', () => {
      assert.equal(clusterOf({}).balancer.kind, 'round-robin');
      assert.equal(
        clusterOf({ loadBalancer: { type: 'least-request' } }).balancer.kind,
        'least-request',
      );
      assert.equal(clusterOf({ loadBalancer: { type: 'random' } }).balancer.kind, 'random');
    });

    const hashes: [
      string,
      SnapshotCluster['loadBalancer'],
      IncomingHttpHeaders,
      string,
      string | undefined,
    ][] = [
      [
        'a header',
        { type: 'ring-hash', hashOn: { header: 'x-user' } },
        { 'x-user': 'ann' },
        '/',
        'ann',
      ],
      [
        'a cookie',
        { type: 'maglev', hashOn: { cookie: 'sid' } },
        { cookie: 'a=1; sid=s42' },
        '/',
        's42',
      ],
      ['the source ip', { type: 'ring-hash', hashOn: { sourceIp: true } }, {}, '/', '10.0.0.7'],
      ['a query parameter', { type: 'ring-hash', hashOn: { query: 'u' } }, {}, '/x?u=bob', 'bob'],
      ['nothing named: x-meshwork-hash-key', undefined, { 'x-meshwork-hash-key': 'k' }, '/', 'k'],
    ];
    for (const [what, lb, headers, path, key] of hashes) {
      it(`hashes on ${what}`, () => {
        const c = clusterOf(lb === undefined ? {} : { loadBalancer: lb });
        if (lb !== undefined) assert.equal(c.balancer.kind, lb.type);
        assert.equal(c.hashKey(headers, { path, remoteAddress: '10.0.0.7' }), key);
      });
    }

    it('sends the same hash key to the same endpoint', () => {
      const c = clusterOf({
        loadBalancer: { type: 'ring-hash', hashOn: { header: 'x-user' } },
        endpoints: [endpoint('a', 1), endpoint('b', 2), endpoint('c', 3)],
      });
      const first = c.pick(undefined, 'ann')?.id;
      for (let i = 0; i < 20; i++) assert.equal(c.pick(undefined, 'ann')?.id, first);
    });

    it('maps outlierDetection onto the outlier detector', () => {
      const c = clusterOf({
        outlierDetection: {
          consecutive5xxErrors: 3,
          intervalMs: 10_000,
          baseEjectionMs: 15_000,
          maxEjectionPercent: 80,
          minHealthPercent: 40,
        },
      });
      assert.equal(c.outliers.options.consecutiveFailures, 3);
      assert.equal(c.outliers.options.baseEjectionMs, 15_000);
      assert.equal(c.outliers.options.maxEjectedPercent, 60);
    });

    it('gives a cluster with its own connect timeout a pool of its own (the gateway makes one per timeout)', () => {
      const asked: number[] = [];
      const pool = { dispatch: () => true };
      const s = snapshot(
        [route('r')],
        [cluster('web', { connectionPool: { connectTimeoutMs: 250 } })],
      );
      const dispatcherFor = (settings: { connectTimeoutMs: number }) => {
        asked.push(settings.connectTimeoutMs);
        return pool;
      };
      const built = buildMeshRoutes(s, OPTIONS, { dispatcherFor });
      const c = (built.table.match(input()) as ProxyRoute).pickCluster();
      assert.equal(c.dispatcher, pool);
      assert.equal(c.connectTimeoutMs, 250);
      assert.deepEqual(asked, [250]);
      // The gateway's own timeout needs no pool of its own.
      const same = buildMeshRoutes(
        snapshot(
          [route('r')],
          [cluster('web', { connectionPool: { connectTimeoutMs: OPTIONS.connectTimeoutMs } })],
        ),
        OPTIONS,
        { dispatcherFor },
      );
      assert.equal((same.table.match(input()) as ProxyRoute).pickCluster().dispatcher, undefined);
      assert.deepEqual(asked, [250]);
    });

    it('resolves an external DNS host without endpoints to its name and port', () => {
      const external = cluster('api.example.com', {
        port: 80,
        endpoints: [],
        external: { resolution: 'DNS' },
      });
      const s = snapshot(
        [route('r', { backends: [{ cluster: 'api.example.com', weight: 100 }] })],
        [external],
      );
      const c = (routeFor(s) as ProxyRoute).pickCluster();
      assert.equal(c.origin(c.pick(undefined, undefined) as never), 'http://api.example.com:80');
    });
  });

  describe('traffic policies (enforced, not refused)', () => {
    it('builds fault, mirror, connection-pool limits, rate limit and cache into the route and cluster', () => {
      const s = snapshot(
        [
          route('r', {
            fault: { delay: { ms: 5, percent: 10 }, abort: { status: 418, percent: 5 } },
            mirror: { cluster: 'shadow', percent: 20 },
          }),
        ],
        [
          cluster('web', {
            connectionPool: { maxConnections: 2, maxPendingRequests: 3, maxRetries: 1 },
            rateLimit: { maxTokens: 5, tokensPerFill: 1, fillIntervalMs: 1000 },
            cache: { maxEntries: 10, maxBodyBytes: 1024 },
          }),
          cluster('shadow'),
        ],
      );
      const r = routeFor(s) as ProxyRoute;
      assert.equal(r.filters[0]?.name, 'fault');
      assert.equal(r.mirror?.cluster.name, 'shadow');
      assert.equal(r.mirror?.percent, 20);
      const c = r.pickCluster();
      assert.deepEqual(
        c.filters.map((f) => f.name),
        ['response-cache', 'local-rate-limit'],
      );
      assert.equal(c.limits?.capacity, 5);
      assert.equal(c.limits?.maxRetries, 1);
    });

    it('keeps a cluster with the same policies (its bucket and cache) and makes one anew when they change', () => {
      const web = (tokens: number) =>
        cluster('web', {
          rateLimit: { maxTokens: tokens, tokensPerFill: 1, fillIntervalMs: 1000 },
        });
      const first = buildMeshRoutes(snapshot([route('r')], [web(5)]), OPTIONS);
      const kept = [...first.clusters.values()][0] as Cluster;
      const same = buildMeshRoutes(snapshot([route('r')], [web(5)]), OPTIONS, {
        previous: first.clusters,
      });
      assert.equal([...same.clusters.values()][0], kept);
      const changed = buildMeshRoutes(snapshot([route('r')], [web(6)]), OPTIONS, {
        previous: first.clusters,
      });
      assert.notEqual([...changed.clusters.values()][0], kept);
    });

    it('asks for a pool of its own for maxConnections, an idle timeout and a per-connection cap', () => {
      const asked: unknown[] = [];
      const pool = { dispatch: () => true };
      const built = buildMeshRoutes(
        snapshot(
          [route('r')],
          [
            cluster('web', {
              connectionPool: {
                maxConnections: 4,
                idleTimeoutMs: 9000,
                maxRequestsPerConnection: 2,
              },
            }),
          ],
        ),
        OPTIONS,
        {
          dispatcherFor: (settings) => {
            asked.push(settings);
            return pool;
          },
        },
      );
      assert.equal((built.table.match(input()) as ProxyRoute).pickCluster().dispatcher, pool);
      assert.deepEqual(asked, [
        {
          connectTimeoutMs: OPTIONS.connectTimeoutMs,
          maxConnections: 4,
          idleTimeoutMs: 9000,
          maxRequestsPerConnection: 2,
        },
      ]);
    });
  });

  describe('applying a new snapshot', () => {
    it('keeps a cluster whose settings did not change (same object) and gives it the new endpoints', () => {
      const first = buildMeshRoutes(snapshot([route('r')]), OPTIONS);
      const kept = [...first.clusters.values()][0] as Cluster;
      const next = buildMeshRoutes(
        snapshot([route('r')], [cluster('web', { endpoints: [endpoint('x'), endpoint('y', 2)] })]),
        OPTIONS,
        { previous: first.clusters },
      );
      assert.equal([...next.clusters.values()][0], kept);
      assert.equal(kept.total, 2);
      const changed = buildMeshRoutes(
        snapshot([route('r')], [cluster('web', { loadBalancer: { type: 'random' } })]),
        OPTIONS,
        { previous: next.clusters },
      );
      assert.notEqual([...changed.clusters.values()][0], kept);
    });

    it('changes nothing, not even the endpoints of kept clusters, when it refuses a snapshot', () => {
      const first = buildMeshRoutes(snapshot([route('r')]), OPTIONS);
      const kept = [...first.clusters.values()][0] as Cluster;
      assert.throws(() =>
        buildMeshRoutes(
          snapshot(
            [route('r', { fault: { abort: { status: 99, percent: 100 } } })],
            [cluster('web', { endpoints: [] })],
          ),
          OPTIONS,
          { previous: first.clusters },
        ),
      );
      assert.equal(kept.total, 1);
    });
  });

  describe('refusals (the snapshot is NACKed, each problem naming its route or cluster and field)', () => {
    const cases: [string, MeshSnapshot, RegExp][] = [
      [
        'a fault abort status that is no HTTP status',
        snapshot([route('default/shop/0', { fault: { abort: { status: 99, percent: 10 } } })]),
        /^routes\[0\] \(default\/shop\/0\)\.fault\.abort\.status: must be an HTTP status 200\.\.599/,
      ],
      [
        'a fault delay percent above 100',
        snapshot([route('r', { fault: { delay: { ms: 5, percent: 101 } } })]),
        /^routes\[0\] \(r\)\.fault\.delay\.percent: must be 0\.\.100/,
      ],
      [
        'a mirror percent above 100',
        snapshot([route('r', { mirror: { cluster: 'web', percent: 150 } })]),
        /^routes\[0\] \(r\)\.mirror\.percent: must be 0\.\.100/,
      ],
      [
        'a mirror naming no cluster',
        snapshot([route('r', { mirror: { cluster: 'nope', percent: 5 } })]),
        /^routes\[0\] \(r\)\.mirror\.cluster: "nope" is not a cluster of the snapshot/,
      ],
      [
        'a regex RE2 refuses',
        snapshot([route('r', { match: [{ headers: [{ name: 'x-a', regex: '(?=x)' }] }] })]),
        /^routes\[0\] \(r\)\.match\[0\]\.headers\.x-a\.regex: not an RE2 regular expression/,
      ],
      [
        'a cap on requests per connection without a pool of its own',
        snapshot(
          [route('r')],
          [cluster('web', { connectionPool: { maxRequestsPerConnection: 1 } })],
        ),
        /^clusters\[0\] \(web\)\.connectionPool\.maxRequestsPerConnection: a cap on requests per upstream connection is not implemented/,
      ],
      [
        'a connection limit of 0',
        snapshot([route('r')], [cluster('web', { connectionPool: { maxConnections: 0 } })]),
        /^clusters\[0\] \(web\)\.connectionPool\.maxConnections: must be a whole number >= 1/,
      ],
      [
        'an idle timeout without a pool of its own',
        snapshot([route('r')], [cluster('web', { connectionPool: { idleTimeoutMs: 5000 } })]),
        /^clusters\[0\] \(web\)\.connectionPool\.idleTimeoutMs: a per-destination idle timeout is not implemented/,
      ],
      [
        'a per-destination connect timeout',
        snapshot([route('r')], [cluster('web', { connectionPool: { connectTimeoutMs: 5 } })]),
        /^clusters\[0\] \(web\)\.connectionPool\.connectTimeoutMs: a per-destination connect timeout/,
      ],
      [
        'a rate limit',
        snapshot(
          [route('r')],
          [cluster('web', { rateLimit: { maxTokens: 0, tokensPerFill: 1, fillIntervalMs: 1000 } })],
        ),
        /^clusters\[0\] \(web\)\.rateLimit\.maxTokens: must be a whole number 1\.\./,
      ],
      [
        'a response cache of no entries',
        snapshot([route('r')], [cluster('web', { cache: { maxEntries: 0, maxBodyBytes: 1 } })]),
        /^clusters\[0\] \(web\)\.cache\.maxEntries: must be a whole number 1\.\./,
      ],
      [
        'a backend naming no cluster',
        snapshot([route('r', { backends: [{ cluster: 'nope', weight: 100 }] })]),
        /^routes\[0\] \(r\)\.backends\[0\]\.cluster: "nope" is not a cluster of the snapshot/,
      ],
      [
        'no backend with weight',
        snapshot([route('r', { backends: [{ cluster: 'web', weight: 0 }] })]),
        /^routes\[0\] \(r\)\.backends: at least one backend needs a weight above 0/,
      ],
      [
        'an unknown retry condition',
        snapshot([route('r', { retries: { attempts: 1, retryOn: ['sometimes'] } })]),
        /^routes\[0\] \(r\)\.retries\.retryOn: "sometimes" is not a retry condition/,
      ],
      [
        'a header value with CR LF',
        snapshot([route('r', { requestHeaders: { set: { 'x-a': 'a\r\nb: c' } } })]),
        /^routes\[0\] \(r\)\.headers\.request\.set\.x-a: must not contain CR, LF or NUL/,
      ],
      [
        'pass-through external resolution',
        snapshot([route('r')], [cluster('web', { external: { resolution: 'NONE' } })]),
        /^clusters\[0\] \(web\)\.external\.resolution: NONE/,
      ],
    ];
    for (const [what, s, expected] of cases) {
      it(`refuses ${what}`, () => {
        const problems = refusal(s);
        assert.ok(
          problems.some((p) => expected.test(p)),
          `no problem matches ${String(expected)}: ${problems.join(' | ')}`,
        );
      });
    }

    it('lists every problem of the snapshot at once', () => {
      const problems = refusal(
        snapshot(
          [
            route('a', { fault: { abort: { status: 99, percent: 1 } } }),
            route('b', { mirror: { cluster: 'web', percent: 101 } }),
          ],
          [cluster('web', { cache: { maxEntries: 0, maxBodyBytes: 1 } })],
        ),
      );
      assert.equal(problems.length, 3, problems.join('\n'));
    });
  });
});
