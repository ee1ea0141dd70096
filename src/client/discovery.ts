/**
 * @module ServiceDiscovery: client-side discovery from a local cache. Each service asked for gets
 * one watch stream (`/api/v1/watch?service=`) that keeps its cache fresh; answers never cost a
 * registry round trip. When every registry address is unreachable the cache keeps serving its
 * last-known instances (static stability), says so (events, `state()`), and resynchronises from a
 * fresh snapshot by itself once a registry answers again.
 */
import { EventEmitter } from 'node:events';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { errors } from '../core/errors.js';
import type { InstanceStatus } from '../core/types.js';
import type { InstanceDto, WatchEvent } from '../protocol/api-types.js';
import type { RegistryClient } from './registry-client.js';

export interface ServiceDiscoveryOptions {
  readonly registry: RegistryClient;
  readonly clock?: Clock;
  /** Jitter source for reconnect backoff. Default Math.random. */
  readonly random?: () => number;
  /** The first `discover()` of a service waits at most this long for its first snapshot. */
  readonly initialTimeoutMs?: number;
  /** Reconnect backoff: exponential from `baseMs` to `maxMs`, with full jitter. */
  readonly reconnectBaseMs?: number;
  readonly reconnectMaxMs?: number;
}

export const DEFAULT_SERVICE_DISCOVERY_OPTIONS = Object.freeze({
  initialTimeoutMs: 5_000,
  reconnectBaseMs: 100,
  reconnectMaxMs: 5_000,
});

/** Which cached instances `discover()` answers. */
export interface DiscoverFilter {
  /** All of these tags. */
  readonly tag?: string | readonly string[];
  /** All of these meta pairs. */
  readonly meta?: Readonly<Record<string, string>>;
  /** Same as meta.zone. */
  readonly zone?: string;
  /** Default passing and warning: the instances a balancer may pick. */
  readonly status?: readonly InstanceStatus[];
}

/** What a service's cache knows, for metrics and for callers that care. */
export interface ServiceCacheState {
  readonly service: string;
  readonly instances: number;
  /** The index of the last event applied (0 before the first snapshot). */
  readonly index: number;
  /** The watch is down: answers come from the last-known instances. */
  readonly stale: boolean;
  /** Monotonic ms when it went stale (undefined when fresh). */
  readonly staleSinceMs: number | undefined;
  readonly reconnects: number;
}

/**
 * Events: `change` (service, instances) after every applied event; `stale` (service, error) when
 * a service's watch is lost and answers come from the last-known instances; `fresh` (service)
 * when a new snapshot arrived after being stale.
 */
export interface ServiceDiscoveryEvents {
  change: [service: string, instances: readonly InstanceDto[]];
  stale: [service: string, error: Error];
  fresh: [service: string];
}

const HEALTHY: readonly InstanceStatus[] = Object.freeze(['passing', 'warning']);

class ServiceCache {
  readonly byId = new Map<string, InstanceDto>();
  /** Sorted by id; rebuilt lazily after a change. */
  #list: readonly InstanceDto[] | undefined;
  index = 0;
  loaded = false;
  stale = false;
  staleSinceMs: number | undefined;
  reconnects = 0;
  failures = 0;
  readonly controller = new AbortController();
  timer: TimerHandle | undefined;
  readonly ready: Promise<void>;
  resolveReady!: () => void;

  constructor() {
    this.ready = new Promise((r) => (this.resolveReady = r));
  }

  list(): readonly InstanceDto[] {
    this.#list ??= [...this.byId.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
    return this.#list;
  }

  /** Applies one watch event; answers false for a `reset` (the stream ends, then resyncs). */
  apply(event: WatchEvent): boolean {
    if (event.type === 'reset') return false;
    if (event.type === 'snapshot') {
      this.byId.clear();
      for (const i of event.instances) this.byId.set(i.id, i);
    } else if (event.type === 'upsert') {
      this.byId.set(event.instance.id, event.instance);
    } else {
      this.byId.delete(event.id);
    }
    if (event.index > this.index) this.index = event.index;
    this.#list = undefined;
    return true;
  }
}

