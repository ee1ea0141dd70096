/**
 * @module CatalogFacade: the registry contract every front end (native API, Consul API, DNS, the
 * control plane to come) reads, watches and writes the catalog through, and the types it speaks.
 */
import type {
  CheckDefinition,
  CheckState,
  CheckStatus,
  Instance,
  InstanceStatus,
  KvEntry,
  Maintenance,
  RegistrationSource,
  SessionInput,
} from '../core/types.js';
import type {
  ApplyResponse,
  CheckDto,
  InstanceDto,
  ServiceSummaryDto,
} from '../protocol/api-types.js';
import type { CheckFloors } from '../protocol/limits.js';
import type { ParsedRegistration } from '../protocol/registration.js';
import type { MeshCatalogReader, MeshCatalogWriter } from './mesh-catalog.js';
import type { StoredSession } from './store/catalog-store.js';
import type { ReservedKv } from './reserved-kv-contract.js';
import type { TxnOp, TxnOutcome } from './txn-types.js';

export type { StoredSession };

/**
 * What a blocking query waits on: one service (`svc:<name>`), the whole catalog (`catalog`), the
 * KV space (`kv`), the mesh resources (`mesh`, whose index is `meshIndex`), the sessions
 * (`session`, whose index is `sessionIndex`) or the agent's own reserved keys (`reserved`:
 * Consul user events and prepared queries, whose index the caller derives), so a watch on
 * service A never wakes for B, nor a watch on resources for an instance.
 */
export type Topic = `svc:${string}` | 'catalog' | 'kv' | 'mesh' | 'session' | 'reserved';

/** The topic of one service's changes. */
export const serviceTopic = (service: string): Topic => `svc:${service}`;

/**
 * Lets a caller end a wait early (the client went away). Cheaper than an AbortSignal, which
 * matters with thousands of blocking queries re-issued after every change.
 */
export interface WaitCancellation {
  cancelled: boolean;
  /** Set by the registry while a wait is pending; call it to end the wait. */
  cancel: (() => void) | undefined;
}

/** A cancellation for one wait (see {@link WaitCancellation}). */
export function createWaitCancellation(): WaitCancellation {
  return { cancelled: false, cancel: undefined };
}

/**
 * Where a stream's frames go (an HTTP response, in practice).
 * `write` MUST NOT block or throw; it returns false when the sink's buffer is over its bound,
 * and the registry then drops the sink.
 */
export interface StreamSink {
  write(frame: string): boolean;
  /** Called once when the sink is dropped for being too slow; it should tell the peer and close. */
  drop(frame: string): void;
  /** Called once at shutdown: end the stream cleanly (the peer reconnects elsewhere). */
  close?(): void;
}

/** How many watchers a change was sent to (`CatalogWatcher.notified`). */
export interface WatchersNotified {
  readonly streams: number;
  readonly blockingQueries: number;
}

/** This agent's node checks as readers see them, with the indexes of their last change. */
export interface NodeChecksDto {
  readonly checks: readonly CheckDto[];
  readonly createIndex: number;
  readonly modifyIndex: number;
}

/** Filters of an instance list. */
export interface InstanceFilter {
  readonly status?: readonly InstanceStatus[];
  readonly tags?: readonly string[];
  readonly meta?: Readonly<Record<string, string>>;
  readonly zone?: string;
}

/** A service's instances and the service's modify index. */
export interface ServiceInstances {
  readonly index: number;
  readonly instances: readonly InstanceDto[];
}

/** What one agent lets its clients store and run (agent options `checks.*`, `kv.*`). */
export interface RegistryLimits {
  /** Check durations below these are refused (native API, config, apply). */
  readonly checkFloors: CheckFloors;
  /** Checks on one instance, or on the node (at most LIMITS.maxChecks). */
  readonly maxChecksPerInstance: number;
  /** Bytes of KV keys and values together; a put past it is refused with KV_QUOTA_EXCEEDED. */
  readonly kvQuotaBytes: number;
}

/**
 * Reads of the catalog as this agent sees it now: synchronous, from memory, and consistent with
 * every write this agent has answered (read-your-writes).
 *
 * Callers: the request handlers of the front ends, on every request (the hot path: the reads are
 * benchmarked, `bench:reads`). Implementations MUST answer synchronously, MUST NOT do I/O and
 * MUST NOT copy what they already hold: a returned array or object is shared and MUST NOT be
 * mutated by the caller. Apart from {@link getInstance}, reads MUST NOT throw.
 */
