/**
 * @module Turns a mesh snapshot (MeshSnapshot, pushed by the control plane) into a proxy's
 * route table and clusters, through the same builder as the gateway's file config
 * (route-rules.ts); the gateway and the sidecar both run it. Whole or nothing: every route and
 * cluster is checked and built first, and anything this proxy cannot run (a regex RE2 refuses, a
 * feature its engine does not implement yet) throws one CONFIG_INVALID error naming each route
 * or cluster and field, so the snapshot is NACKed and the running table stays.
 */
import { resolveBalancerSpec, type BalancerSpec } from '../client/balancers/index.js';
import {
  createRetryPolicy,
  DEFAULT_RETRY_POLICY_OPTIONS,
  resolveCircuitBreakerOptions,
  type CircuitBreakerOptions,
  type RetryPolicy,
  type RetryPolicyOptions,
} from '../client/resilience/index.js';
import type { Clock } from '../core/clock.js';
import { errors, isMeshError } from '../core/errors.js';
import type { InstanceDto } from '../protocol/api-types.js';
import type {
  MeshSnapshot,
  SnapshotCluster,
  SnapshotEndpoint,
  SnapshotHeaderEdits,
  SnapshotMatch,
  SnapshotRoute,
  SnapshotStringMatch,
} from '../protocol/mesh/snapshot.js';
import { compileUserRegex } from '../protocol/user-regex.js';
import { Cluster, newPolicyCounts, type ClusterOptions, type HashOn } from './cluster.js';
import type { Filter } from './filter.js';
import { ClusterLimits, connectionPoolProblems } from './filters/connection-pool/cluster-limits.js';
import { createFaultFilter, faultProblems } from './filters/fault/fault-filter.js';
import {
  createLocalRateLimitFilter,
  localRateLimitProblems,
} from './filters/local-rate-limit/local-rate-limit-filter.js';
import { RouteMirror } from './filters/mirror/route-mirror.js';
import {
  createResponseCacheFilter,
  responseCacheProblems,
} from './filters/response-cache/response-cache-filter.js';
import type { ProxyRoute, UpstreamDispatcher } from './contract.js';
import type { HeaderEdits } from './filters/header-edit/header-edit-filter.js';
import { HTTP_TOKEN } from './headers.js';
import { RouteTable, type MatchSpec, type ValueMatchSpec } from './route-table.js';
import { compileRouteRules, type BackendSpec, type RouteSpec } from './route-rules.js';

/** The proxy's own defaults a snapshot's routes and clusters fall back on. */
export interface SnapshotRouteOptions {
  /** Who runs the table ("gateway", "sidecar"): named in the reasons a snapshot is refused. */
  readonly proxy: string;
  /** The balancer of a cluster that names none. */
  readonly balancer: BalancerSpec;
  /** The retry policy options under a route's own retries (the SDK's RetryPolicyOptions). */
  readonly retry: Readonly<Partial<RetryPolicyOptions>>;
  /** The outlier detector options under a cluster's outlierDetection. */
  readonly outlierDetection: Readonly<Record<string, unknown>>;
  readonly panicThresholdPercent: number;
  /** A route's deadline when it sets no timeout. */
  readonly requestTimeoutMs: number;
  /** The connect timeout of the proxy's upstream client. */
  readonly connectTimeoutMs: number;
}

/** A snapshot's route table and clusters. */
export interface SnapshotRoutes {
  readonly table: RouteTable<ProxyRoute>;
  /** By settings key: pass them as `previous` to the next build to keep the unchanged ones. */
  readonly clusters: ReadonlyMap<string, Cluster>;
}

export interface SnapshotRoutesDeps {
  readonly clock?: Clock | undefined;
  readonly random?: (() => number) | undefined;
  /**
   * The clusters of the table in force: one whose settings did not change is kept (with its
   * ejections and balancer state) and gets the snapshot's endpoints.
   */
  readonly previous?: ReadonlyMap<string, Cluster> | undefined;
  /**
   * The upstream client of a cluster whose DestinationRule sets its own pool settings
   * (connectionPool: a connect timeout other than the proxy's, maxConnections per endpoint, an
   * idle timeout); absent: such a snapshot is refused when it sets a connect timeout other than
   * the proxy's connectTimeoutMs or an idle timeout (maxConnections still caps the cluster's
   * requests in flight).
   */
  readonly dispatcherFor?: ((pool: UpstreamPoolSettings) => UpstreamDispatcher) | undefined;
  /**
   * Mesh mTLS (a sidecar or gateway with an identity: mesh-transport.ts): how a cluster's
   * instances are reached, per instance (mTLS to those with a sidecar, per the cluster's `tls`);
   * absent: plaintext, and a cluster whose `tls.mode` is ISTIO_MUTUAL is refused.
   */
  readonly endpointTransport?:
    | ((
        cluster: SnapshotCluster,
        pool: UpstreamPoolSettings | undefined,
      ) => ClusterOptions['endpointTransport'])
    | undefined;
}