/** Client-side discovery with one watch per service. */
export class ServiceDiscovery extends EventEmitter<ServiceDiscoveryEvents> {
  readonly #registry: RegistryClient;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #initialTimeoutMs: number;
  readonly #baseMs: number;
  readonly #maxMs: number;
  readonly #caches = new Map<string, ServiceCache>();
  #closed = false;

  constructor(options: ServiceDiscoveryOptions) {
    super();
    const d = DEFAULT_SERVICE_DISCOVERY_OPTIONS;
    this.#registry = options.registry;
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    this.#initialTimeoutMs = options.initialTimeoutMs ?? d.initialTimeoutMs;
    this.#baseMs = options.reconnectBaseMs ?? d.reconnectBaseMs;
    this.#maxMs = options.reconnectMaxMs ?? d.reconnectMaxMs;
  }

  /**
   * The service's instances that match `filter` (default: passing and warning), from the cache.
   * The first call for a service starts its watch and waits for the first snapshot (at most
   * `initialTimeoutMs`; then it rejects with MESHWORK_ERR_CLIENT_REQUEST_FAILED unless the cache
   * has something). Later calls answer at once.
   *
   * @example
   * const payments = await discovery.discover('payments', { zone: 'eu-1a' });
   */
  async discover(service: string, filter: DiscoverFilter = {}): Promise<InstanceDto[]> {
    const cache = this.#cache(service);
    if (!cache.loaded) await this.#awaitFirst(service, cache);
    return select(cache.list(), filter);
  }

  /** The cached instances now, without waiting (undefined before the first snapshot). */
  cached(service: string, filter: DiscoverFilter = {}): InstanceDto[] | undefined {
    const cache = this.#caches.get(service);
    if (cache === undefined || !cache.loaded) {
      this.#cache(service); // start watching, so the next call finds it
      return undefined;
    }
    return select(cache.list(), filter);
  }

  /** Resolves once the service's first snapshot is in (or the initial timeout passed). */
  async ready(service: string): Promise<void> {
    const cache = this.#cache(service);
    if (!cache.loaded) await this.#awaitFirst(service, cache);
  }

