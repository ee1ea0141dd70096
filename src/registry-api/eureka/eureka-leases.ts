/**
 * @module The Eureka lease keeper (eureka-lease-contract.ts): counts renewals per service,
 * evicts instances whose lease lapsed, and holds self-preservation per service
 * (docs/eureka-compatibility.md, "Leases, eviction and self-preservation").
 *
 * Cluster mode: renewals are counted by the agent that receives them, so each agent judges
 * self-preservation from the renewals it sees (a service whose clients renew through another
 * agent looks silent here: with self-preservation on, that agent keeps its lapsed leases, which
 * errs on the side Eureka errs on). Eviction is safe across agents: a lapsed lease is read from
 * the shared check state (the lease check critical with the registry's own `TTL expired`
 * output), and two agents deregistering the same instance is harmless (the second finds nothing).
 * The exception: a renewal that keeps the lease critical (DOWN after a lapse) leaves the `TTL
 * expired` output (a heartbeat that keeps the status writes nothing); the agent that took it keeps
 * the instance (it trusts the renewals it saw), another agent may evict it, and the client's next
 * renewal (404) registers it again.
 */
import { Counter, Gauge, type Registry as PromRegistry } from 'prom-client';
import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import { repeatEvery, type Repeating } from '../../core/repeat.js';
import type { InstanceDto } from '../../protocol/api-types.js';
import type { CatalogFacade } from '../../registry/catalog-facade.js';
import {
  EUREKA_LEASE_CHECK_ID,
  LEASE_EXPIRED_OUTPUT,
  type EurekaLeaseKeeper,
  type SelfPreservationState,
} from './eureka-lease-contract.js';
import { DEFAULT_LEASE, type EurekaLeaseInput } from './eureka-model.js';

/** The meta key carrying an instance's Eureka id (set by the mapping). */
export const EUREKA_INSTANCE_ID_META = 'eureka-instance-id';
/** The meta key carrying an instance's lease, `<renewalIntervalInSecs>/<durationInSecs>`. */
export const EUREKA_LEASE_META = 'eureka-lease';

/** Eureka's MeasuredRate bucket: renewals are judged over the last full minute. */
const MINUTE_MS = 60_000;

/** What the keeper reads of the agent's `eureka` options. */
export interface EurekaLeaseSettings {
  readonly selfPreservation: boolean;
  readonly renewalPercentThreshold: number;
  readonly evictionIntervalMs: number;
}

export interface EurekaLeaseKeeperOptions {
  readonly registry: CatalogFacade;
  /** The registry's clock: the eviction timer and the renewal buckets run on it. */
  readonly clock: Clock;
  /** The agent's `eureka` section (AgentOptions['eureka'] fits: registry-api/ may not import agent/). */
  readonly options: EurekaLeaseSettings;
  /** Where the keeper's metrics go (none when absent). */
  readonly metrics?: PromRegistry;
  readonly logger: Logger;
}

/**
 * Renewal bookkeeping of one service: its instances' expected rates and a one-minute
 * MeasuredRate (the current bucket fills, the last full one is judged).
 */
export interface ServiceRenewals {
  /** Expected renewals per minute of each Eureka instance, by catalog id. */
  readonly perMinute: Map<string, number>;
  expectedPerMinute: number;
  /** Monotonic ms the current bucket started at. */
  bucketStartMs: number;
  current: number;
  last: number;
  /** Whether one full minute has been measured since the first registration (or a reset). */
  measured: boolean;
  active: boolean;
  /** Epoch ms self-preservation was seen to start. */
  since: number | undefined;
  expiredKept: number;
}

/** Fresh bookkeeping, its measurement starting at `monoMs`. */
export function newServiceRenewals(monoMs: number): ServiceRenewals {
  return {
    perMinute: new Map(),
    expectedPerMinute: 0,
    bucketStartMs: monoMs,
    current: 0,
    last: 0,
    measured: false,
    active: false,
    since: undefined,
    expiredKept: 0,
  };
}

/**
 * Moves the buckets to `monoMs`: once a minute has passed, the current bucket becomes the last
 * one (an empty one when more than a minute passed without renewals). O(1).
 */
export function rollRenewals(s: ServiceRenewals, monoMs: number): void {
  const elapsed = monoMs - s.bucketStartMs;
  if (elapsed < MINUTE_MS) return;
  const buckets = Math.floor(elapsed / MINUTE_MS);
  s.last = buckets === 1 ? s.current : 0;
  s.current = 0;
  s.bucketStartMs += buckets * MINUTE_MS;
  s.measured = true;
}

/** Counts one renewal at `monoMs`. O(1). */
export function countRenewal(s: ServiceRenewals, monoMs: number): void {
  rollRenewals(s, monoMs);
  s.current++;
}

