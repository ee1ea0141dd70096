/**
 * @module EtcdCatalogStore: the catalog in etcd, for cluster mode. The etcd revision is the index;
 * one watch per agent turns etcd's events into store events for every local watcher.
 */
import { Etcd3, type Watcher } from 'etcd3';
import { errors } from '../../../core/errors.js';
import { silentLogger, type Logger } from '../../../core/logger.js';
import type {
  CatalogStore,
  CommitResult,
  StoreEvent,
  StoreListener,
  StoreOp,
  StoreSessionLeases,
  StoreSnapshot,
  StoreTtlLeases,
} from '../catalog-store.js';
import { EtcdCommitPlanner, type Compare, type RequestOp } from './etcd-commit-planner.js';
import {
  EtcdEventDecoder,
  type EtcdKv,
  type KnownInstance,
  type KnownLocks,
  type KnownMesh,
} from './etcd-event-decoder.js';
import { EtcdGroupCommit, type TxnResult } from './etcd-group-commit.js';
import { etcdClientOptions, type EtcdConnection } from './etcd-connection.js';
import { EtcdKeyLayout, rangeEnd } from './etcd-key-layout.js';
import { EtcdSessionLeases } from './etcd-session-leases.js';
import { EtcdTtlLeases } from './etcd-ttl-leases.js';
import { withTimeout } from './with-timeout.js';

/** Options of {@link createEtcdCatalogStore}. */
export interface EtcdCatalogStoreOptions extends EtcdConnection {
  /** Every key lives under this prefix (several catalogs can share one etcd). */
  readonly prefix?: string;
  /** A commit that etcd has not answered in this long fails with STORE_UNAVAILABLE. */
  readonly commitTimeoutMs?: number;
  readonly logger?: Logger;
}

export const DEFAULT_ETCD_CATALOG_STORE_OPTIONS = Object.freeze({
  prefix: '/meshwork/',
  commitTimeoutMs: 5_000,
});

/**
 * The etcd store: it owns the client, the one watch and the revision it has delivered, and
 * whether etcd answers. Its parts: {@link EtcdKeyLayout} (where records live),
 * {@link EtcdCommitPlanner} (store ops to transactions), {@link EtcdGroupCommit} (commits
 * sharing transactions), {@link EtcdEventDecoder} (etcd key-values to records and events) and
 * {@link EtcdTtlLeases} (TTL deadlines as leases, offered as `ttlLeases`).
 */
export class EtcdCatalogStore implements CatalogStore {
  readonly kind = 'etcd';
  readonly ttlLeases: StoreTtlLeases;
  readonly sessionLeases: StoreSessionLeases;
  readonly #sessions: EtcdSessionLeases;
  readonly #client: Etcd3;
  readonly #layout: EtcdKeyLayout;
  readonly #timeoutMs: number;
  readonly #log: Logger;
  readonly #listeners = new Set<StoreListener>();
  readonly #ttl: EtcdTtlLeases;
  readonly #planner: EtcdCommitPlanner;
  readonly #groupCommit: EtcdGroupCommit;
  readonly #decoder: EtcdEventDecoder;
  #watcher: Watcher | undefined;
  #applied = 0;
  readonly #waiters: { revision: number; resolve: () => void }[] = [];
  #closed = false;
  /** False from a failed commit until etcd answers again. */
  #reachable = true;
  /**
   * The watch is streaming. Writes wait for their watch event (read-your-writes), so without a
   * watch the agent is not ready even when etcd answers.
   */
  #watchConnected = false;