export interface CatalogReader {
  /** This agent's node name (one agent is one Consul node). */
  readonly nodeName: string;
  /** What this agent accepts: check floors, checks per instance, KV quota. */
  readonly limits: RegistryLimits;
  /** The store's kind (`memory`, `sqlite`, `etcd`), as `/api/v1/agent` reports it. */
  readonly storeKind: string;
  /** The current global index (never 0). */
  readonly index: number;
  /** The index of the last change to any service or to the node's checks. */
  readonly catalogIndex: number;
  /** The index of the last change to the KV space. */
  readonly kvIndex: number;
  /** Instances in the catalog (node checks not counted). */
  readonly instanceCount: number;
  /** Agent maintenance, when on. */
  readonly agentMaintenance: Maintenance | undefined;
  /** The modify index of one service (moves on every change to it, or to the node's checks). */
  serviceIndex(service: string): number;
  /** One instance as readers see it (status included), or undefined. */
  instance(id: string): InstanceDto | undefined;
  /** One instance as readers see it, with its modify index; throws INSTANCE_NOT_FOUND. */
  getInstance(id: string): { index: number; instance: InstanceDto };
  /** One instance's stored definition (its checks as registered), or undefined. */
  instanceDefinition(id: string): Instance | undefined;
  /** A service's instances (shared: do not mutate). */
  serviceInstances(service: string): InstanceDto[];
  /** Every instance of every service (shared: do not mutate). */
  allInstances(): InstanceDto[];
  /** The stored definitions `pred` keeps (a scan: not for per-request use on large catalogs). */
  instancesWhere(pred: (i: Instance) => boolean): Instance[];
  /** A service's instances, filtered, and the service's modify index. */
  listInstances(service: string, filter?: InstanceFilter): ServiceInstances;
  /** Every service with counts by status and its tags. */
  listServices(): { index: number; services: ServiceSummaryDto[] };
  /** This agent's node checks, or undefined when it has none. */
  nodeChecks(): NodeChecksDto | undefined;
  /**
   * The in-memory states of instance `id`'s checks whose latest output this agent holds but has
   * not written, by check id (mostly empty): a new output under the same status reaches the store
   * at most every `checks.updateIntervalMs`. Consul's agent endpoints answer with them, as
   * Consul's agent answers with its local state.
   */
  unwrittenCheckStates(id: string): ReadonlyMap<string, CheckState>;
  /** {@link unwrittenCheckStates} of this agent's node checks. */
  unwrittenNodeCheckStates(): ReadonlyMap<string, CheckState>;
  kvGet(key: string): KvEntry | undefined;
  /** KV entries under `prefix`, in key order. */
  kvList(prefix: string): KvEntry[];
}

/**
 * Watches on the catalog: blocking queries and streams, woken once per published change.
 *
 * Callers: the front ends, once per blocking request or stream. Waits MUST NOT reject; they
 * resolve at the change, the deadline, cancellation or shutdown, whichever comes first.
 */
export interface CatalogWatcher {
  /**
   * A blocking query: resolves when `currentIndex()` passes `minIndex` (at once when it already
   * has, or when `minIndex` is 0), or after `waitMs` (capped, plus a small jitter).
   */
  waitForChange(
    topic: Topic,
    minIndex: number,
    waitMs: number,
    currentIndex: () => number,
    cancellation?: WaitCancellation,
  ): Promise<void>;
  /**
   * Subscribes `sink` to a service (or, undefined, the whole catalog): a snapshot frame first,
   * written synchronously, then one frame per change. Answers the unsubscribe function.
   */
  subscribeStream(service: string | undefined, sink: StreamSink): () => void;
  /**
   * Resolves once the change at `index` has been sent to the watchers of `service`, with how many
   * were sent it.
   */
  notified(service: string, index: number): Promise<WatchersNotified>;
}

/**
 * Writes to the catalog. Each is async, resolves once the change is committed and applied (a
 * read after it sees it), and rejects with a MeshError (validation, not found, conflict, store
 * unavailable). Writes to one instance id are serialised. Callers: request handlers and
 * registration sources; the control plane MUST NOT write service state.
 */
