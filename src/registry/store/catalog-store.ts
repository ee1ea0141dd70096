/**
 * @module CatalogStore: the storage contract every backend (memory, sqlite, etcd) implements.
 *
 * The store is the source of truth; the registry keeps a materialised view fed only by the
 * store's events. That is etcd's model (revisions, one watch stream per agent) and it works the
 * same for the embedded stores, which emit their events right after each commit.
 */
import type { CheckState, Instance, KvEntry, Session } from '../../core/types.js';
import type {
  MeshResource,
  MeshResourceKey,
  StoredMeshResource,
} from '../../protocol/mesh/resource.js';

/** One operation in a commit. */
export type StoreOp =
  | { readonly op: 'put-instance'; readonly instance: Instance }
  | { readonly op: 'delete-instance'; readonly id: string }
  | { readonly op: 'put-check-state'; readonly state: CheckState }
  | {
      readonly op: 'kv-put';
      readonly key: string;
      readonly value: Uint8Array;
      readonly flags: number;
      /** Check-and-set: 0 = only if absent; N = only if the key's modifyIndex is N. */
      readonly cas?: number;
      /**
       * A lock change (Consul acquire / release): the key's holder after the put (undefined:
       * unlocked) and its lock index. Without it the put keeps the key's holder and lock index
       * (a plain put of a locked key leaves it locked, as in Consul). A holder that is not a
       * stored session fails the commit.
       */
      readonly lock?: { readonly session: string | undefined; readonly lockIndex: number };
    }
  | {
      readonly op: 'kv-delete';
      readonly key: string;
      /** Delete every key with this prefix. */
      readonly recursive?: boolean;
      /** Check-and-set on the key's modifyIndex (not with recursive). */
      readonly cas?: number;
    }
  /**
   * A condition only (it writes nothing): the commit fails unless the key's modifyIndex is
   * `index` (0: unless the key is absent). A transaction's check-index and check-not-exists, and
   * the guard that what it read is still what the store holds.
   */
  | { readonly op: 'kv-check'; readonly key: string; readonly index: number }
  /** Creates or replaces a mesh resource (keyed by `meshResourceKey`); keeps its createIndex. */
  | { readonly op: 'put-mesh-resource'; readonly resource: MeshResource }
  | { readonly op: 'delete-mesh-resource'; readonly key: MeshResourceKey }
  /** Creates a session (sessions never change; a put of a stored id replaces it). */
  | { readonly op: 'put-session'; readonly session: Session }
  /**
   * Ends a session (destroy, TTL lapse, a bound check critical): in the same commit, every key it
   * holds is released (`behavior: release`: the key stays, unlocked) or deleted (`delete`).
   */
  | { readonly op: 'delete-session'; readonly id: string };

/** A change the store applied, in index order. */
export type StoreEvent =
  | {
      readonly type: 'instance-put';
      readonly index: number;
      readonly instance: Instance;
      readonly createIndex: number;
    }
  | { readonly type: 'instance-delete'; readonly index: number; readonly id: string }
  | { readonly type: 'check-state'; readonly index: number; readonly state: CheckState }
  | { readonly type: 'kv-put'; readonly index: number; readonly entry: KvEntry }
  | { readonly type: 'kv-delete'; readonly index: number; readonly key: string }
  | {
      readonly type: 'mesh-put';
      readonly index: number;
      readonly resource: MeshResource;
      readonly createIndex: number;
    }
  | { readonly type: 'mesh-delete'; readonly index: number; readonly key: MeshResourceKey }
  | {
      readonly type: 'session-put';
      readonly index: number;
      readonly session: Session;
      readonly createIndex: number;
    }
  /**
   * A session ended. Its keys' releases (kv-put, without `session`) and deletions (kv-delete)
   * come in the same batch, after it.
   */
  | { readonly type: 'session-delete'; readonly index: number; readonly id: string };

/** A session as stored. Sessions never change: its modify index is its create index. */
export interface StoredSession {
  readonly session: Session;
  readonly createIndex: number;
}

export interface StoredInstance {
  readonly instance: Instance;
  readonly createIndex: number;
  /** The last index that changed the instance or one of its check states. */
  readonly modifyIndex: number;
}

/** Everything the store holds, at `index`. */
export interface StoreSnapshot {
  /** The store's current index; never 0 (an empty store answers 1). */
  readonly index: number;
  readonly instances: readonly StoredInstance[];
  readonly checkStates: readonly CheckState[];
  readonly kv: readonly KvEntry[];
  /** Mesh resources, in no promised order. */
  readonly meshResources: readonly StoredMeshResource[];
  /** Sessions, in no promised order. */
  readonly sessions: readonly StoredSession[];
}

export interface CommitResult {
  /**
   * False when a check-and-set condition failed; then nothing in the commit was applied and
   * `index` is the current index.
   */
  readonly ok: boolean;
  /** The index the commit was applied at (all its events carry it). */
  readonly index: number;
}

export type StoreListener = (events: readonly StoreEvent[]) => void;

/**
 * TTL deadlines kept by the store itself (etcd leases), shared by every agent: a heartbeat to any
 * agent refreshes them, and they expire even when the agent an instance registered through is
 * gone. A store offers this only when several agents share it.
 *
 * Contract: a `put-instance` commit arms a deadline of `ttlMs` for each TTL check that is new or
 * whose TTL changed; a changed or removed check, or a deleted instance, drops its deadline.
 */