/** Sets (or, with undefined, removes) one instance's expected rate. O(1). */
export function setExpected(s: ServiceRenewals, id: string, perMinute: number | undefined): void {
  const old = s.perMinute.get(id) ?? 0;
  if (perMinute === undefined) s.perMinute.delete(id);
  else s.perMinute.set(id, perMinute);
  s.expectedPerMinute += (perMinute ?? 0) - old;
  // Float sums drift; an empty service expects exactly nothing.
  if (s.perMinute.size === 0) s.expectedPerMinute = 0;
}

/** Eureka's numberOfRenewsPerMinThreshold: `floor(expected * percent)`. */
export function renewalThreshold(expectedPerMinute: number, percent: number): number {
  // The epsilon keeps 40 * 0.85 at 34, not 33.99999.
  return Math.floor(expectedPerMinute * percent + 1e-9);
}

/** Renewals per minute a lease asks for: 60 / renewalIntervalInSecs. */
export function renewalsPerMinute(renewalIntervalInSecs: number): number {
  return renewalIntervalInSecs > 0 ? 60 / renewalIntervalInSecs : 0;
}

/**
 * The lease of an `eureka-lease` meta value (`30/90`), Eureka's defaults for what it does not
 * say (or says wrong).
 */
export function leaseOfMeta(meta: string | undefined): EurekaLeaseInput {
  const [interval, duration] = (meta ?? '').split('/').map(Number);
  const positive = (n: number | undefined, fallback: number): number =>
    n !== undefined && Number.isFinite(n) && n > 0 ? n : fallback;
  return {
    renewalIntervalInSecs: positive(interval, DEFAULT_LEASE.renewalIntervalInSecs),
    durationInSecs: positive(duration, DEFAULT_LEASE.durationInSecs),
  };
}

/** Whether an instance's lease lapsed: its lease check critical with the registry's TTL output. */
export function leaseLapsed(instance: InstanceDto): boolean {
  const check = instance.checks.find((c) => c.id === EUREKA_LEASE_CHECK_ID);
  return check?.status === 'critical' && check.output === LEASE_EXPIRED_OUTPUT;
}

/** Whether self-preservation holds for `s` now (after its buckets are rolled). */
export function shouldPreserve(s: ServiceRenewals, enabled: boolean, percent: number): boolean {
  return enabled && s.measured && s.last < renewalThreshold(s.expectedPerMinute, percent);
}

const RESET_HINT = (service: string): string =>
  `POST /api/v1/eureka/self-preservation/reset?service=${service} to evict the lapsed leases now, or wait for renewals to recover`;

/** The state's `reason`, in words, with the numbers and how to reset. */
export function preservationReason(
  service: string,
  s: ServiceRenewals,
  enabled: boolean,
  percent: number,
): string {
  const threshold = renewalThreshold(s.expectedPerMinute, percent);
  const pct = `${Math.round(percent * 100)}%`;
  const expected = round2(s.expectedPerMinute);
  if (!enabled)
    return `self-preservation is off (eureka.selfPreservation: false): lapsed leases are evicted every eviction pass; renewals in the last minute ${s.last}, threshold ${threshold} (${pct} of ${expected} expected)`;
  if (!s.measured)
    return `measuring: a full minute of renewals has not been measured yet since the first registration or the last reset (threshold ${threshold}, ${pct} of ${expected} expected)`;
  if (s.last < threshold)
    return `renewals in the last minute ${s.last} < threshold ${threshold} (${pct} of ${expected} expected): expiry paused; ${RESET_HINT(service)}`;
  return `renewals in the last minute ${s.last} >= threshold ${threshold} (${pct} of ${expected} expected): lapsed leases are evicted`;
}

const round2 = (n: number): number => Math.round(n * 100) / 100;

/**
 * The agent's lease keeper: the routes tell it of registrations, renewals and cancellations; it
 * evicts lapsed leases every `options.evictionIntervalMs` on `clock` and answers the state of
 * self-preservation per service.
 * @example
 * const keeper = createEurekaLeaseKeeper({ registry, clock, options: opts.eureka, logger });
 * keeper.renewed('orders', 'orders:i-1');
 * keeper.close();
 */