/** The settings of a cluster's own upstream pool. */
export interface UpstreamPoolSettings {
  readonly connectTimeoutMs: number;
  /** Connections per endpoint (absent: the proxy's). */
  readonly maxConnections?: number | undefined;
  /** Idle keep-alive connections close after this long (absent: the proxy's). */
  readonly idleTimeoutMs?: number | undefined;
  /** A connection closes after this many requests (absent: no cap). */
  readonly maxRequestsPerConnection?: number | undefined;
}

/** Why a part of a snapshot cannot run here: the field path and the reason. */
type Problems = string[];

const notYet = (proxy: string): string =>
  `not implemented by the ${proxy} yet (refused rather than ignored)`;

/** Istio's retryOn conditions as the engine's retry policy takes them. */
function retryConditions(
  retryOn: readonly string[],
  field: string,
  problems: Problems,
): Pick<RetryPolicyOptions, 'retryOnStatuses' | 'retryOnConnectErrors'> {
  const statuses = new Set<number>();
  let connect = false;
  // Istio's default: connect-failure, refused-stream, unavailable, cancelled, retriable-status-codes (503).
  const conditions = retryOn.length === 0 ? ['connect-failure', '503'] : retryOn;
  // retriable-status-codes retries the codes listed beside it; none listed: Istio's 503.
  if (conditions.includes('retriable-status-codes') && !conditions.some((c) => /^\d+$/.test(c)))
    statuses.add(503);
  for (const raw of conditions) {
    const c = raw.trim();
    if (c === '5xx') {
      for (let s = 500; s <= 599; s++) statuses.add(s);
      connect = true;
    } else if (c === 'gateway-error') {
      for (const s of [502, 503, 504]) statuses.add(s);
      connect = true;
    } else if (c === 'connect-failure' || c === 'reset' || c === 'refused-stream') {
      connect = true;
    } else if (c === 'retriable-4xx') {
      statuses.add(409);
    } else if (/^[45][0-9][0-9]$/.test(c)) {
      statuses.add(Number(c));
    } else if (
      // gRPC status conditions (Istio's default lists two): they never fire on HTTP/1.1, the
      // only protocol the proxy speaks upstream, so they are nothing to refuse.
      [
        'cancelled',
        'deadline-exceeded',
        'internal',
        'resource-exhausted',
        'unavailable',
        'retriable-status-codes', // its codes are handled above
      ].includes(c)
    ) {
      continue;
    } else {
      problems.push(
        `${field}: "${c}" is not a retry condition the proxy knows (5xx, gateway-error, connect-failure, reset, refused-stream, retriable-4xx, or a 4xx/5xx status code)`,
      );
    }
  }
  return { retryOnStatuses: [...statuses].sort((a, b) => a - b), retryOnConnectErrors: connect };
}

/** A StringMatch as a value condition; a regex RE2 refuses is a problem named by `field`. */
function valueMatch(
  m: SnapshotStringMatch,
  field: string,
  problems: Problems,
): ValueMatchSpec | undefined {
  if ('regex' in m) {
    try {
      compileUserRegex(m.regex, field);
    } catch (err) {
      if (!isMeshError(err)) throw err;
      problems.push(`${field}.regex: ${String(err.details?.reason ?? err.message)}`);
      return undefined;
    }
  }
  return m;
}

function checkHeaderName(name: string, field: string, problems: Problems): void {
  if (!HTTP_TOKEN.test(name)) problems.push(`${field}: "${name}" is not an HTTP header name`);
}

function checkHeaderValue(value: string, field: string, problems: Problems): void {
  // A value is written into the upstream request head as it is.
  if (/[\r\n\0]/.test(value)) problems.push(`${field}: must not contain CR, LF or NUL`);
}

