/**
 * @module MeshworkClient: the SDK in one object. Register this service, discover others from a
 * watched cache, and call them by name with `client.fetch('http://payments/charge')` or any
 * undici/fetch code given `dispatcher: client.dispatcher`: discovery, load balancing, timeouts,
 * budgeted retries and outlier ejection on every call, no registry round trip per request.
 */
import {
  Agent,
  Headers,
  fetch as undiciFetch,
  type BodyInit,
  type Dispatcher,
  type HeadersInit,
} from 'undici';
import { systemClock, type Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { InstanceDto } from '../protocol/api-types.js';
import type { RegistrationInput } from '../protocol/registration.js';
import {
  createBalancer,
  resolveBalancerSpec,
  toEndpoints,
  type BalancerSpec,
} from './balancers/index.js';
import { ServiceDiscovery, type DiscoverFilter } from './discovery.js';
import { createMeshInterceptor, replayable, type ServiceCluster } from './mesh-dispatcher.js';
import { RegistryClient } from './registry-client.js';
import type { RegistryTlsOptions } from './tls-files.js';
import {
  Bulkhead,
  OutlierDetector,
  TokenBucketRateLimiter,
  createRetryPolicy,
  resolveBulkheadOptions,
  resolveCircuitBreakerOptions,
  resolveRateLimiterOptions,
  type CircuitBreakerOptions,
  type RetryPolicy,
  type RetryPolicyOptions,
} from './resilience/index.js';
import { MeshResponseHandler } from './mesh-response.js';
import { SelfRegistration, type SelfRegistrationOptions } from './self-registration.js';
import { injectTraceContext } from './trace-propagation.js';

export interface MeshworkClientOptions {
  /** Registry (agent) addresses, tried in order with failover. Default http://127.0.0.1:8500. */
  readonly registry?: string | readonly string[];
  /** TLS for `https://` registry addresses: the CA to trust, a client certificate if required. */
  readonly registryTls?: RegistryTlsOptions;
  /** Balancer for every service, or per service name. Default round-robin. */
  readonly balancer?: BalancerSpec | Readonly<Record<string, BalancerSpec>>;
  /** Retry policy shared by all calls (one budget). */
  readonly retry?: Partial<RetryPolicyOptions>;
  /** Passive outlier ejection per service. */
  readonly outlierDetection?: Partial<CircuitBreakerOptions>;
  /** Per service: at most `maxConcurrent` calls at once, `maxQueue` more waiting. */
  readonly bulkhead?: { readonly maxConcurrent: number; readonly maxQueue?: number };
  /** Per service: calls per second, with bursts of `burst`. */
  readonly rateLimit?: { readonly ratePerSecond: number; readonly burst?: number };
  /**
   * `client.fetch` answers this instead of throwing when a call fails for good (no healthy
   * instance, connection errors after the retries, rate limit, bulkhead, timeout). A final 5xx
   * answer is returned as it is, not replaced.
   */
  readonly fallback?: (service: string, error: Error) => Response | Promise<Response>;
  /** Options of the undici Agent that holds the keep-alive pools to instances. */
  readonly agent?: Agent.Options;
  readonly clock?: Clock;
  readonly random?: () => number;
  readonly logger?: Logger;
}

/** `close()` waits this long for in-flight calls before cutting them. */
const CLOSE_GRACE_MS = 2_000;

/** `fetch`'s init, as `client.fetch` takes it. */
export interface MeshFetchInit {
  readonly method?: string;
  readonly headers?: HeadersInit;
  readonly body?: string | Uint8Array | ArrayBuffer | URLSearchParams | BodyInit | null;
  readonly signal?: AbortSignal | null;
}

export const DEFAULT_MESHWORK_CLIENT_OPTIONS = Object.freeze({
  registry: 'http://127.0.0.1:8500',
  balancer: 'round-robin' as const,
});

interface Cluster extends ServiceCluster {
  loaded: boolean;
}

/** The client SDK. */
export class MeshworkClient {
  readonly registry: RegistryClient;
  readonly discovery: ServiceDiscovery;
  /** A dispatcher for undici `request`/`fetch`: `http://<service>/...` goes through the mesh. */
  readonly dispatcher: Dispatcher;
  readonly retry: RetryPolicy;
  readonly #options: MeshworkClientOptions;
  readonly #clusters = new Map<string, Cluster>();
  readonly #agent: Agent;
  readonly #registrations = new Set<SelfRegistration>();

  constructor(options: MeshworkClientOptions = {}) {
    this.#options = options;
    const registry = options.registry ?? DEFAULT_MESHWORK_CLIENT_OPTIONS.registry;
    this.registry = new RegistryClient({
      addresses: typeof registry === 'string' ? [registry] : registry,
      ...(options.registryTls === undefined ? {} : { tls: options.registryTls }),
    });
    this.discovery = new ServiceDiscovery({
      registry: this.registry,
      ...(options.clock === undefined ? {} : { clock: options.clock }),
      ...(options.random === undefined ? {} : { random: options.random }),
    });
    this.retry = createRetryPolicy(options.retry, {
      clock: options.clock ?? systemClock,
      ...(options.random === undefined ? {} : { random: options.random }),
    });
    // Validate every policy now, at start-up, not at the first call of each service: the
    // schemas each policy's constructor checks, with no throwaway instance built.
    resolveCircuitBreakerOptions(options.outlierDetection);
    if (options.bulkhead !== undefined)
      resolveBulkheadOptions(options.bulkhead.maxConcurrent, options.bulkhead.maxQueue ?? 0);
    if (options.rateLimit !== undefined)
      resolveRateLimiterOptions(options.rateLimit.ratePerSecond, options.rateLimit.burst ?? 1);
    const b = options.balancer ?? DEFAULT_MESHWORK_CLIENT_OPTIONS.balancer;
    for (const spec of typeof b === 'string' || 'type' in b ? [b] : Object.values(b))
      resolveBalancerSpec(spec);
    this.#agent = new Agent({ keepAliveTimeout: 30_000, connections: 128, ...options.agent });
    this.dispatcher = this.#agent.compose(
      createMeshInterceptor({ cluster: (s) => this.#cluster(s), retry: this.retry }),
    );
    this.discovery.on('change', (service, instances) => this.#update(service, instances));
  }

  /**
   * Registers this service and keeps it registered (background retries, heartbeats, re-register
   * on 404); `close()` deregisters it.
   */
  register(
    instance: RegistrationInput,
    options: Omit<SelfRegistrationOptions, 'registry' | 'instance'> = {},
  ): SelfRegistration {
    const reg = new SelfRegistration({
      registry: this.registry,
      instance,
      ...(this.#options.logger === undefined ? {} : { logger: this.#options.logger }),
      ...options,
    }).start();
    this.#registrations.add(reg);
    return reg;
  }

  /** Healthy instances of a service, from the watched cache (see ServiceDiscovery.discover). */
  discover(service: string, filter?: DiscoverFilter): Promise<InstanceDto[]> {
    return this.discovery.discover(service, filter);
  }

  /**
   * `fetch` with discovery: `http://payments/charge` goes to a healthy instance of `payments`;
   * other URLs are fetched as they are. A body given as a string, bytes or URLSearchParams is
   * kept as it is, so a failed attempt can be retried on another instance (undici's own `fetch`
   * turns every body into a stream, which cannot be sent twice). Redirects are not followed.
   * The active OpenTelemetry context goes along as `traceparent` when the app registered an
   * OpenTelemetry SDK, unless `headers` gives one (docs/client.md, Tracing).
   *
   * @example
   * const res = await client.fetch('http://payments/charge', { method: 'PUT', body });
   */
  async fetch(input: string | URL, init: MeshFetchInit = {}): Promise<Response> {
    const url = typeof input === 'string' ? new URL(input) : input;
    const fallback = this.#options.fallback;
    if (fallback === undefined) return this.#fetch(url, init);
    try {
      return await this.#fetch(url, init);
    } catch (err) {
      return fallback(url.hostname, err as Error);
    }
  }

  async #fetch(url: URL, init: MeshFetchInit): Promise<Response> {
    const headers: Record<string, string> = {};
    const given = init.headers;
    if (given !== undefined && given !== null) {
      if (Array.isArray(given) || typeof (given as Headers).forEach === 'function') {
        new Headers(given).forEach((v, k) => (headers[k] = v));
      } else {
        // A plain object (the common case): no Headers object per call.
        for (const [k, v] of Object.entries(given as Record<string, string>))
          headers[k.toLowerCase()] = v;
      }
    }
    injectTraceContext(headers);
    let body = init.body ?? null;
    if (body instanceof URLSearchParams) {
      headers['content-type'] ??= 'application/x-www-form-urlencoded;charset=UTF-8';
      body = body.toString();
    }
    if (!replayable(body)) {
      // Blobs, forms and streams: undici's fetch knows how to send them (not retried).
      return undiciFetch(url, {
        ...(init as RequestInit),
        headers,
        dispatcher: this.dispatcher,
      } as never);
    }
    const method = (init.method ?? 'GET').toUpperCase();
    const signal = init.signal ?? undefined;
    signal?.throwIfAborted();
    return new Promise<Response>((resolve, reject) => {
      // Read straight off the dispatch (no undici request() body stream in between).
      const handler = new MeshResponseHandler(
        method,
        url.href,
        resolve as (r: unknown) => void,
        reject,
      );
      const onAbort = (): void => handler.abort(signal?.reason as Error);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.dispatcher.dispatch(
        {
          origin: url.origin,
          path: `${url.pathname}${url.search}`,
          method: method as Dispatcher.HttpMethod,
          headers,
          body: body instanceof ArrayBuffer ? new Uint8Array(body) : body,
        },
        handler,
      );
      if (signal !== undefined) {
        const done = (): void => signal.removeEventListener('abort', onAbort);
        handler.settled.then(done, done);
      }
    });
  }

  /** Deregisters what this client registered, stops watching and closes the pools. */
  async close(): Promise<void> {
    await Promise.all([...this.#registrations].map((r) => r.deregister().catch(() => undefined)));
    this.discovery.close();
    // In-flight calls get a moment to finish; a response body nobody reads would hold close()
    // forever, so what is left after that is cut.
    const clock = this.#options.clock ?? systemClock;
    let timer: ReturnType<Clock['setTimeout']> | undefined;
    const grace = new Promise<void>((r) => (timer = clock.setTimeout(r, CLOSE_GRACE_MS)));
    await Promise.race([this.#agent.close(), grace]);
    if (timer !== undefined) clock.clearTimeout(timer);
    await this.#agent.destroy();
    await this.registry.close();
  }

  #cluster(service: string): Cluster {
    const cluster = this.#clusters.get(service);
    if (cluster !== undefined) return cluster;
    const spec = this.#balancerSpec(service);
    const outliers = new OutlierDetector(this.#options.outlierDetection, {
      clock: this.#options.clock ?? systemClock,
    });
    const created: Cluster = {
      service,
      balancer: createBalancer(
        spec,
        this.#options.random === undefined ? {} : { random: this.#options.random },
      ),
      outliers,
      loaded: false,
      bulkhead:
        this.#options.bulkhead === undefined
          ? undefined
          : new Bulkhead(
              this.#options.bulkhead.maxConcurrent,
              this.#options.bulkhead.maxQueue ?? 0,
            ),
      limiter:
        this.#options.rateLimit === undefined
          ? undefined
          : new TokenBucketRateLimiter(
              this.#options.rateLimit.ratePerSecond,
              this.#options.rateLimit.burst ?? this.#options.rateLimit.ratePerSecond,
              this.#options.clock ?? systemClock,
            ),
      ready: this.discovery.ready(service),
    };
    this.#clusters.set(service, created);
    created.ready.catch(() => undefined); // a request that awaits it sees the rejection
    const cached = this.discovery.cached(service);
    if (cached !== undefined) this.#update(service, cached);
    return created;
  }

  #balancerSpec(service: string): BalancerSpec {
    const b = this.#options.balancer ?? DEFAULT_MESHWORK_CLIENT_OPTIONS.balancer;
    if (typeof b === 'string' || 'type' in b) return b as BalancerSpec;
    const byService = b as Readonly<Record<string, BalancerSpec>>;
    return byService[service] ?? byService['*'] ?? DEFAULT_MESHWORK_CLIENT_OPTIONS.balancer;
  }

  #update(service: string, instances: readonly InstanceDto[]): void {
    const cluster = this.#clusters.get(service);
    if (cluster === undefined) return;
    const endpoints = toEndpoints(instances);
    cluster.balancer.update(endpoints);
    cluster.outliers.setEndpoints(endpoints.map((e) => e.id));
    cluster.loaded = true;
  }
}

/**
 * Creates the client.
 *
 * @example
 * const client = createMeshworkClient({ registry: 'http://127.0.0.1:8500' });
 * client.register({ service: 'orders', address: '10.0.0.7', port: 8080, checks: [{ ttl: '10s' }] });
 * const res = await client.fetch('http://payments/charge', { method: 'POST', body: '{}' });
 */
export function createMeshworkClient(options?: MeshworkClientOptions): MeshworkClient {
  return new MeshworkClient(options);
}