export function createEurekaLeaseKeeper(options: EurekaLeaseKeeperOptions): EurekaLeaseKeeper {
  const { registry, clock } = options;
  const enabled = options.options.selfPreservation;
  const percent = options.options.renewalPercentThreshold;
  const log = options.logger.child({ component: 'eureka-leases' });
  const services = new Map<string, ServiceRenewals>();
  const lastRenewals = new Map<string, number>();
  let renewalsTotal = 0;
  let evictionCounter: Counter | undefined;
  let running: Promise<unknown> = Promise.resolve();

  const serviceOf = (service: string): ServiceRenewals => {
    let s = services.get(service);
    if (s === undefined) {
      s = newServiceRenewals(clock.monotonicMs());
      services.set(service, s);
    }
    return s;
  };

  /** Logs (and records) a change of self-preservation, once per change. */
  const judge = (service: string, s: ServiceRenewals, mono: number): void => {
    rollRenewals(s, mono);
    const active = shouldPreserve(s, enabled, percent);
    if (active === s.active) return;
    s.active = active;
    const fields = {
      service,
      renewalsLastMinute: s.last,
      thresholdPerMinute: renewalThreshold(s.expectedPerMinute, percent),
      expectedRenewalsPerMinute: round2(s.expectedPerMinute),
    };
    if (active) {
      s.since = clock.now();
      log.warn(
        { ...fields, reason: preservationReason(service, s, enabled, percent) },
        'eureka self-preservation started: lapsed leases are kept',
      );
    } else {
      s.since = undefined;
      s.expiredKept = 0;
      log.info(fields, 'eureka self-preservation ended: lapsed leases are evicted again');
    }
  };

  /**
   * Makes the bookkeeping match the catalog's Eureka instances (registered through this agent,
   * another agent of the cluster, or the native API with the mapping's meta), and answers them
   * by service. O(catalog): run by the eviction pass and state reads, never per renewal.
   */
  const sync = (): Map<string, InstanceDto[]> => {
    const mono = clock.monotonicMs();
    const byService = new Map<string, InstanceDto[]>();
    for (const i of registry.allInstances()) {
      if (i.meta[EUREKA_INSTANCE_ID_META] === undefined) continue;
      let list = byService.get(i.service);
      if (list === undefined) byService.set(i.service, (list = []));
      list.push(i);
    }
    for (const [service, list] of byService) {
      const s = serviceOf(service);
      const present = new Set<string>();
      for (const i of list) {
        present.add(i.id);
        const rate = renewalsPerMinute(
          leaseOfMeta(i.meta[EUREKA_LEASE_META]).renewalIntervalInSecs,
        );
        if (s.perMinute.get(i.id) !== rate) setExpected(s, i.id, rate);
      }
      for (const id of [...s.perMinute.keys()]) if (!present.has(id)) setExpected(s, id, undefined);
    }
    for (const [service, s] of services) {
      if (byService.has(service)) continue;
      // Every instance gone: nothing to preserve any more.
      for (const id of [...s.perMinute.keys()]) setExpected(s, id, undefined);
      judge(service, s, mono);
      services.delete(service);
    }
    for (const id of lastRenewals.keys())
      if (registry.instance(id) === undefined) lastRenewals.delete(id);
    for (const [service, s] of services) judge(service, s, mono);
    return byService;
  };

  /**
   * Whether this agent saw a renewal within the lease's duration: a renewal that keeps the check
   * critical (DOWN, STARTING, OUT_OF_SERVICE after the lease lapsed) replaces the registry's
   * `TTL expired` output only within `checks.updateIntervalMs` (a heartbeat that keeps the status
   * writes a new output at most that often), so the output alone would evict an instance that
   * renews.
   */
  const renewedWithinLease = (i: InstanceDto, now: number): boolean => {
    const last = lastRenewals.get(i.id);
    return (
      last !== undefined &&
      now - last < leaseOfMeta(i.meta[EUREKA_LEASE_META]).durationInSecs * 1000
    );
  };

  const evictOne = async (i: InstanceDto, why: string): Promise<boolean> => {
    const { deleted } = await registry.deregister(i.id);
    lastRenewals.delete(i.id);
    const s = services.get(i.service);
    if (s !== undefined) setExpected(s, i.id, undefined);
    if (deleted) {
      evictionCounter?.inc();
      log.info(
        { service: i.service, id: i.id, eurekaId: i.meta[EUREKA_INSTANCE_ID_META], why },
        'eureka lease evicted',
      );
    }
    return deleted;
  };

  /** One pass over `only` (every service without it); `force`: ignore self-preservation. */
  const pass = async (only: string | undefined, force: boolean): Promise<string[]> => {
    const byService = sync();
    const now = clock.now();
    const evicted: string[] = [];
    for (const [service, list] of byService) {
      if (only !== undefined && service !== only) continue;
      const s = services.get(service);
      const lapsed = list.filter((i) => leaseLapsed(i) && !renewedWithinLease(i, now));
      if (s !== undefined && s.active && !force) {
        s.expiredKept = lapsed.length;
        continue;
      }
      if (s !== undefined) s.expiredKept = 0;
      for (const i of lapsed) {
        // Read again just before: a renewal may have come in while earlier evictions committed.
        const fresh = registry.instance(i.id);
        if (fresh === undefined || !leaseLapsed(fresh) || renewedWithinLease(fresh, clock.now()))
          continue;
        try {
          if (await evictOne(i, force ? 'reset' : 'lease expired')) evicted.push(i.id);
        } catch (err) {
          log.warn({ service, id: i.id, err: (err as Error).message }, 'eureka eviction failed');
        }
      }
    }
    return evicted;
  };

  /** Runs passes one at a time (the timer's and the operator's never interleave). */
  const serial = <T>(task: () => Promise<T>): Promise<T> => {
    const next = running.then(task, task);
    running = next.catch(() => undefined);
    return next;
  };

  const stateOf = (service: string, s: ServiceRenewals): SelfPreservationState => ({
    service,
    enabled,
    active: s.active,
    expectedRenewalsPerMinute: round2(s.expectedPerMinute),
    thresholdPerMinute: renewalThreshold(s.expectedPerMinute, percent),
    renewalsLastMinute: s.last,
    expiredKept: s.active ? s.expiredKept : 0,
    since: s.since,
    reason: preservationReason(service, s, enabled, percent),
  });

  const states = (): SelfPreservationState[] => {
    sync();
    return [...services]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([service, s]) => stateOf(service, s));
  };

  if (options.metrics !== undefined)
    evictionCounter = registerLeaseMetrics(options.metrics, {
      states,
      renewalsTotal: () => renewalsTotal,
    });

  const timer: Repeating = repeatEvery(clock, options.options.evictionIntervalMs, async () => {
    await serial(() => pass(undefined, false)).catch((err: unknown) => {
      log.warn({ err: (err as Error).message }, 'eureka eviction pass failed');
    });
  });

  return {
    registered(service: string, id: string, lease: EurekaLeaseInput): void {
      setExpected(serviceOf(service), id, renewalsPerMinute(lease.renewalIntervalInSecs));
    },
    renewed(service: string, id: string): void {
      renewalsTotal++;
      lastRenewals.set(id, clock.now());
      countRenewal(serviceOf(service), clock.monotonicMs());
    },
    cancelled(service: string, id: string): void {
      lastRenewals.delete(id);
      const s = services.get(service);
      if (s !== undefined) setExpected(s, id, undefined);
    },
    lastRenewal: (id: string) => lastRenewals.get(id),
    states,
    reset: (service?: string) =>
      serial(async () => {
        const evicted = await pass(service, true);
        const mono = clock.monotonicMs();
        for (const [name, s] of services) {
          if (service !== undefined && name !== service) continue;
          // The measurement starts afresh: a full minute again before it may start.
          s.bucketStartMs = mono;
          s.current = 0;
          s.last = 0;
          s.measured = false;
          judge(name, s, mono);
        }
        log.info(
          { service: service ?? '*', evicted: evicted.length },
          'eureka self-preservation reset',
        );
        return { evicted };
      }),
    evict: () => serial(async () => ({ evicted: await pass(undefined, false) })),
    close(): void {
      timer.stop();
    },
  };
}

