/**
 * @module The proxy engine's Prometheus metrics, named meshwork_<component>_* (gateway or
 * sidecar). Labelled children are looked up once per route and cluster and kept, so the hot
 * path increments a counter without building label objects.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Cluster } from './cluster.js';

/** The counters of one route and cluster pair, by status class (1xx..5xx). */
export interface RouteClusterStats {
  /** Indexed by the first digit of the status (1..5); 0 counts local errors without a class. */
  readonly byClass: readonly { inc(): void }[];
  readonly latency: { observe(seconds: number): void };
  readonly retries: { inc(): void };
}

export class ProxyMetrics {
  readonly #requests: Counter<'route' | 'service' | 'class'>;
  readonly #latency: Histogram<'service'>;
  readonly #retries: Counter<'service'>;
  readonly #connections: Gauge;
  readonly #stats = new Map<string, RouteClusterStats>();
  #active = 0;

  constructor(registry: Registry, component: string, clusters: () => Iterable<Cluster>) {
    const p = `meshwork_${component}`;
    this.#requests = new Counter({
      name: `${p}_requests_total`,
      help: 'Requests answered, by route, service and status class (local replies included).',
      labelNames: ['route', 'service', 'class'],
      registers: [registry],
    });
    this.#latency = new Histogram({
      name: `${p}_upstream_latency_seconds`,
      help: 'Time from sending to an upstream to its response head, per attempt.',
      labelNames: ['service'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
    this.#retries = new Counter({
      name: `${p}_retries_total`,
      help: 'Attempts sent again to another instance (connect errors, 502/503/504, timeouts).',
      labelNames: ['service'],
      registers: [registry],
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
      const byClass = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx'].map((c) =>
        this.#requests.labels(route, service, c),
      );
      s = {
        byClass,
        latency: this.#latency.labels(service),
        retries: this.#retries.labels(service),
      };
      // Bounded like the route table: host routes are capped, so this is too in practice.
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