export interface StoreTtlLeases {
  /**
   * Restarts the deadlines of every TTL check of the instance (or only `checkId`'s); re-arms
   * those that already expired. Rejects with MESHWORK_ERR_STORE_UNAVAILABLE when the store
   * cannot be reached.
   */
  keepAlive(instanceId: string, checkId?: string): Promise<void>;
  /** Arms a fresh deadline for one check whose deadline passed (no-op if one is armed). */
  renew(instanceId: string, checkId: string): Promise<void>;
  /** Whether the check's deadline is armed, as last seen (cheap, local). */
  alive(instanceId: string, checkId: string): boolean;
  /**
   * Subscribes to expiries: called once per deadline that passed without a keep-alive, on every
   * agent. Returns an unsubscribe function.
   */
  onExpired(listener: (instanceId: string, checkId: string) => void): () => void;
}

/**
 * Session TTLs kept by the store itself (etcd leases), shared by every agent: a renew through any
 * agent keeps the session, and it lapses even when the agent it was created through is gone. A
 * store offers this only when several agents share it; otherwise the registry times TTLs.
 *
 * Contract: a `put-session` of a session with a TTL arms a deadline of twice its TTL (Consul's
 * grace); `delete-session` drops it.
 */
export interface StoreSessionLeases {
  /**
   * Restarts the session's deadline. Resolves false when it has no live deadline (it lapsed, or
   * the session is gone). Rejects with MESHWORK_ERR_STORE_UNAVAILABLE when the store cannot be
   * reached.
   */
  renew(id: string): Promise<boolean>;
  /** Whether the session's deadline is armed, as last seen (cheap, local). */
  alive(id: string): boolean;
  /** Subscribes to lapses: called once per deadline that passed, on every agent. */
  onExpired(listener: (id: string) => void): () => void;
}

/**
 * Durable storage for the catalog and KV.
 *
 * Contract:
 * - `open()` MUST be called once before anything else; it resolves with a full snapshot, and
 *   listeners receive every event after that snapshot's index, in index order, exactly once.
 * - `commit(ops)` applies all ops atomically at one new index, greater than the index of every
 *   commit that resolved before it was called (indexes are never 0 and never go back).
 *   Concurrent commits are in no promised order, and MAY share an index: a store MAY group them
 *   into one transaction (the etcd store does: its index is etcd's revision, one per
 *   transaction). Sequential commits always get distinct, increasing indexes. A commit larger
 *   than the store's transaction limit (etcd: 128 operations) MAY be applied in consecutive
 *   parts, each at its own index, the result carrying the last; it is then not atomic. It MUST NOT resolve before the commit is durable
 *   (for durable stores) AND the events for it were delivered to listeners, so a caller that
 *   awaits it reads its own write from the view. A commit whose ops change nothing (deleting an
 *   absent instance or key) still succeeds; it MAY skip allocating an index.
 * - A `kv-put` or `kv-delete` with `cas`, or a `kv-check`, that does not hold makes the whole
 *   commit fail with `ok: false` and no events. A commit of only `kv-check`s that hold is a
 *   no-op commit. So does a `kv-put` whose `lock.session` is not a stored session when the
 *   commit is applied (it fails: a session ended meanwhile): no lock is ever held by a session
 *   that is gone.
 * - KV entries carry `session` (while locked) and `lockIndex` (once ever locked). A `kv-put`
 *   without `lock` keeps both; a `kv-delete` removes the entry, locked or not (as Consul).
 * - A `delete-session` emits `session-delete`, then releases every key the session holds (a
 *   `kv-put` event of the entry without `session`, same value, flags and lock index) or, for a
 *   session with `behavior: delete`, deletes them (`kv-delete` events), all at the commit's
 *   index. Deleting an absent session changes nothing. Lock delays are not the store's: the
 *   registry keeps them (as Consul's leader keeps them in memory).
 * - Deleting an instance deletes its check states; no separate events are sent for them.
 * - A `put-mesh-resource` of a resource deep-equal to the stored one changes nothing (no event;
 *   a commit of only such ops is a no-op commit). A put of a stored key keeps its createIndex.
 *   Deleting an absent resource changes nothing.
 * - Listeners MUST NOT throw; they are called synchronously, in order.
 * - `commit` rejects with MESHWORK_ERR_STORE_UNAVAILABLE (retryable) when the store cannot write.
 * - A store shared by several agents (etcd) MAY fail a commit with `ok: false` when an instance
 *   it puts changed since the listeners last heard of it (another agent wrote it meanwhile). It
 *   then resolves only after the listeners have heard of that change, so the caller re-reads its
 *   view and tries again. Likewise a commit with mesh-resource ops when any mesh resource changed
 *   since the listeners last heard (mesh writes are checked against the whole set, so they are
 *   serialised across agents). Single-writer stores never do this. Likewise a `kv-put` without
 *   `cas` when the key changed since (it must keep a lock it has not heard of), a `kv-put` whose
 *   `lock.session` made an acquire since, and a `delete-session` when one of the keys it
 *   releases changed, or its session acquired a key, since.
 */
export interface CatalogStore {
  /** `memory`, `sqlite`, `etcd`. */
  readonly kind: string;
  /**
   * Whether the store can take writes now (false while a remote backend is unreachable; reads
   * are served from the registry's view meanwhile). MUST be cheap: readiness probes call it.
   */
  available(): boolean;
  /**
   * Why `available()` is false (e.g. "disk full"), for the readiness answer; undefined while
   * available. MUST be cheap. Optional: without it readiness just says "not ready".
   */
  unavailableReason?(): string | undefined;
  /** Present when TTL deadlines live in the store (shared by agents); see {@link StoreTtlLeases}. */
  readonly ttlLeases?: StoreTtlLeases;
  /** Present when session TTLs live in the store (shared by agents); see {@link StoreSessionLeases}. */
  readonly sessionLeases?: StoreSessionLeases;
  open(): Promise<StoreSnapshot>;
  subscribe(listener: StoreListener): () => void;
  commit(ops: readonly StoreOp[]): Promise<CommitResult>;
  close(): Promise<void>;
}