  constructor(options: EtcdCatalogStoreOptions) {
    if (options.endpoints.length === 0)
      throw errors.validation('endpoints', 'give at least one etcd endpoint');
    this.#layout = new EtcdKeyLayout(options.prefix ?? DEFAULT_ETCD_CATALOG_STORE_OPTIONS.prefix);
    this.#timeoutMs = options.commitTimeoutMs ?? DEFAULT_ETCD_CATALOG_STORE_OPTIONS.commitTimeoutMs;
    this.#log = (options.logger ?? silentLogger).child({
      component: 'catalog-store',
      kind: 'etcd',
    });
    this.#client = new Etcd3(etcdClientOptions(options));
    /** What the watch has delivered about each instance, to shape and guard commits. */
    const known = new Map<string, KnownInstance>();
    /** What the watch has delivered about the mesh resources, likewise. */
    const mesh: KnownMesh = { generation: 0, resources: new Map() };
    /** What the watch has delivered about the sessions and the KV entries' locks, likewise. */
    const locks: KnownLocks = { sessions: new Map(), kv: new Map() };
    this.#decoder = new EtcdEventDecoder(this.#layout, known, mesh, locks, this.#log);
    this.#sessions = new EtcdSessionLeases({
      client: this.#client,
      layout: this.#layout,
      timeoutMs: this.#timeoutMs,
      locks,
      isClosed: () => this.#closed,
      setReachable: (reachable, err) => this.#setReachable(reachable, err),
    });
    this.sessionLeases = this.#sessions;
    this.#ttl = new EtcdTtlLeases({
      client: this.#client,
      layout: this.#layout,
      timeoutMs: this.#timeoutMs,
      known,
      appliedAt: (revision) => this.#appliedAt(revision),
      isClosed: () => this.#closed,
      setReachable: (reachable, err) => this.#setReachable(reachable, err),
    });
    this.ttlLeases = this.#ttl;
    this.#planner = new EtcdCommitPlanner({
      layout: this.#layout,
      known,
      mesh,
      locks,
      leaseAlive: (id, checkId) => this.#ttl.alive(id, checkId),
    });
    this.#groupCommit = new EtcdGroupCommit({
      txn: (compare, success) => this.#txn(compare, success),
      appliedAt: (revision) => this.#appliedAt(revision),
      applied: () => this.#applied,
    });
  }

  async open(): Promise<StoreSnapshot> {
    const prefix = Buffer.from(this.#layout.prefix);
    let res;
    try {
      res = await this.#client.kv.range({ key: prefix, range_end: rangeEnd(prefix) });
    } catch (err) {
      throw errors.storeUnavailable(`etcd unreachable: ${(err as Error).message}`, err);
    }
    const revision = Number(res.header.revision);
    const kvs = res.kvs as EtcdKv[];
    this.#ttl.load(kvs);
    this.#sessions.load(kvs);
    const snapshot = this.#decoder.snapshot(kvs, revision);
    this.#applied = revision;
    await this.#startWatch(revision + 1);
    this.#log.info(
      {
        revision,
        instances: snapshot.instances.length,
        keys: snapshot.kv.length,
        meshResources: snapshot.meshResources.length,
      },
      'catalog store opened',
    );
    return snapshot;
  }

  available(): boolean {
    return !this.#closed && this.#reachable && this.#watchConnected;
  }

  subscribe(listener: StoreListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Plans the ops as etcd transactions (in consecutive parts when too large for one; see
   * {@link EtcdCommitPlanner.split}), grants the leases of the TTL deadlines they arm, and hands
   * each part to group commit.
   */
  async commit(ops: readonly StoreOp[]): Promise<CommitResult> {
    if (this.#closed) throw errors.storeUnavailable('store is closed');
    let result: CommitResult = { ok: true, index: Math.max(this.#applied, 1) };
    for (const chunk of this.#planner.split(ops)) {
      result = await this.#commitChunk(chunk);
      if (!result.ok) return result;
    }
    return result;
  }

  async #commitChunk(ops: readonly StoreOp[]): Promise<CommitResult> {
    const plan = this.#planner.plan(ops);
    if (plan.success.length === 0) return { ok: true, index: Math.max(this.#applied, 1) };
    try {
      for (const d of plan.deadlines) {
        const lease = await this.#ttl.grant(d.ttlMs);
        plan.success.push({
          request_put: { key: Buffer.from(d.key), value: Buffer.from(''), lease },
        });
        plan.puts++;
      }
    } catch (err) {
      throw this.#unreachable(err);
    }
    return this.#groupCommit.commit(plan);
  }

  /** One transaction, with the commit timeout; a failure to reach etcd is STORE_UNAVAILABLE. */
  async #txn(compare: Compare[], success: RequestOp[]): Promise<TxnResult> {
    let res: TxnResult;
    try {
      res = (await withTimeout(
        this.#client.kv.txn({ compare, success, failure: [] }),
        this.#timeoutMs,
      )) as TxnResult;
    } catch (err) {
      throw this.#unreachable(err);
    }
    this.#setReachable(true);
    return res;
  }

  #unreachable(err: unknown): Error {
    this.#setReachable(false, err);
    return errors.storeUnavailable(
      `etcd did not commit: ${(err as Error).message}; reads are served from the last-known catalog`,
      err,
    );
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.clear();
    this.#ttl.close();
    this.#sessions.close();
    await this.#watcher?.cancel().catch(() => undefined);
    this.#client.close();
    for (const w of this.#waiters.splice(0)) w.resolve();
  }

  // ---- reachability ------------------------------------------------------------------------

  #setReachable(reachable: boolean, err?: unknown): void {
    if (reachable === this.#reachable) return;
    this.#reachable = reachable;
    if (reachable) {
      this.#log.info({ applied: this.#applied }, 'etcd reachable again');
      return;
    }
    this.#log.warn(
      { err: (err as Error | undefined)?.message },
      'etcd unreachable; refusing writes',
    );
    this.#probeUntilReachable();
  }

  /** While unreachable, asks etcd once a second for one key, and recovers on the first answer. */
  #probeUntilReachable(): void {
    const probe = (): void => {
      if (this.#closed || this.#reachable) return;
      withTimeout(
        this.#client.kv.range({ key: Buffer.from(this.#layout.prefix), limit: 1 }),
        1_000,
      ).then(
        () => this.#setReachable(true),
        () => setTimeout(probe, 1_000).unref(),
      );
    };
    setTimeout(probe, 1_000).unref();
  }

  // ---- the watch ---------------------------------------------------------------------------

  #appliedAt(revision: number): Promise<void> {
    if (this.#applied >= revision || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ revision, resolve }));
  }

  async #startWatch(fromRevision: number): Promise<void> {
    const watcher = await this.#client
      .watch()
      .prefix(this.#layout.prefix)
      .startRevision(String(fromRevision))
      .create();
    this.#watcher = watcher;
    watcher.on('data', (res) => this.#onWatch(res.events as { type: string; kv: EtcdKv }[]));
    watcher.on('error', (err) => this.#log.error({ err: err.message }, 'etcd watch failed'));
    this.#watchConnected = true;
    watcher.on('disconnected', (err) => {
      if (this.#watchConnected) this.#log.warn({ err: err.message }, 'etcd watch lost; resuming');
      this.#watchConnected = false;
    });
    watcher.on('connected', () => {
      if (!this.#watchConnected) this.#log.info({ applied: this.#applied }, 'etcd watch resumed');
      this.#watchConnected = true;
    });
  }

  #onWatch(raw: readonly { type: string; kv: EtcdKv }[]): void {
    // Events of one txn share a revision: deliver them together, revision by revision.
    const expired: [string, string][] = [];
    const sessionsLapsed: string[] = [];
    let batch: StoreEvent[] = [];
    let batchRevision = 0;
    const flush = (): void => {
      if (batch.length > 0) for (const l of this.#listeners) l(batch);
      if (batchRevision > this.#applied) this.#applied = batchRevision;
      batch = [];
    };
    for (const e of raw) {
      const revision = Number(e.kv.mod_revision);
      if (revision !== batchRevision) {
        flush();
        batchRevision = revision;
      }
      const rest = this.#layout.rest(e.kv.key);
      if (rest.startsWith('t/')) {
        const lapsed = this.#ttl.follow(e.type, rest.slice(2), e.kv);
        if (lapsed !== undefined) expired.push(lapsed);
        continue;
      }
      if (rest.startsWith('e/')) {
        const session = this.#sessions.follow(e.type, rest.slice(2), e.kv);
        if (session !== undefined) sessionsLapsed.push(session);
        continue;
      }
      const event = this.#decoder.event(e.type, e.kv, revision);
      if (event !== undefined) batch.push(event);
    }
    flush();
    this.#ttl.announceExpired(expired);
    this.#sessions.announceExpired(sessionsLapsed);
    const ready = this.#waiters.filter((w) => w.revision <= this.#applied);
    if (ready.length > 0) {
      const rest = this.#waiters.filter((w) => w.revision > this.#applied);
      this.#waiters.length = 0;
      this.#waiters.push(...rest);
      for (const w of ready) w.resolve();
    }
  }
}

/** The etcd store of cluster mode; nothing is read until `open()`. */
export function createEtcdCatalogStore(options: EtcdCatalogStoreOptions): EtcdCatalogStore {
  return new EtcdCatalogStore(options);
}