function headerEdits(
  e: SnapshotHeaderEdits | undefined,
  field: string,
  problems: Problems,
): HeaderEdits | undefined {
  if (e === undefined) return undefined;
  const lower = (
    record: Readonly<Record<string, string>> | undefined,
    f: string,
  ): Record<string, string> | undefined => {
    if (record === undefined) return undefined;
    const out: Record<string, string> = {};
    for (const [name, value] of Object.entries(record)) {
      checkHeaderName(name, `${f}.${name}`, problems);
      checkHeaderValue(value, `${f}.${name}`, problems);
      out[name.toLowerCase()] = value;
    }
    return out;
  };
  (e.remove ?? []).forEach((name, i) => checkHeaderName(name, `${field}.remove[${i}]`, problems));
  return {
    set: lower(e.set, `${field}.set`),
    add: lower(e.add, `${field}.add`),
    remove: e.remove?.map((n) => n.toLowerCase()),
  };
}

function matchSpec(m: SnapshotMatch, field: string, problems: Problems): MatchSpec {
  const named = (
    list: SnapshotMatch['headers'],
    f: string,
  ): ({ name: string } & ValueMatchSpec)[] | undefined =>
    list?.map((h) => {
      const v = valueMatch(h, `${f}.${h.name}`, problems);
      return { ...(v ?? { present: true }), name: h.name };
    });
  if (m.path !== undefined && !('regex' in m.path) && !Object.values(m.path)[0]?.startsWith('/'))
    problems.push(`${field}.uri: must start with "/"`);
  return {
    path: m.path === undefined ? undefined : valueMatch(m.path, `${field}.uri`, problems),
    ignoreUriCase: m.ignoreUriCase,
    method: m.method === undefined ? undefined : valueMatch(m.method, `${field}.method`, problems),
    authority:
      m.authority === undefined
        ? undefined
        : valueMatch(m.authority, `${field}.authority`, problems),
    headers: named(
      m.headers?.map((h) => ({ ...h, name: h.name.toLowerCase() })),
      `${field}.headers`,
    ),
    query: named(m.query, `${field}.queryParams`),
  };
}

/** The SDK balancer spec and hash key source of a cluster's loadBalancer. */
function balancerOf(
  c: SnapshotCluster,
  fallback: BalancerSpec,
  field: string,
  problems: Problems,
): { balancer: BalancerSpec; hashOn: HashOn | undefined } {
  const lb = c.loadBalancer;
  if (lb === undefined) return { balancer: fallback, hashOn: undefined };
  if (!('hashOn' in lb)) return { balancer: lb.type, hashOn: undefined };
  const balancer: BalancerSpec =
    lb.type === 'ring-hash'
      ? {
          type: 'ring-hash',
          ...(lb.minimumRingSize === undefined ? {} : { minRingSize: lb.minimumRingSize }),
        }
      : { type: 'maglev' };
  try {
    resolveBalancerSpec(balancer);
  } catch (err) {
    if (!isMeshError(err)) throw err;
    problems.push(`${field}.loadBalancer: ${err.message}`);
  }
  const on = lb.hashOn;
  let hashOn: HashOn;
  if ('header' in on) {
    checkHeaderName(on.header, `${field}.loadBalancer.consistentHash.httpHeaderName`, problems);
    hashOn = { header: on.header };
  } else if ('cookie' in on) hashOn = { cookie: on.cookie };
  else if ('sourceIp' in on) hashOn = { sourceIp: true };
  else hashOn = { query: on.query };
  return { balancer, hashOn };
}

/** Istio's outlierDetection as the cluster's outlier detector options. */
function outliersOf(
  c: SnapshotCluster,
  base: Readonly<Record<string, unknown>>,
  field: string,
  problems: Problems,
): Partial<CircuitBreakerOptions> {
  const od = c.outlierDetection;
  if (od === undefined) return base;
  const consecutive = od.consecutive5xxErrors ?? od.consecutiveGatewayErrors;
  const baseEjectionMs = od.baseEjectionMs;
  const maxEjectionMs = Number(base.maxEjectionMs ?? 300_000);
  const options: Partial<CircuitBreakerOptions> = {
    ...base,
    // 0 turns 5xx ejection off in Istio: the detector's largest count is as good as never.
    ...(consecutive === undefined
      ? {}
      : { consecutiveFailures: consecutive === 0 ? 10_000 : consecutive }),
    baseEjectionMs,
    maxEjectionMs: Math.max(maxEjectionMs, baseEjectionMs),
    // Envoy stops ejecting below minHealthPercent healthy: the same as never ejecting more than
    // the rest. Ejection is immediate on the n-th failure, so `interval` has nothing to pace.
    maxEjectedPercent: Math.min(od.maxEjectionPercent, 100 - od.minHealthPercent),
  };
  try {
    resolveCircuitBreakerOptions(options);
  } catch (err) {
    if (!isMeshError(err)) throw err;
    const listed = (err.details?.problems as string[] | undefined) ?? [err.message];
    for (const p of listed) problems.push(`${field}.outlierDetection: ${p}`);
  }
  return options;
}

