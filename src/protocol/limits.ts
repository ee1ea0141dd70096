/** @module Limits on registration fields and request sizes (shared by server and SDK). */

export const LIMITS = Object.freeze({
  /** Request bodies larger than this are refused with 413. */
  maxBodyBytes: 1024 * 1024,
  /** Request URLs (path and query) longer than this are refused with 414. */
  maxUrlBytes: 8 * 1024,
  /** Path segments (an id, a service name) longer than this are refused with 414. */
  maxParamLength: 1024,
  /** Request heads (request line and headers) larger than this are refused with 431. */
  maxHeaderBytes: 16 * 1024,
  maxIdLength: 128,
  maxAddressLength: 253,
  maxTags: 64,
  maxTagLength: 255,
  /** Consul's limits on service meta. */
  maxMetaPairs: 64,
  maxMetaKeyLength: 128,
  maxMetaValueLength: 512,
  maxPorts: 32,
  maxProtocols: 16,
  maxChecks: 32,
  maxHeaders: 32,
  maxOutputLength: 4096,
  maxKvKeyLength: 512,
  maxKvValueBytes: 512 * 1024,
  maxApplyInstances: 10_000,
});

/**
 * The shortest check durations an agent accepts (issue 16: `"interval": 1` made the agent probe
 * a URL 800 times a second). Native registrations below a floor are refused; the Consul API
 * raises them to the floor, as Consul raises intervals below 1 s (docs/health.md, "Floors").
 */
export interface CheckFloors {
  /** Time between probes (http, tcp). Consul's `checks.MinInterval` is 1 s. */
  readonly intervalMs: number;
  /** Probe timeout: below this a probe cannot succeed on a busy host, and the check flaps. */
  readonly timeoutMs: number;
  /** TTL of a ttl check: each expiry is a status change, so a write and a watcher wake-up. */
  readonly ttlMs: number;
  /** Deregister-after-critical when set (0 stays "never"). Consul's minimum is 1 min. */
  readonly deregisterCriticalAfterMs: number;
}

/** Default {@link CheckFloors}: agent options `checks.min*Ms` lower or raise them. */
export const DEFAULT_CHECK_FLOORS: CheckFloors = Object.freeze({
  intervalMs: 1_000,
  timeoutMs: 100,
  ttlMs: 1_000,
  deregisterCriticalAfterMs: 60_000,
});

/**
 * A check whose status holds writes a new output at most this often (Consul's
 * `check_update_interval`, also 5 minutes): a status change is written at once, but an output that
 * changes on every heartbeat or probe would otherwise be a write each time. Agent option
 * `checks.updateIntervalMs`.
 */
export const DEFAULT_CHECK_UPDATE_INTERVAL_MS = 300_000;

/** Default KV quota (bytes of keys and values together); agent option `kv.quotaBytes`. */
export const DEFAULT_KV_QUOTA_BYTES = 256 * 1024 * 1024;
