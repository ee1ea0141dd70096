/**
 * @module A cluster: the instances of one service (or of a subset of it) as the proxy sees
 * them: endpoints from the discovery cache, a balancer, passive outlier detection, and Envoy's
 * panic mode (when too few instances look healthy, spread over all of them rather than
 * overload the few).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import { createBalancer, toEndpoints } from '../client/balancers/index.js';
import type { Balancer, BalancerSpec, Endpoint } from '../client/balancers/index.js';
import { select } from '../client/discovery.js';
import { OutlierDetector, type CircuitBreakerOptions } from '../client/resilience/index.js';
import type { Clock } from '../core/clock.js';
import type { InstanceStatus } from '../core/types.js';
import type { InstanceDto } from '../protocol/api-types.js';
import type { Filter } from './filter.js';
import type { ClusterLimits } from './filters/connection-pool/cluster-limits.js';
import type { UpstreamDispatcher } from './upstream-dispatcher.js';

/** What a cluster's policies did, for the proxy's metrics (`meshwork_*_policy_events_total`). */
export interface PolicyCounts {
  /** Requests refused by the connection-pool limits (503). */
  overflow: number;
  /** Retries not made: maxRetries were in flight. */
  retryOverflow: number;
  /** Retries the policy wanted and its retry budget refused. */
  retryBudgetExhausted: number;
  /** Requests refused by the local rate limit (429). */
  rateLimited: number;
  /** Mirror copies sent to this cluster that completed, failed, or were not sent (a body). */
  mirrorSent: number;
  mirrorFailed: number;
  mirrorSkipped: number;
  cacheHit: number;
  cacheMiss: number;
  cacheBypass: number;
}

export function newPolicyCounts(): PolicyCounts {
  return {
    overflow: 0,
    retryOverflow: 0,
    retryBudgetExhausted: 0,
    rateLimited: 0,
    mirrorSent: 0,
    mirrorFailed: 0,
    mirrorSkipped: 0,
    cacheHit: 0,
    cacheMiss: 0,
    cacheBypass: 0,
  };
}

export interface ClusterSubset {
  readonly tags?: readonly string[] | undefined;
  readonly meta?: Readonly<Record<string, string>> | undefined;
}

/**
 * What a hash balancer (ring-hash, maglev) hashes a request on (Istio's consistentHash): a
 * header, a cookie, the client address or a query parameter. Absent: the
 * `x-meshwork-hash-key` header.
 */
export type HashOn =
  | { readonly header: string }
  | { readonly cookie: string }
  | { readonly sourceIp: true }
  | { readonly query: string };

/** The facts of a request a hash key may come from. */
export interface HashKeySource {
  /** Origin-form path and query. */
  readonly path: string;
  readonly remoteAddress: string;
}

/** The header a request names its hash key in when its cluster hashes on nothing else. */
export const HASH_KEY_HEADER = 'x-meshwork-hash-key';

export interface ClusterOptions {
  /** The name in metrics and errors (default: clusterName(service, subset)). */
  readonly name?: string | undefined;
  readonly service: string;
  readonly subset?: ClusterSubset | undefined;
  readonly balancer: BalancerSpec;
  readonly outlierDetection: Partial<CircuitBreakerOptions>;
  /**
   * Panic when fewer than this percent of the cluster's instances are healthy (passing or
   * warning in the registry, and not ejected): then every instance but those in maintenance
   * takes traffic. 0 turns panic mode off (Envoy's healthy_panic_threshold, default 50).
   */
  readonly panicThresholdPercent: number;
  readonly clock?: Clock | undefined;
  readonly random?: (() => number) | undefined;
  readonly hashOn?: HashOn | undefined;
  /**
   * The upstream client of this cluster's attempts, when it is not the engine's (a cluster with
   * its own connect timeout has a pool of its own); `connectTimeoutMs` is that timeout.
   */
  readonly dispatcher?: UpstreamDispatcher | undefined;
  readonly connectTimeoutMs?: number | undefined;
  /**
   * How one instance is reached when not by the cluster's client: mTLS to its sidecar (issue
   * 20). Asked once per instance on every update (not per request); undefined: the usual way.
   */
  readonly endpointTransport?:
    ((instance: InstanceDto) => EndpointTransport | undefined) | undefined;
  /** Filters every request to this cluster runs after its route's (rate limit, cache). */
  readonly filters?: readonly Filter[] | undefined;
  /** Connection-pool limits (overflow, concurrent retries). */
  readonly limits?: ClusterLimits | undefined;
  /** Where its policies count (the filters' counts object, so they share it). */
  readonly counts?: PolicyCounts | undefined;
}

/**
 * The way to one instance other than plain HTTP/1 (a sidecar's mTLS origination): the client
 * its requests go through, and the connection an Upgrade's tunnel goes over.
 */
export interface EndpointTransport {
  readonly dispatcher: UpstreamDispatcher;
  /** A new connection to `host:port` for a tunnel ('secureConnect' when verified). */
  connect(host: string, port: number): Duplex;
}