/** The features of a cluster the engine does not run yet: each a problem. */
function refusedClusterFeatures(
  c: SnapshotCluster,
  options: SnapshotRouteOptions,
  ownTimeouts: boolean,
  field: string,
  problems: Problems,
): void {
  const NOT_YET = notYet(options.proxy);
  const pool = c.connectionPool;
  if (pool !== undefined) {
    const timeout = pool.connectTimeoutMs;
    if (timeout !== undefined && !ownTimeouts && timeout !== options.connectTimeoutMs)
      problems.push(
        `${field}.connectionPool.connectTimeoutMs: a per-destination connect timeout is ${NOT_YET}; every upstream gets connectTimeoutMs (${options.connectTimeoutMs} ms)`,
      );
    if (pool.idleTimeoutMs !== undefined && !ownTimeouts)
      problems.push(
        `${field}.connectionPool.idleTimeoutMs: a per-destination idle timeout is ${NOT_YET}`,
      );
    const idle = pool.idleTimeoutMs;
    if (idle !== undefined && !(Number.isInteger(idle) && idle >= 1 && idle <= 86_400_000))
      problems.push(`${field}.connectionPool.idleTimeoutMs: must be 1..86400000 ms`);
    const perConnection = pool.maxRequestsPerConnection;
    if (perConnection !== undefined && !ownTimeouts)
      problems.push(
        `${field}.connectionPool.maxRequestsPerConnection: a cap on requests per upstream connection is ${NOT_YET}`,
      );
    if (
      perConnection !== undefined &&
      !(Number.isInteger(perConnection) && perConnection >= 1 && perConnection <= 1e9)
    )
      problems.push(`${field}.connectionPool.maxRequestsPerConnection: must be 1..1000000000`);
    problems.push(...connectionPoolProblems(pool, `${field}.connectionPool`));
  }
  if (c.rateLimit !== undefined)
    problems.push(...localRateLimitProblems(c.rateLimit, `${field}.rateLimit`));
  if (c.cache !== undefined) problems.push(...responseCacheProblems(c.cache, `${field}.cache`));
  const ext = c.external;
  if (ext !== undefined) {
    if (ext.resolution === 'NONE')
      problems.push(
        `${field}.external.resolution: NONE (pass-through to the original destination) cannot be proxied by a ${options.proxy}: use STATIC or DNS`,
      );
    if (ext.protocol !== undefined && !['HTTP', 'HTTP2', 'GRPC'].includes(ext.protocol))
      problems.push(
        `${field}.external.protocol: ${ext.protocol} upstreams are ${NOT_YET} (the ${options.proxy} speaks plain HTTP/1.1 upstream)`,
      );
  }
}

/** A snapshot endpoint in the catalog's instance shape, which clusters are fed. */
function instanceOf(service: string, e: SnapshotEndpoint): InstanceDto {
  // Only the fields a cluster reads are the snapshot's; the rest are neutral.
  return {
    id: e.id,
    service,
    address: e.address,
    port: e.port,
    ports: {},
    tags: e.tags,
    meta: e.meta,
    weights: e.weights,
    priority: 0,
    capacity: 0,
    protocols: [],
    source: 'orchestrator',
    managedBy: '',
    maintenance: { enabled: false, reason: '' },
    createdAt: 0,
    updatedAt: 0,
    status: e.status,
    statusReason: '',
    checks: [],
    createIndex: 0,
    modifyIndex: 0,
  };
}

/** A cluster's endpoints; a DNS ServiceEntry without addresses resolves its host. */
function endpointsOf(c: SnapshotCluster, field: string, problems: Problems): InstanceDto[] {
  if (c.endpoints.length === 0 && c.external !== undefined && c.external.resolution !== 'NONE') {
    if (c.port === undefined) {
      problems.push(`${field}.port: an external host without endpoints needs a port`);
      return [];
    }
    const resolved: SnapshotEndpoint = {
      id: `${c.service}:${c.port}`,
      address: c.service,
      port: c.port,
      status: 'passing',
      tags: [],
      meta: {},
      weights: { passing: 1, warning: 1 },
    };
    return [instanceOf(c.service, resolved)];
  }
  return c.endpoints.map((e) => instanceOf(c.service, e));
}

