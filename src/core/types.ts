/** @module Domain types of the catalog: instances, checks, statuses, KV entries. No I/O. */

/** Status of one check, as the health state machine decides it. */
export type CheckStatus = 'passing' | 'warning' | 'critical';

/**
 * Aggregated status of an instance.
 * `starting`: a startup check has not passed yet (not routed, not failing).
 * `maintenance`: the instance or the whole agent is in maintenance (not routed).
 */
export type InstanceStatus = 'passing' | 'warning' | 'critical' | 'maintenance' | 'starting';

export const INSTANCE_STATUSES: readonly InstanceStatus[] = Object.freeze([
  'passing',
  'warning',
  'critical',
  'maintenance',
  'starting',
]);

/** Where a registration came from. */
export type RegistrationSource = 'self' | 'sidecar' | 'config' | 'orchestrator';

/** Kinds of check the agent knows how to run. `grpc` is reserved for a later issue. */
export type CheckKind = 'http' | 'tcp' | 'ttl';

/**
 * What a check gates.
 * `startup`: until its first pass the instance is `starting`.
 * `readiness`: gates routing. `liveness`: the process is alive.
 */
export type CheckRole = 'startup' | 'readiness' | 'liveness';

export interface HttpCheckTarget {
  readonly url: string;
  readonly method: string;
  readonly headers: Readonly<Record<string, string>>;
  /** Skip TLS certificate verification for https URLs. */
  readonly tlsSkipVerify: boolean;
}

export interface TcpCheckTarget {
  /** host:port, [v6]:port. */
  readonly address: string;
}

/** A check definition, fully defaulted, as stored with its instance. */
export interface CheckDefinition {
  /** Unique within the instance. */
  readonly id: string;
  readonly name: string;
  readonly kind: CheckKind;
  readonly role: CheckRole;
  readonly http?: HttpCheckTarget;
  readonly tcp?: TcpCheckTarget;
  /** TTL checks: silence past this is critical. */
  readonly ttlMs?: number;
  /** Probe interval (http, tcp). */
  readonly intervalMs: number;
  /** Probe timeout (http, tcp). */
  readonly timeoutMs: number;
  /** Consecutive successes before the check turns passing. */
  readonly successesBeforePassing: number;
  /** Consecutive failures before the check turns warning. */
  readonly failuresBeforeWarning: number;
  /** Consecutive failures before the check turns critical. */
  readonly failuresBeforeCritical: number;
  /** Failures within this period after registration do not count. */
  readonly startPeriodMs: number;
  /** Deregister the instance when this check has been critical this long (0 = never). */
  readonly deregisterCriticalAfterMs: number;
  /** Status before the first result. */
  readonly initialStatus: CheckStatus;
  /** Free text for humans (Consul `Notes`); absent when none was given. */
  readonly notes?: string;
}

export interface Weights {
  readonly passing: number;
  readonly warning: number;
}

export interface Maintenance {
  readonly enabled: boolean;
  readonly reason: string;
}

/** A registered instance, as stored. Timestamps are epoch ms. */
export interface Instance {
  readonly id: string;
  readonly service: string;
  readonly address: string;
  readonly port: number;
  /** Named ports, e.g. { http: 8080, grpc: 9090, admin: 9901 }. */
  readonly ports: Readonly<Record<string, number>>;
  readonly tags: readonly string[];
  /** Free string map; well-known keys: version, environment, region, zone, description. */
  readonly meta: Readonly<Record<string, string>>;
  readonly weights: Weights;
  /** Lower is preferred (RFC 2782 semantics). */
  readonly priority: number;
  /** Capacity hint (e.g. max concurrent requests), 0 = unknown. */
  readonly capacity: number;
  readonly protocols: readonly string[];
  readonly source: RegistrationSource;
  /** Set of a declarative apply (`meshwork apply`, agent config) that owns this instance. */
  readonly managedBy: string;
  readonly checks: readonly CheckDefinition[];
  readonly maintenance: Maintenance;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** The last decided status of one check, persisted only when it changes. */
export interface CheckState {
  readonly instanceId: string;
  readonly checkId: string;
  readonly status: CheckStatus;
  readonly output: string;
  /** Epoch ms of the status change. */
  readonly since: number;
  /** True once a startup check passed (startup checks only). */
  readonly startedOnce: boolean;
}

/** An instance with its check states and aggregated status, as readers see it. */
export interface InstanceView {
  readonly instance: Instance;
  readonly status: InstanceStatus;
  readonly statusReason: string;
  readonly checks: readonly CheckState[];
  /** Index at which this instance (or its status) last changed. */
  readonly modifyIndex: number;
  readonly createIndex: number;
}

/** A key-value entry. `value` is raw bytes. */
export interface KvEntry {
  readonly key: string;
  readonly value: Uint8Array;
  readonly flags: number;
  readonly createIndex: number;
  readonly modifyIndex: number;
  /** The session holding the key's lock (Consul `Session`); absent while unlocked. */
  readonly session?: string;
  /** Times the lock was newly acquired (Consul `LockIndex`); absent while 0 (never locked). */
  readonly lockIndex?: number;
}

/** What happens to a session's locked keys when it is invalidated (Consul `Behavior`). */
export type SessionBehavior = 'release' | 'delete';

/**
 * A check a session is bound to: its invalidation follows the check turning critical or going
 * away. `instanceId` is the check's instance, or the reserved node-check instance of the node.
 */
export interface SessionCheck {
  /** The check as Consul names it (`CheckID`), shown in `NodeChecks` / `ServiceChecks`. */
  readonly id: string;
  readonly kind: 'node' | 'service';
  readonly instanceId: string;
  readonly checkId: string;
}

/** A lock session (Consul's): created, renewed, invalidated; never changed otherwise. */
export interface Session {
  /** A UUID. */
  readonly id: string;
  readonly name: string;
  /** The node (agent) it belongs to. */
  readonly node: string;
  /** After invalidation, keys it held cannot be acquired by another session for this long. */
  readonly lockDelayMs: number;
  readonly behavior: SessionBehavior;
  /** 0: no TTL. Otherwise a renew must come within this (invalidated after twice it, as Consul). */
  readonly ttlMs: number;
  /**
   * Node check ids it is bound to that are not stored checks (`serfHealth`: the agent itself,
   * which is never critical while the agent answers).
   */
  readonly agentChecks: readonly string[];
  readonly checks: readonly SessionCheck[];
}

/** A session to create: everything but the id, which the registry picks. */
export type SessionInput = Omit<Session, 'id'>;

/** Well-known meta keys. */
export const WELL_KNOWN_META = Object.freeze([
  'version',
  'environment',
  'region',
  'zone',
  'description',
] as const);

/**
 * Meta keys starting with this are Meshwork's own markers (Consul reserves the prefix; the
 * Consul adapter keeps `consul-registered` and `consul-enable-tag-override` there). Shown by the
 * native API, hidden from Consul `/v1` answers and DNS TXT records.
 */
export const INTERNAL_META_PREFIX = 'consul-';