/** The value of cookie `name` in a Cookie header, or undefined. */
function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The hash key function of a HashOn (undefined key: the balancer picks as without one). */
function hashKeyOf(
  on: HashOn | undefined,
): (headers: IncomingHttpHeaders, req: HashKeySource) => string | undefined {
  const first = (v: string | string[] | undefined): string | undefined =>
    Array.isArray(v) ? v[0] : v;
  if (on === undefined) return (headers) => first(headers[HASH_KEY_HEADER]);
  if ('header' in on) {
    const name = on.header.toLowerCase();
    return (headers) => first(headers[name]);
  }
  if ('cookie' in on) {
    const name = on.cookie;
    return (headers) => cookieValue(headers.cookie, name);
  }
  if ('sourceIp' in on) return (_headers, req) => req.remoteAddress;
  const param = on.query;
  return (_headers, req) => {
    const q = req.path.indexOf('?');
    return q === -1
      ? undefined
      : (new URLSearchParams(req.path.slice(q + 1)).get(param) ?? undefined);
  };
}

/** What the panic balancer may pick: everything but maintenance (an operator's "keep out"). */
const PANIC_STATUSES: readonly InstanceStatus[] = Object.freeze([
  'passing',
  'warning',
  'critical',
  'starting',
]);

/** The cluster's name: the service, then its subset in a stable form (`orders{version=v2}`). */
export function clusterName(service: string, subset: ClusterSubset | undefined): string {
  if (subset === undefined) return service;
  const parts = [
    ...(subset.tags ?? []).map((t) => `tag=${t}`).sort(),
    ...Object.entries(subset.meta ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .sort(),
  ];
  return parts.length === 0 ? service : `${service}{${parts.join(',')}}`;
}

/**
 * One cluster. `update` is called on every discovery change of the service (rare); `pick` is
 * the hot path and does not allocate. Callers MUST call `balancer.started/finished` around each
 * attempt and `outliers.report` after each one (see ProxyEngine).
 */
export class Cluster {
  readonly name: string;
  readonly service: string;
  readonly balancer: Balancer;
  readonly outliers: OutlierDetector;
  /** The first snapshot of the service is in. */
  loaded = false;
  /** Instances in the subset (maintenance excluded). */
  total = 0;
  /** Instances that may take traffic outside panic: healthy in the registry and not ejected. */
  available = 0;
  /** True while the cluster spreads over every instance (see panicThresholdPercent). */
  panic = false;
  /** Ejections so far (for the metric). */
  ejections = 0;
  readonly #panicBalancer: Balancer;
  readonly #subset: ClusterSubset | undefined;
  readonly #threshold: number;
  readonly #origins = new Map<string, string>();
  readonly #exclude = new Set<string>();
  #healthyIds: readonly string[] = [];
  #listeners: ((cluster: Cluster) => void)[] = [];
  /**
   * The hash key of a request (for ring-hash and maglev; others ignore it). MUST NOT throw;
   * called once per attempt.
   */
  readonly hashKey: (headers: IncomingHttpHeaders, req: HashKeySource) => string | undefined;
  /** Its own upstream client (and that client's connect timeout); absent: the engine's. */
  readonly dispatcher: UpstreamDispatcher | undefined;
  readonly connectTimeoutMs: number | undefined;
  readonly #endpointTransport: ClusterOptions['endpointTransport'];
  /** By endpoint id: the instances endpointTransport gave a transport (absent: none did). */
  #transports: Map<string, EndpointTransport> | undefined;
  readonly filters: readonly Filter[];
  readonly limits: ClusterLimits | undefined;
  readonly counts: PolicyCounts;
  /** A route's filters followed by this cluster's, made once per route filter list. */
  readonly #chains = new WeakMap<readonly Filter[], readonly Filter[]>();

  constructor(options: ClusterOptions) {
    this.filters = options.filters ?? [];
    this.limits = options.limits;
    this.counts = options.counts ?? newPolicyCounts();
    this.service = options.service;
    this.#subset = options.subset;
    this.name = options.name ?? clusterName(options.service, options.subset);
    this.hashKey = hashKeyOf(options.hashOn);
    this.dispatcher = options.dispatcher;
    this.connectTimeoutMs = options.connectTimeoutMs;
    this.#endpointTransport = options.endpointTransport;
    const random = options.random === undefined ? {} : { random: options.random };
    this.balancer = createBalancer(options.balancer, random);
    this.#panicBalancer = createBalancer(options.balancer, random);
    this.outliers = new OutlierDetector(
      options.outlierDetection,
      options.clock === undefined ? {} : { clock: options.clock },
    );
    this.#threshold = options.panicThresholdPercent;
    this.outliers.onChange((_id, state) => {
      if (state === 'open') this.ejections++;
      this.#recompute();
    });
  }

  /** The filters of a request: `routeFilters`, then this cluster's (one list per route list). */
  chain(routeFilters: readonly Filter[]): readonly Filter[] {
    if (this.filters.length === 0) return routeFilters;
    let chain = this.#chains.get(routeFilters);
    if (chain === undefined) {
      chain = [...routeFilters, ...this.filters];
      this.#chains.set(routeFilters, chain);
    }
    return chain;
  }

  /** Calls `listener` after every change of the endpoints or of the panic state. */
  onChange(listener: (cluster: Cluster) => void): void {
    this.#listeners.push(listener);
  }

  /** The service's instances changed (all of them, as the discovery cache has them). */
  update(instances: readonly InstanceDto[]): void {
    const subset = this.#subset;
    const mine = select(instances, {
      status: PANIC_STATUSES,
      ...(subset?.tags === undefined ? {} : { tag: subset.tags }),
      ...(subset?.meta === undefined ? {} : { meta: subset.meta }),
    });
    const healthy = toEndpoints(mine);
    // In panic every instance is pickable, weighted as if it were passing.
    const all = toEndpoints(
      mine.map((i) =>
        i.status === 'passing' || i.status === 'warning'
          ? i
          : { ...i, status: 'passing' as const, weights: { passing: 1, warning: 1 } },
      ),
    );
    this.balancer.update(healthy);
    this.#panicBalancer.update(all);
    this.outliers.setEndpoints(all.map((e) => e.id));
    this.#origins.clear();
    for (const e of all) {
      this.#origins.set(
        e.id,
        `http://${e.address.includes(':') ? `[${e.address}]` : e.address}:${e.port}`,
      );
    }
    const transportOf = this.#endpointTransport;
    if (transportOf !== undefined) {
      const transports = new Map<string, EndpointTransport>();
      for (const i of mine) {
        const t = transportOf(i);
        if (t !== undefined) transports.set(i.id, t);
      }
      this.#transports = transports.size === 0 ? undefined : transports;
    }
    this.#healthyIds = healthy.map((e) => e.id);
    this.total = all.length;
    this.loaded = true;
    this.#recompute();
  }

  /** `http://address:port` of an endpoint. */
  origin(endpoint: Endpoint): string {
    return (
      this.#origins.get(endpoint.id) ??
      `http://${endpoint.address.includes(':') ? `[${endpoint.address}]` : endpoint.address}:${endpoint.port}`
    );
  }

  /** `address:port` of the endpoint with this id, or undefined when it is not in the cluster. */
  addressOf(id: string): string | undefined {
    return this.#origins.get(id)?.slice('http://'.length);
  }

  /** The transport of an endpoint other than plain HTTP/1 (mTLS), or undefined. */
  transportOf(endpoint: Endpoint): EndpointTransport | undefined {
    return this.#transports?.get(endpoint.id);
  }

  /** The upstream client of an attempt to `endpoint`: its transport's, else the cluster's own. */
  dispatcherOf(endpoint: Endpoint): UpstreamDispatcher | undefined {
    const transports = this.#transports;
    if (transports === undefined) return this.dispatcher;
    return transports.get(endpoint.id)?.dispatcher ?? this.dispatcher;
  }

  /**
   * An endpoint for the next attempt, or undefined when the cluster is empty. Outside panic it
   * skips ejected instances and those in `tried`, then falls back to tried ones, then (every
   * healthy one ejected or half-open-busy) to any healthy one. In panic it spreads over every
   * instance, skipping only `tried` while it can.
   */
  pick(tried: ReadonlySet<string> | undefined, hashKey: string | undefined): Endpoint | undefined {
    const outliers = this.outliers;
    const retrying = tried !== undefined && tried.size > 0;
    if (this.panic) {
      const e = retrying ? this.#panicBalancer.pick({ hashKey, exclude: tried }) : undefined;
      return e ?? this.#panicBalancer.pick({ hashKey });
    }
    if (retrying) {
      const set = this.#exclude;
      set.clear();
      for (const id of outliers.unavailable) set.add(id);
      for (const id of tried) set.add(id);
      const e = this.balancer.pick({ hashKey, exclude: set });
      if (e !== undefined && outliers.allow(e.id)) return e;
    }
    const e = this.balancer.pick({ hashKey, exclude: outliers.unavailable });
    if (e !== undefined && outliers.allow(e.id)) return e;
    return this.balancer.pick({ hashKey });
  }

  /** The balancer that served `endpoint` (for started/finished). */
  balancerFor(panic: boolean): Balancer {
    return panic ? this.#panicBalancer : this.balancer;
  }

  #recompute(): void {
    let available = 0;
    const unavailable = this.outliers.unavailable;
    for (const id of this.#healthyIds) if (!unavailable.has(id)) available++;
    this.available = available;
    this.panic =
      this.#threshold > 0 && this.total > 0 && available * 100 < this.total * this.#threshold;
    for (const l of this.#listeners) l(this);
  }
}