function buildClusters(
  snapshot: MeshSnapshot,
  options: SnapshotRouteOptions,
  deps: SnapshotRoutesDeps,
  problems: Problems,
): BuiltClusters {
  const byName = new Map<string, Cluster>();
  const byKey = new Map<string, Cluster>();
  const endpointsOfCluster = new Map<Cluster, InstanceDto[]>();
  const fallback = options.balancer;
  snapshot.clusters.forEach((c, i) => {
    const field = `clusters[${i}] (${c.name})`;
    if (byName.has(c.name)) {
      problems.push(`${field}.name: "${c.name}" is used twice`);
      return;
    }
    const before = problems.length;
    refusedClusterFeatures(c, options, deps.dispatcherFor !== undefined, field, problems);
    if (c.tls !== undefined && c.tls.mode !== 'DISABLE' && c.tls.mode !== 'ISTIO_MUTUAL')
      problems.push(`${field}.tls.mode: must be DISABLE or ISTIO_MUTUAL`);
    else if (c.tls?.mode === 'ISTIO_MUTUAL' && deps.endpointTransport === undefined)
      problems.push(
        `${field}.tls.mode: ISTIO_MUTUAL needs this ${options.proxy}'s mTLS identity (a certificate from the mesh CA), and it has none`,
      );
    const { balancer, hashOn } = balancerOf(c, fallback, field, problems);
    const outlierDetection = outliersOf(c, options.outlierDetection, field, problems);
    const endpoints = endpointsOf(c, field, problems);
    const timeout = c.connectionPool?.connectTimeoutMs;
    if (timeout !== undefined && !(Number.isInteger(timeout) && timeout >= 1 && timeout <= 60_000))
      problems.push(`${field}.connectionPool.connectTimeoutMs: must be 1..60000 ms`);
    if (problems.length > before) return;
    const pool = c.connectionPool;
    const own =
      (timeout !== undefined && timeout !== options.connectTimeoutMs) ||
      pool?.maxConnections !== undefined ||
      pool?.idleTimeoutMs !== undefined ||
      pool?.maxRequestsPerConnection !== undefined;
    const poolSettings =
      own && deps.dispatcherFor !== undefined
        ? {
            connectTimeoutMs: timeout ?? options.connectTimeoutMs,
            maxConnections: pool?.maxConnections,
            idleTimeoutMs: pool?.idleTimeoutMs,
            maxRequestsPerConnection: pool?.maxRequestsPerConnection,
          }
        : undefined;
    // Settings that make another cluster: a kept one keeps its pool, buckets and cache.
    const key = JSON.stringify([
      c.name,
      c.service,
      balancer,
      hashOn ?? null,
      outlierDetection,
      options.panicThresholdPercent,
      poolSettings ?? null,
      pool === undefined
        ? null
        : [pool.maxConnections, pool.maxPendingRequests, pool.maxRequests, pool.maxRetries],
      c.rateLimit ?? null,
      c.cache ?? null,
      c.tls?.mode ?? null,
    ]);
    const cluster =
      deps.previous?.get(key) ??
      newCluster(c, deps, {
        balancer,
        hashOn,
        outlierDetection,
        panicThresholdPercent: options.panicThresholdPercent,
        poolSettings,
      });
    byName.set(c.name, cluster);
    byKey.set(key, cluster);
    endpointsOfCluster.set(cluster, endpoints);
  });
  return { byName, byKey, endpoints: endpointsOfCluster };
}

