/**
 * @module The proxy engine's Prometheus metrics, named meshwork_<component>_* (gateway or
 * sidecar). The hot path only adds to plain numbers in a stats object kept per route and
 * cluster; prom-client reads them at scrape time (`collect()`), so a request builds no label
 * objects and hashes no label sets (prom-client's own inc/observe did both, ~3% of the
 * gateway's CPU under load).
 */
import { Counter, Gauge, type Metric, type Registry } from 'prom-client';
import type { Cluster } from './cluster.js';

/** Upper bounds (seconds) of the upstream latency histogram. */
const LATENCY_BUCKETS: readonly number[] = Object.freeze([
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]);

/** The status classes counted, indexed by the first digit of the status (0: no class). */
const CLASSES: readonly string[] = Object.freeze(['0xx', '1xx', '2xx', '3xx', '4xx', '5xx']);

/** The latency histogram of one cluster: plain counts, one per bucket (not cumulative). */
class LatencyCounts {
  readonly buckets = new Float64Array(LATENCY_BUCKETS.length + 1);
  sum = 0;
  count = 0;

  observe(seconds: number): void {
    let i = 0;
    while (i < LATENCY_BUCKETS.length && seconds > (LATENCY_BUCKETS[i] as number)) i++;
    (this.buckets[i] as number)++;
    this.sum += seconds;
    this.count++;
  }
}

/** What the routes to one service share: its latency histogram and its retries. */
interface ServiceCounts {
  readonly latency: LatencyCounts;
  retries: number;
}

/** The counters of one route and cluster pair: plain numbers, read at scrape time. */
export class RouteClusterStats {
  readonly route: string;
  readonly service: string;
  /** Requests answered, indexed by the first digit of the status (1..5; 0 for none). */
  readonly byClass = new Float64Array(CLASSES.length);
  readonly latency: LatencyCounts;
  readonly #shared: ServiceCounts;

  constructor(route: string, service: string, shared: ServiceCounts) {
    this.route = route;
    this.service = service;
    this.latency = shared.latency;
    this.#shared = shared;
  }

  /** Counts a request answered with `status`. */
  answered(status: number): void {
    const c = Math.floor(status / 100);
    if (c >= 0 && c < CLASSES.length) (this.byClass[c] as number)++;
  }

  retried(): void {
    this.#shared.retries++;
  }
}

/** A PolicyCounts field as the `event` label. */
const POLICY_EVENT: Readonly<Record<string, string>> = {
  overflow: 'overflow',
  retryOverflow: 'retry_overflow',
  retryBudgetExhausted: 'retry_budget_exhausted',
  rateLimited: 'rate_limited',
  mirrorSent: 'mirror_sent',
  mirrorFailed: 'mirror_failed',
  mirrorSkipped: 'mirror_skipped',
  cacheHit: 'cache_hit',
  cacheMiss: 'cache_miss',
  cacheBypass: 'cache_bypass',
};

export class ProxyMetrics {
  readonly #connections: Gauge;
  readonly #stats = new Map<string, RouteClusterStats>();
  /** Per cluster name: its latency counts and retries (shared by the routes that use it). */
  readonly #byService = new Map<string, ServiceCounts>();
  #active = 0;

