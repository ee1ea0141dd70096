/** @module RegistryOptions: what a Registry is built from, and its defaults. */
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { CheckKind } from '../core/types.js';
import { DEFAULT_CHECK_FLOORS, DEFAULT_KV_QUOTA_BYTES, LIMITS } from '../protocol/limits.js';
import type { RegistryLimits } from './catalog-facade.js';
import type { CheckOwnership } from './cluster/check-ownership.js';
import { MAX_COMMIT_ATTEMPTS } from './commit-retry.js';
import type { CheckProbe } from './health/health-types.js';
import type { RegistryMetrics } from './registry-metrics.js';
import type { CatalogStore } from './store/catalog-store.js';

/** What `createRegistry` takes. */
export interface RegistryOptions {
  readonly store: CatalogStore;
  /** This agent's node name (Consul node; agent maintenance is per node). */
  readonly nodeName: string;
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly metrics?: RegistryMetrics;
  readonly probes?: Map<CheckKind, CheckProbe>;
  readonly random?: () => number;
  /** Blocking queries wait at most this long (Consul: 10 min). */
  readonly maxWaitMs?: number;
  /**
   * A check whose status holds writes a new output at most this often; 0: every new output.
   * Default: `DEFAULT_CHECK_UPDATE_INTERVAL_MS` (protocol/limits.ts, 5 min).
   */
  readonly checkUpdateIntervalMs?: number;
  /**
   * Cluster mode: which instances' checks this agent runs. Default: all of them (one agent).
   */
  readonly ownership?: CheckOwnership;
  /**
   * Floors on check durations, checks per instance, KV quota. Default:
   * {@link DEFAULT_REGISTRY_LIMITS}.
   */
  readonly limits?: Partial<RegistryLimits>;
}

/** What an agent allows unless its options say otherwise. */
export const DEFAULT_REGISTRY_LIMITS: RegistryLimits = Object.freeze({
  checkFloors: DEFAULT_CHECK_FLOORS,
  maxChecksPerInstance: LIMITS.maxChecks,
  kvQuotaBytes: DEFAULT_KV_QUOTA_BYTES,
});

/** Defaults of the registry's own tunables. */
export const DEFAULT_REGISTRY_OPTIONS = Object.freeze({
  maxWaitMs: 600_000,
  /** A write that keeps losing its compare to other agents' writes gives up after this many. */
  maxCommitAttempts: MAX_COMMIT_ATTEMPTS,
});