/** A cluster with its policies: limits, cache and rate limit filters, its own pool. */
function newCluster(
  c: SnapshotCluster,
  deps: SnapshotRoutesDeps,
  settings: {
    balancer: BalancerSpec;
    hashOn: HashOn | undefined;
    outlierDetection: Partial<CircuitBreakerOptions>;
    panicThresholdPercent: number;
    poolSettings: UpstreamPoolSettings | undefined;
  },
): Cluster {
  const counts = newPolicyCounts();
  const filters: Filter[] = [];
  // The cache first: a hit costs the upstream nothing, so it takes no token.
  if (c.cache !== undefined) filters.push(createResponseCacheFilter(c.cache, deps.clock, counts));
  if (c.rateLimit !== undefined)
    filters.push(createLocalRateLimitFilter(c.rateLimit, deps.clock, counts));
  const limits = c.connectionPool === undefined ? undefined : new ClusterLimits(c.connectionPool);
  const pool = settings.poolSettings;
  return new Cluster({
    name: c.name,
    service: c.service,
    balancer: settings.balancer,
    hashOn: settings.hashOn,
    outlierDetection: settings.outlierDetection,
    panicThresholdPercent: settings.panicThresholdPercent,
    clock: deps.clock,
    random: deps.random,
    filters,
    limits: limits?.bounded === true ? limits : undefined,
    counts,
    ...(pool !== undefined && deps.dispatcherFor !== undefined
      ? { dispatcher: deps.dispatcherFor(pool), connectTimeoutMs: pool.connectTimeoutMs }
      : {}),
    endpointTransport: deps.endpointTransport?.(c, pool),
  });
}

interface BuiltClusters {
  readonly byName: ReadonlyMap<string, Cluster>;
  /** By settings key: what the next snapshot's build keeps. */
  readonly byKey: ReadonlyMap<string, Cluster>;
  /** Given to each cluster only once the whole snapshot is known to be good. */
  readonly endpoints: ReadonlyMap<Cluster, InstanceDto[]>;
}

function routeSpec(
  r: SnapshotRoute,
  i: number,
  snapshot: MeshSnapshot,
  clusters: ReadonlyMap<string, Cluster>,
  options: SnapshotRouteOptions,
  deps: SnapshotRoutesDeps,
  problems: Problems,
): RouteSpec | undefined {
  const field = `routes[${i}] (${r.name})`;
  const filters: Filter[] = [];
  if (r.fault !== undefined) {
    const listed = faultProblems(r.fault, `${field}.fault`);
    problems.push(...listed);
    const fault = listed.length === 0 ? createFaultFilter(r.fault, deps.random) : undefined;
    if (fault !== undefined) filters.push(fault);
  }
  let mirror: RouteMirror | undefined;
  if (r.mirror !== undefined) {
    const target = clusters.get(r.mirror.cluster);
    const percent = r.mirror.percent;
    if (!snapshot.clusters.some((c) => c.name === r.mirror?.cluster))
      problems.push(
        `${field}.mirror.cluster: "${r.mirror.cluster}" is not a cluster of the snapshot`,
      );
    if (!(Number.isFinite(percent) && percent >= 0 && percent <= 100))
      problems.push(`${field}.mirror.percent: must be 0..100`);
    else if (target !== undefined)
      mirror = new RouteMirror(target, percent, {
        random: deps.random,
        timeoutMs:
          r.timeoutMs !== undefined && r.timeoutMs > 0 ? r.timeoutMs : options.requestTimeoutMs,
        counts: target.counts,
      });
  }
  if (r.hosts.length === 0) problems.push(`${field}.hosts: a route needs at least one host`);
  const matches = r.match.map((m, j) => matchSpec(m, `${field}.match[${j}]`, problems));
  const uri = r.rewrite?.uri;
  if (uri !== undefined && !/^\/[^\s\0]*$/.test(uri))
    problems.push(`${field}.rewrite.uri: must start with / and hold no whitespace or NUL`);
  if (r.rewrite?.authority !== undefined)
    checkHeaderValue(r.rewrite.authority, `${field}.rewrite.authority`, problems);

  const backends: BackendSpec[] = [];
  const snapshotClusters = new Map(snapshot.clusters.map((c) => [c.name, c]));
  r.backends.forEach((b, j) => {
    const f = `${field}.backends[${j}]`;
    const cluster = clusters.get(b.cluster);
    if (!snapshotClusters.has(b.cluster))
      problems.push(`${f}.cluster: "${b.cluster}" is not a cluster of the snapshot`);
    if (!Number.isInteger(b.weight) || b.weight < 0)
      problems.push(`${f}.weight: must be a whole number >= 0`);
    const requestHeaders = headerEdits(b.requestHeaders, `${f}.headers.request`, problems);
    const responseHeaders = headerEdits(b.responseHeaders, `${f}.headers.response`, problems);
    if (backends.some((other) => other.cluster === cluster && cluster !== undefined))
      problems.push(`${f}.cluster: "${b.cluster}" is named twice in one route`);
    if (cluster !== undefined)
      backends.push({ cluster, weight: b.weight, requestHeaders, responseHeaders });
  });
  if (!r.backends.some((b) => b.weight > 0))
    problems.push(`${field}.backends: at least one backend needs a weight above 0`);

  const retry = retryOf(r, field, snapshot, options, deps, problems);
  const requestHeaders = headerEdits(r.requestHeaders, `${field}.headers.request`, problems);
  const responseHeaders = headerEdits(r.responseHeaders, `${field}.headers.response`, problems);
  if (retry === undefined) return undefined;
  return {
    name: r.name,
    hosts: r.hosts,
    matches,
    backends,
    rewrite: r.rewrite,
    requestHeaders,
    responseHeaders,
    retry,
    filters,
    mirror,
  };
}