  constructor(registry: Registry, component: string, clusters: () => Iterable<Cluster>) {
    const p = `meshwork_${component}`;
    const stats = this.#stats;
    const byService = this.#byService;
    new Counter({
      name: `${p}_requests_total`,
      help: 'Requests answered, by route, service and status class (local replies included).',
      labelNames: ['route', 'service', 'class'],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of stats.values()) {
          for (let c = 0; c < CLASSES.length; c++) {
            const n = s.byClass[c] as number;
            if (n > 0) this.labels(s.route, s.service, CLASSES[c] as string).inc(n);
          }
        }
      },
    });
    registry.registerMetric(latencyHistogram(`${p}_upstream_latency_seconds`, byService));
    new Counter({
      name: `${p}_retries_total`,
      help: 'Attempts sent again to another instance (connect errors, 502/503/504, timeouts).',
      labelNames: ['service'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [service, c] of byService)
          if (c.retries > 0) this.labels(service).inc(c.retries);
      },
    });
    new Counter({
      name: `${p}_ejections_total`,
      help: 'Instances ejected by passive outlier detection.',
      labelNames: ['service'],
      registers: [registry],
      collect() {
        this.reset();
        for (const c of clusters()) this.labels(c.name).inc(c.ejections);
      },
    });
    new Counter({
      name: `${p}_retry_budget_exhausted_total`,
      help: 'Retries the retry policy wanted and the retry budget refused (the request failed with its last answer).',
      labelNames: ['service'],
      registers: [registry],
      collect() {
        this.reset();
        for (const c of clusters()) this.labels(c.name).inc(c.counts.retryBudgetExhausted);
      },
    });
    new Gauge({
      name: `${p}_panic`,
      help: '1 while a cluster is in panic mode (too few healthy instances: spread over all).',
      labelNames: ['service'],
      registers: [registry],
      collect() {
        this.reset();
        for (const c of clusters()) this.labels(c.name).set(c.panic ? 1 : 0);
      },
    });
    new Gauge({
      name: `${p}_upstream_instances`,
      help: 'Instances of a cluster that may take traffic (healthy, not ejected), and in all.',
      labelNames: ['service', 'state'],
      registers: [registry],
      collect() {
        this.reset();
        for (const c of clusters()) {
          this.labels(c.name, 'available').set(c.available);
          this.labels(c.name, 'total').set(c.total);
        }
      },
    });
    new Counter({
      name: `${p}_policy_events_total`,
      help: "What a cluster's policies did: overflow (503, connection-pool limits), retry_overflow (retries not made: maxRetries), retry_budget_exhausted (retries the retry budget refused), rate_limited (429), mirror_sent/mirror_failed/mirror_skipped (copies to this cluster; skipped: a request with a body), cache_hit/cache_miss/cache_bypass.",
      labelNames: ['service', 'event'],
      registers: [registry],
      collect() {
        this.reset();
        for (const c of clusters()) {
          const counts = c.counts;
          for (const k in counts) {
            const n = counts[k as keyof typeof counts];
            if (n > 0) this.labels(c.name, POLICY_EVENT[k] ?? k).inc(n);
          }
        }
      },
    });
    this.#connections = new Gauge({
      name: `${p}_active_connections`,
      help: 'Open downstream connections.',
      registers: [registry],
    });
    const self = (): number => this.#active;
    new Gauge({
      name: `${p}_active_requests`,
      help: 'Requests in flight.',
      registers: [registry],
      collect() {
        this.set(self());
      },
    });
  }

  /** The stats of a route and cluster ('-' for requests answered before a cluster was chosen). */
  stats(route: string, service: string): RouteClusterStats {
    const key = `${route}\u0000${service}`;
    let s = this.#stats.get(key);
    if (s === undefined) {
      let shared = this.#byService.get(service);
      if (shared === undefined) {
        shared = { latency: new LatencyCounts(), retries: 0 };
        // Bounded like the route table: host routes are capped, so this is too in practice.
        if (this.#byService.size < 10_000) this.#byService.set(service, shared);
      }
      s = new RouteClusterStats(route, service, shared);
      if (this.#stats.size < 10_000) this.#stats.set(key, s);
    }
    return s;
  }

  connectionOpened(): void {
    this.#connections.inc();
  }
  connectionClosed(): void {
    this.#connections.dec();
  }
  requestStarted(): void {
    this.#active++;
  }
  requestFinished(): void {
    this.#active--;
  }
  get activeRequests(): number {
    return this.#active;
  }
}

/**
 * The upstream latency histogram as a prom-client metric read from the clusters' plain counts
 * (prom-client's Histogram hashes its label set on every observe). The same exposition as a
 * prom-client Histogram with `labelNames: ['service']`.
 */
function latencyHistogram(name: string, counts: ReadonlyMap<string, ServiceCounts>): Metric {
  const metric = {
    name,
    help: 'Time from sending to an upstream to its response head, per attempt.',
    type: 'histogram',
    aggregator: 'sum',
    get() {
      const values: {
        metricName: string;
        labels: Record<string, string | number>;
        value: number;
      }[] = [];
      for (const [service, { latency: h }] of counts) {
        if (h.count === 0) continue;
        let acc = 0;
        for (let i = 0; i < LATENCY_BUCKETS.length; i++) {
          acc += h.buckets[i] as number;
          values.push({
            metricName: `${name}_bucket`,
            labels: { le: LATENCY_BUCKETS[i] as number, service },
            value: acc,
          });
        }
        values.push(
          { metricName: `${name}_bucket`, labels: { le: '+Inf', service }, value: h.count },
          { metricName: `${name}_sum`, labels: { service }, value: h.sum },
          { metricName: `${name}_count`, labels: { service }, value: h.count },
        );
      }
      return Promise.resolve({
        name,
        help: metric.help,
        type: metric.type,
        values,
        aggregator: 'sum',
      });
    },
    reset() {
      for (const { latency: h } of counts.values()) {
        h.buckets.fill(0);
        h.sum = 0;
        h.count = 0;
      }
    },
  };
  // prom-client's registry only calls get() and reset() of a metric (and reads its name).
  return metric as unknown as Metric;
}

/**
 * `meshwork_proxy_snapshot_version`: the mesh snapshot in force. Its version is a content hash
 * (not a number), so the value is the snapshot's catalog index and the version is a label: one
 * series, replaced at each apply.
 */
export function snapshotVersionGauge(registry: Registry): Gauge {
  return new Gauge({
    name: 'meshwork_proxy_snapshot_version',
    help: 'The mesh snapshot in force: its catalog index as the value, its version (a content hash) as a label.',
    labelNames: ['version'],
    registers: [registry],
  });
}