  /** The state of every watched service. */
  state(): ServiceCacheState[] {
    return [...this.#caches].map(([service, c]) => ({
      service,
      instances: c.byId.size,
      index: c.index,
      stale: c.stale,
      staleSinceMs: c.staleSinceMs,
      reconnects: c.reconnects,
    }));
  }

  /** Prometheus text lines for the discovery caches (the SDK carries no metrics library). */
  metricsText(): string {
    const lines = [
      '# HELP meshwork_client_discovery_instances Instances in the discovery cache.',
      '# TYPE meshwork_client_discovery_instances gauge',
      ...this.state().map(
        (s) => `meshwork_client_discovery_instances{service="${s.service}"} ${s.instances}`,
      ),
      '# HELP meshwork_client_discovery_stale 1 while a service is served from last-known instances.',
      '# TYPE meshwork_client_discovery_stale gauge',
      ...this.state().map(
        (s) => `meshwork_client_discovery_stale{service="${s.service}"} ${s.stale ? 1 : 0}`,
      ),
      '# HELP meshwork_client_discovery_reconnects_total Watch reconnections.',
      '# TYPE meshwork_client_discovery_reconnects_total counter',
      ...this.state().map(
        (s) => `meshwork_client_discovery_reconnects_total{service="${s.service}"} ${s.reconnects}`,
      ),
    ];
    return `${lines.join('\n')}\n`;
  }

  /**
   * Stops watching `service` and drops its cache (a gateway whose new config no longer routes to
   * it). A later call for it starts a new watch.
   */
  forget(service: string): void {
    const cache = this.#caches.get(service);
    if (cache === undefined) return;
    this.#caches.delete(service);
    this.#stop(cache);
  }

  /** Stops every watch. */
  close(): void {
    this.#closed = true;
    for (const c of this.#caches.values()) this.#stop(c);
  }

  #stop(cache: ServiceCache): void {
    cache.controller.abort();
    if (cache.timer !== undefined) this.#clock.clearTimeout(cache.timer);
    cache.resolveReady();
  }

  #cache(service: string): ServiceCache {
    let cache = this.#caches.get(service);
    if (cache === undefined) {
      if (this.#closed) throw errors.clientRequestFailed('discovery is closed', false);
      cache = new ServiceCache();
      this.#caches.set(service, cache);
      this.#watch(service, cache);
    }
    return cache;
  }

  async #awaitFirst(service: string, cache: ServiceCache): Promise<void> {
    let timer: TimerHandle | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = this.#clock.setTimeout(resolve, this.#initialTimeoutMs);
      timer.unref?.();
    });
    await Promise.race([cache.ready, timeout]);
    if (timer !== undefined) this.#clock.clearTimeout(timer);
    if (!cache.loaded && !this.#closed) {
      throw errors.clientRequestFailed(
        `no instances of "${service}" known yet: the registry did not answer within ${this.#initialTimeoutMs} ms`,
        true,
      );
    }
  }

  #watch(service: string, cache: ServiceCache): void {
    let sawEvent = false;
    this.#registry
      .watch(
        service,
        (event) => {
          sawEvent = true;
          if (!cache.apply(event)) return;
          if (event.type === 'snapshot') this.#onSnapshot(service, cache);
          this.emit('change', service, cache.list());
        },
        cache.controller.signal,
      )
      .then(
        () => this.#lost(service, cache, sawEvent, new Error('watch stream ended')),
        (err: unknown) => this.#lost(service, cache, sawEvent, err as Error),
      );
  }

  #onSnapshot(service: string, cache: ServiceCache): void {
    cache.failures = 0;
    cache.loaded = true;
    cache.resolveReady();
    if (cache.stale) {
      cache.stale = false;
      cache.staleSinceMs = undefined;
      this.emit('fresh', service);
    }
  }

  /** The watch ended: go stale (keep the instances) and reconnect with backoff. */
  #lost(service: string, cache: ServiceCache, sawEvent: boolean, err: Error): void {
    if (this.#closed || cache.controller.signal.aborted) return;
    if (!cache.stale && cache.loaded) {
      cache.stale = true;
      cache.staleSinceMs = this.#clock.monotonicMs();
      this.emit('stale', service, err);
    }
    // A stream that delivered events was healthy: reconnect soon; repeated failures back off.
    cache.failures = sawEvent ? 1 : cache.failures + 1;
    const ceiling = Math.min(this.#maxMs, this.#baseMs * 2 ** (cache.failures - 1));
    cache.timer = this.#clock.setTimeout(() => {
      cache.timer = undefined;
      if (this.#closed) return;
      cache.reconnects++;
      this.#watch(service, cache);
    }, this.#random() * ceiling);
    cache.timer.unref?.();
  }
}

/** Instances of `list` that match the filter, in id order. */
export function select(list: readonly InstanceDto[], filter: DiscoverFilter): InstanceDto[] {
  const statuses = filter.status ?? HEALTHY;
  const tags =
    filter.tag === undefined ? [] : typeof filter.tag === 'string' ? [filter.tag] : filter.tag;
  const meta = Object.entries(filter.meta ?? {});
  if (filter.zone !== undefined) meta.push(['zone', filter.zone]);
  return list.filter(
    (i) =>
      statuses.includes(i.status) &&
      tags.every((t) => i.tags.includes(t)) &&
      meta.every(([k, v]) => i.meta[k] === v),
  );
}

export function createServiceDiscovery(options: ServiceDiscoveryOptions): ServiceDiscovery {
  return new ServiceDiscovery(options);
}