/** A route's retry policy: its retries, timeout and its destinations' retry budget. */
function retryOf(
  r: SnapshotRoute,
  field: string,
  snapshot: MeshSnapshot,
  options: SnapshotRouteOptions,
  deps: SnapshotRoutesDeps,
  problems: Problems,
): RetryPolicy | undefined {
  const proxyRetry = options.retry;
  let retries: Partial<RetryPolicyOptions> = {};
  if (r.retries !== undefined) {
    if (r.retries.attempts > 9)
      problems.push(`${field}.retries.attempts: at most 9 retries (10 attempts in all)`);
    retries = {
      maxAttempts: Math.min(r.retries.attempts, 9) + 1,
      perTryTimeoutMs: r.retries.perTryTimeoutMs ?? 0,
      ...retryConditions(r.retries.retryOn, `${field}.retries.retryOn`, problems),
    };
  }
  // One budget per route: its destinations' RetryBudget, when they name one (the same one).
  const budgets = new Set(
    r.backends
      .map((b) => snapshot.clusters.find((c) => c.name === b.cluster)?.retryBudget)
      .filter((x) => x !== undefined)
      .map((x) => JSON.stringify(x)),
  );
  let budget: RetryPolicyOptions['budget'] | undefined;
  if (budgets.size > 1) {
    problems.push(
      `${field}.backends: its destinations have different retry budgets; a route has one budget`,
    );
  } else if (budgets.size === 1) {
    const b = JSON.parse([...budgets][0] as string) as NonNullable<SnapshotCluster['retryBudget']>;
    budget = {
      ratio: b.budgetPercent / 100,
      minRetriesPerSecond: b.minRetriesPerSecond,
      windowMs: b.ttlMs,
    };
  }
  try {
    return createRetryPolicy(
      {
        ...DEFAULT_RETRY_POLICY_OPTIONS,
        ...proxyRetry,
        ...retries,
        ...(budget === undefined ? {} : { budget }),
        overallTimeoutMs:
          r.timeoutMs !== undefined && r.timeoutMs > 0 ? r.timeoutMs : options.requestTimeoutMs,
      },
      {
        ...(deps.clock === undefined ? {} : { clock: deps.clock }),
        ...(deps.random === undefined ? {} : { random: deps.random }),
      },
    );
  } catch (err) {
    if (!isMeshError(err)) throw err;
    const listed = (err.details?.problems as string[] | undefined) ?? [err.message];
    for (const p of listed) problems.push(`${field}.${p}`);
    return undefined;
  }
}

/**
 * A proxy's route table and clusters for a snapshot: only the snapshot's routes route. Throws
 * CONFIG_INVALID listing every problem (each naming its route or cluster and field) when any
 * part cannot run here; then nothing was changed, not even the endpoints of the clusters in
 * force.
 */
export function buildSnapshotRoutes(
  snapshot: MeshSnapshot,
  options: SnapshotRouteOptions,
  deps: SnapshotRoutesDeps = {},
): SnapshotRoutes {
  const problems: Problems = [];
  const { byName, byKey, endpoints } = buildClusters(snapshot, options, deps, problems);
  const specs: RouteSpec[] = [];
  snapshot.routes.forEach((r, i) => {
    const spec = routeSpec(r, i, snapshot, byName, options, deps, problems);
    if (spec !== undefined) specs.push(spec);
  });
  if (problems.length > 0) throw errors.configInvalid(problems);
  const rules = compileRouteRules(specs);
  for (const [cluster, list] of endpoints) cluster.update(list);
  return { table: new RouteTable<ProxyRoute>({ rules }), clusters: byKey };
}