/**
 * Registers the keeper's metrics (gauges read at scrape time) and answers the evictions counter.
 */
function registerLeaseMetrics(
  metrics: PromRegistry,
  source: { states: () => readonly SelfPreservationState[]; renewalsTotal: () => number },
): Counter {
  const registers = [metrics];
  const perService = (
    name: string,
    help: string,
    value: (s: SelfPreservationState) => number,
  ): void => {
    new Gauge({
      name,
      help,
      labelNames: ['service'],
      registers,
      collect() {
        this.reset();
        for (const s of source.states()) this.set({ service: s.service }, value(s));
      },
    });
  };
  perService(
    'meshwork_eureka_self_preservation_active',
    'Whether Eureka self-preservation pauses lease expiry for the service (1) or not (0).',
    (s) => (s.active ? 1 : 0),
  );
  perService(
    'meshwork_eureka_renewals_expected_per_minute',
    "Renewals per minute the service's Eureka instances should send (sum of 60 / renewalIntervalInSecs).",
    (s) => s.expectedRenewalsPerMinute,
  );
  perService(
    'meshwork_eureka_renewals_last_minute',
    'Eureka renewals this agent received for the service in the last full minute.',
    (s) => s.renewalsLastMinute,
  );
  perService(
    'meshwork_eureka_expired_kept',
    'Lapsed Eureka leases of the service kept by self-preservation.',
    (s) => s.expiredKept,
  );
  new Counter({
    name: 'meshwork_eureka_renewals_total',
    help: 'Eureka renewals this agent received (for instances it found).',
    registers,
    collect() {
      // The keeper counts (a renewal is a hot path); the counter shows its count at each scrape.
      this.reset();
      this.inc(source.renewalsTotal());
    },
  });
  return new Counter({
    name: 'meshwork_eureka_evictions_total',
    help: 'Eureka instances this agent evicted because their lease lapsed (or at a reset).',
    registers,
  });
}