export interface CatalogWriter {
  /** Registers or updates an instance (idempotent); 409-coded when the id is another service's. */
  register(
    input: ParsedRegistration,
    defaults?: { source?: RegistrationSource; managedBy?: string },
  ): Promise<{ index: number; instance: InstanceDto; changed: boolean }>;
  /** Removes an instance; answers whether it existed. */
  deregister(id: string): Promise<{ index: number; deleted: boolean }>;
  /** A heartbeat for the instance's TTL checks (with `checkId`, that check only). */
  heartbeat(
    id: string,
    status?: CheckStatus,
    output?: string,
    checkId?: string,
  ): Promise<{ index: number; status: InstanceStatus }>;
  /** A heartbeat for one TTL check of this agent's node. */
  heartbeatNodeCheck(checkId: string, status: CheckStatus, output: string): Promise<void>;
  /** Replaces an instance's checks with `edit(current)`; `edit` MUST be pure (it may run again). */
  updateChecks(
    id: string,
    edit: (checks: readonly CheckDefinition[]) => readonly CheckDefinition[],
  ): Promise<{ index: number; instance: InstanceDto }>;
  /** Replaces this agent's node checks with `edit(current)`; `edit` MUST be pure. */
  updateNodeChecks(
    edit: (checks: readonly CheckDefinition[]) => readonly CheckDefinition[],
  ): Promise<{ index: number }>;
  /** Puts one instance in or out of maintenance. */
  setMaintenance(
    id: string,
    enabled: boolean,
    reason: string,
  ): Promise<{ index: number; instance: InstanceDto }>;
  /** Puts the whole agent in or out of maintenance. */
  setAgentMaintenance(enabled: boolean, reason: string): Promise<{ index: number }>;
  /** Makes the instances `set` owns match `inputs` (declarative apply). */
  apply(
    set: string,
    inputs: readonly ParsedRegistration[],
    source?: RegistrationSource,
  ): Promise<ApplyResponse>;
  /** Puts a KV value (`cas`: only if the key's modify index is that, 0 = absent). */
  kvPut(
    key: string,
    value: Uint8Array,
    options?: { flags?: number; cas?: number },
  ): Promise<{ ok: boolean; index: number }>;
  /** Deletes a key, or every key under a prefix with `recursive`. */
  kvDelete(
    key: string,
    options?: { recursive?: boolean; cas?: number },
  ): Promise<{ ok: boolean; index: number }>;
  /**
   * Runs KV and instance ops all or nothing in one commit; answers the failed ops (nothing
   * applied) when a condition does not hold. Reads see the txn's earlier writes.
   */
  txn(ops: readonly TxnOp[]): Promise<TxnOutcome>;
  /**
   * The agent's own replicated keys (reserved KV): the Consul adapter keeps its user events and
   * prepared queries there, so every agent of a cluster sees them.
   */
  readonly reservedKv: ReservedKv;
}

/**
 * Consul's lock sessions and the KV locks they hold (registry-sessions.ts has the rules). Reads
 * follow {@link CatalogReader}'s contract; writes {@link CatalogWriter}'s. `/v1/txn`'s lock,
 * unlock and check-session verbs follow the same rules in registry-txn.ts (the lock delay
 * through the sessions' `lockDelayed`).
 */
export interface SessionCatalog {
  /** The index of the last session created or ended (never 0); the `session` topic's. */
  readonly sessionIndex: number;
  session(id: string): StoredSession | undefined;
  /** Every session, by id. */
  sessions(): StoredSession[];
  /**
   * Creates a session (its id is a new UUID). The caller validated node and checks; a node
   * check's `instanceId` is filled in (the node's reserved check instance).
   */
  createSession(input: SessionInput): Promise<{ session: StoredSession; index: number }>;
  /** Ends a session, releasing or deleting its keys (unknown ids: nothing happens). */
  destroySession(id: string): Promise<{ index: number }>;
  /** Restarts a TTL session's deadline; throws SESSION_NOT_FOUND. */
  renewSession(id: string): Promise<StoredSession>;
  /**
   * Takes (or, held by `session` already, updates) a key's lock, writing `value`; ok false when
   * another session holds it or its lock delay runs. Throws SESSION_NOT_FOUND.
   */
  kvAcquire(
    key: string,
    value: Uint8Array,
    session: string,
    flags?: number,
  ): Promise<{ ok: boolean; index: number }>;
  /** Releases a key's lock held by `session`, writing `value`; ok false when it does not hold it. */
  kvRelease(
    key: string,
    value: Uint8Array,
    session: string,
    flags?: number,
  ): Promise<{ ok: boolean; index: number }>;
}

/**
 * The registry contract: what the front ends see of the catalog and of the mesh resources (the
 * `Registry` implements it; its view, watch hub and stream fan-out stay behind it). A read-only
 * consumer (the control plane) takes `CatalogReader & CatalogWatcher & MeshCatalogReader`.
 */
export interface CatalogFacade
  extends
    CatalogReader,
    CatalogWatcher,
    CatalogWriter,
    MeshCatalogReader,
    MeshCatalogWriter,
    SessionCatalog {}
