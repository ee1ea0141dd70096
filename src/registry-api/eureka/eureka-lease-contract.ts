/**
 * @module What the Eureka routes tell the lease keeper (eureka-leases.ts) and what it answers:
 * renewal counting, eviction of expired leases, and self-preservation per service
 * (docs/eureka-compatibility.md, "Leases, eviction and self-preservation").
 *
 * A lease is the TTL check {@link EUREKA_LEASE_CHECK_ID} of an instance registered through
 * Eureka, its TTL the lease's `durationInSecs`. A renewal is a heartbeat of that check whose output
 * starts with {@link EUREKA_RENEWAL_OUTPUT}; a lease that lapsed has the registry's own
 * `TTL expired` output. Eviction removes instances whose lease lapsed (every
 * `eureka.evictionIntervalMs`), unless self-preservation holds for their service.
 */
import type { EurekaLeaseInput } from './eureka-model.js';

/** The check id of an instance's Eureka lease. */
export const EUREKA_LEASE_CHECK_ID = 'eureka-lease';

/** The output every renewal writes, followed by the status the client reported (`UP`...). */
export const EUREKA_RENEWAL_OUTPUT = 'Eureka status ';

/** The output the registry gives a TTL check that lapsed: an expired lease. */
export const LEASE_EXPIRED_OUTPUT = 'TTL expired';

/** Self-preservation of one service, as the API, metrics and logs show it. */
export interface SelfPreservationState {
  readonly service: string;
  /** Whether self-preservation is switched on for the agent (`eureka.selfPreservation`). */
  readonly enabled: boolean;
  /** Whether expiry is paused for this service now. */
  readonly active: boolean;
  /** Renewals per minute its Eureka instances should send: sum of 60 / renewalIntervalInSecs. */
  readonly expectedRenewalsPerMinute: number;
  /** `expected * renewalPercentThreshold`, rounded down (Eureka's numberOfRenewsPerMinThreshold). */
  readonly thresholdPerMinute: number;
  /** Renewals this agent received for the service in the last full minute. */
  readonly renewalsLastMinute: number;
  /** Instances whose lease lapsed and that are kept because of self-preservation. */
  readonly expiredKept: number;
  /** Epoch ms since when it is active (undefined when not active). */
  readonly since: number | undefined;
  /** Why it is (or is not) active, in words, and how to reset it. */
  readonly reason: string;
}

/** The lease keeper, one per agent. */
export interface EurekaLeaseKeeper {
  /** An instance registered (or re-registered) through Eureka with `lease`. */
  registered(service: string, id: string, lease: EurekaLeaseInput): void;
  /** A renewal that found its instance. */
  renewed(service: string, id: string): void;
  /** An instance cancelled through Eureka, or gone from the catalog. */
  cancelled(service: string, id: string): void;
  /** Epoch ms of the last renewal this agent saw for `id` (leaseInfo.lastRenewalTimestamp). */
  lastRenewal(id: string): number | undefined;
  /** Every service with Eureka instances (or an active self-preservation), by name. */
  states(): readonly SelfPreservationState[];
  /**
   * The operator's reset: evicts the service's (every service's, without `service`) lapsed
   * leases now, and starts its renewal measurement afresh. Answers the ids evicted.
   */
  reset(service?: string): Promise<{ readonly evicted: readonly string[] }>;
  /** One eviction pass now (the timer runs this every `eureka.evictionIntervalMs`). */
  evict(): Promise<{ readonly evicted: readonly string[] }>;
  /** Stops the timer. */
  close(): void;
}
