/** @module SqliteCatalogStore: the embedded durable store (SQLite, WAL, group commit). */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Registry as PromRegistry } from 'prom-client';
import { errors, isMeshError } from '../../../core/errors.js';
import { silentLogger, type Logger } from '../../../core/logger.js';
import type {
  CatalogStore,
  CommitResult,
  StoreEvent,
  StoreListener,
  StoreOp,
  StoreSnapshot,
} from '../catalog-store.js';
import { StoreState } from '../store-state.js';
import { IndexMarker } from './index-marker.js';
import { IndexMarkerScheduler } from './index-marker-scheduler.js';
import {
  catalogOpenError,
  isNewCatalog,
  loadCatalogState,
  SCHEMA,
} from './sqlite-catalog-schema.js';
import { prepareCatalogWriter, type CatalogBatchWriter } from './sqlite-catalog-writer.js';
import { SqliteStoreHealth } from './sqlite-store-health.js';

/** Options of {@link createSqliteCatalogStore}. */
export interface SqliteCatalogStoreOptions {
  /** Directory holding `catalog.db` and `catalog.index`; created if missing. */
  readonly dataDir: string;
  readonly logger?: Logger;
  /** Where the `meshwork_store_*` metrics are registered (a private registry when omitted). */
  readonly metrics?: PromRegistry;
  /**
   * Open a store that is behind `catalog.index` (commits were lost), or whose `catalog.index` is
   * unreadable, instead of refusing with MESHWORK_ERR_STORE_CORRUPT. The loss is logged and the
   * index continues from the marker's, so it never goes back.
   */
  readonly acceptDataLoss?: boolean;
  /** `catalog.index` is rewritten at most this often while commits arrive. */
  readonly markerIntervalMs?: number;
  /** While writes fail, a trial write is made this often; the first that succeeds recovers. */
  readonly probeIntervalMs?: number;
}

/** Defaults of {@link SqliteCatalogStoreOptions}. */
export const DEFAULT_SQLITE_CATALOG_STORE_OPTIONS = Object.freeze({
  acceptDataLoss: false,
  markerIntervalMs: 1_000,
  probeIntervalMs: 1_000,
});

interface PendingCommit {
  readonly ops: readonly StoreOp[];
  readonly resolve: (result: CommitResult) => void;
  readonly reject: (err: unknown) => void;
}

interface Opened {
  readonly db: Database.Database;
  readonly write: CatalogBatchWriter;
  /** A small real write transaction: the degraded store's probe. */
  readonly probe: () => void;
}

/**
 * Keeps the catalog in `<dataDir>/catalog.db` and an in-memory {@link StoreState} mirror that
 * decides every commit; the database is the durable copy, read in full only at `open()`.
 *
 * Group commit: `commit()` only queues. The queue is flushed on `setImmediate`, so every commit
 * issued in the same tick, or while the previous batch was being written (better-sqlite3 blocks
 * the event loop meanwhile), is written in one transaction and one fsync. Within a batch each
 * commit gets its own index and its own check-and-set verdict, in call order; events go to
 * listeners after the transaction, then the promises resolve.
 *
 * The file is locked exclusively while the store is open, so a second agent on the same data
 * directory fails at `open()` instead of writing behind this store's mirror.
 *
 * `catalog.index` ({@link IndexMarker}) holds an index known durable, rewritten off the hot path
 * (at most once per `markerIntervalMs`, and at close). `open()` refuses a store whose index is
 * below it, or a missing `catalog.db` beside it, with MESHWORK_ERR_STORE_CORRUPT, unless
 * `acceptDataLoss`.
 *
 * A write that fails in SQLite (disk full, I/O error) makes the store degraded: `available()`
 * is false, it is logged once, and a trial write every `probeIntervalMs` (or any commit that
 * succeeds) recovers it. Commits are still attempted meanwhile.
 *
 * @example
 * const store = createSqliteCatalogStore({ dataDir: '/var/lib/meshwork', logger });
 * const snapshot = await store.open();
 * store.subscribe((events) => view.apply(events));
 * await store.commit([{ op: 'put-instance', instance }]);
 */
export class SqliteCatalogStore implements CatalogStore {
  readonly kind = 'sqlite';
  /** Path of the database file. */
  readonly file: string;
  readonly #dataDir: string;
  readonly #log: Logger;
  readonly #marker: IndexMarker;
  readonly #acceptDataLoss: boolean;
  readonly #health: SqliteStoreHealth;
  readonly #markerScheduler: IndexMarkerScheduler;
  readonly #listeners = new Set<StoreListener>();
  #state = new StoreState();
  #opened: Opened | undefined;
  #closed = false;
  /** Set when the mirror could not be rebuilt after a failed write; every commit then fails. */
  #broken: unknown;
  #queue: PendingCommit[] = [];
  #flushScheduled: NodeJS.Immediate | undefined;
  #transactionsCommitted = 0;

  constructor(options: SqliteCatalogStoreOptions) {
    const defaults = DEFAULT_SQLITE_CATALOG_STORE_OPTIONS;
    this.#dataDir = options.dataDir;
    this.file = join(options.dataDir, 'catalog.db');
    this.#marker = new IndexMarker(join(options.dataDir, 'catalog.index'));
    this.#acceptDataLoss = options.acceptDataLoss ?? defaults.acceptDataLoss;
    this.#log = (options.logger ?? silentLogger).child({
      component: 'catalog-store',
      kind: 'sqlite',
    });
    this.#health = new SqliteStoreHealth({
      file: this.file,
      dataDir: this.#dataDir,
      log: this.#log,
      metrics: options.metrics ?? new PromRegistry(),
      probeIntervalMs: options.probeIntervalMs ?? defaults.probeIntervalMs,
      trialWrite: () => this.#opened?.probe,
      probeSucceeded: () => this.#writeSucceeded(this.#markerScheduler.durableIndex),
    });
    this.#markerScheduler = new IndexMarkerScheduler({
      marker: this.#marker,
      intervalMs: options.markerIntervalMs ?? defaults.markerIntervalMs,
      log: this.#log,
      health: this.#health,
      isClosed: () => this.#closed,
    });
  }

  /** Path of `catalog.index`, the last index known durable. */
  get markerFile(): string {
    return this.#marker.file;
  }

  /** Write transactions committed so far: one per batch that changed something. */
  get transactionsCommitted(): number {
    return this.#transactionsCommitted;
  }

  available(): boolean {
    return !this.#closed && this.#broken === undefined && this.#health.degraded === undefined;
  }

  unavailableReason(): string | undefined {
    // Closed is a shutdown, not a degraded store: readiness just says "not ready".
    if (this.#closed) return undefined;
    if (this.#broken !== undefined) return `${this.file} cannot be reloaded after a failed write`;
    const degraded = this.#health.degraded;
    if (degraded !== undefined) return `writes to ${this.file} fail: ${degraded}`;
    return undefined;
  }

  async open(): Promise<StoreSnapshot> {
    if (this.#closed) throw errors.storeUnavailable('store is closed');
    assert(this.#opened === undefined, 'open() MUST be called once');
    const markerIndex = this.#readMarker();
    try {
      await this.#openFile(markerIndex);
    } catch (err) {
      if (!this.#acceptDataLoss || !isMeshError(err) || err.details?.unreadable !== true) throw err;
      this.#moveAside(err);
      await this.#openFile(markerIndex);
    }
    const snapshot = this.#state.snapshot();
    this.#log.info(
      {
        file: this.file,
        index: snapshot.index,
        instances: snapshot.instances.length,
        keys: snapshot.kv.length,
      },
      'catalog store opened',
    );
    return snapshot;
  }

  /** Opens (or creates) `catalog.db`, checks it against the marker, loads the mirror. */
  async #openFile(markerIndex: number | undefined): Promise<void> {
    let db: Database.Database | undefined;
    try {
      // Checked before SQLite creates an empty file in its place (accepted: caught up below).
      if (markerIndex !== undefined && !this.#acceptDataLoss && !existsSync(this.file)) {
        this.#behindMarker('is missing', 1, markerIndex);
      }
      mkdirSync(this.#dataDir, { recursive: true });
      // timeout 0: once open we hold an exclusive lock, so a busy file means another process
      // owns it and waiting would not help.
      const conn = new Database(this.file, { timeout: 0 });
      db = conn;
      // EXCLUSIVE before WAL: the WAL index then lives in heap memory, not a -shm file, and the
      // lock taken on first access is held until close, so no other process can write behind
      // the mirror.
      conn.pragma('locking_mode = EXCLUSIVE');
      conn.pragma('journal_mode = WAL');
      // FULL: in WAL mode NORMAL may lose the last commits on power loss; FULL fsyncs every commit.
      conn.pragma('synchronous = FULL');
      // macOS fsync() does not flush the drive's cache; F_FULLFSYNC does (no-op elsewhere).
      conn.pragma('fullfsync = ON');
      const isNew = isNewCatalog(conn, this.file);
      const state = isNew ? new StoreState() : loadCatalogState(conn, this.file);
      const behind = markerIndex !== undefined && state.index < markerIndex;
      if (behind) this.#behindMarker(`is at index ${state.index}`, state.index, markerIndex);
      if (isNew) conn.transaction(() => conn.exec(SCHEMA))();
      const setIndex = conn.prepare<[number]>("UPDATE meta SET value = ? WHERE key = 'index'");
      if (behind) {
        // Indexes never go back: after a loss, the next commit follows the last durable one.
        setIndex.run(markerIndex);
        state.index = markerIndex;
      }
      this.#state = state;
      this.#opened = {
        db: conn,
        write: prepareCatalogWriter(conn),
        // Rewrites the index row: a real transaction (WAL frame, fsync) that changes nothing.
        probe: conn.transaction(() => setIndex.run(this.#state.index)),
      };
      // A new or pre-marker data directory (or an unreadable marker, accepted) gets one now.
      await this.#markerScheduler.opened(state.index, markerIndex);
    } catch (err) {
      db?.close();
      this.#opened = undefined;
      throw catalogOpenError(err, this.file);
    }
  }

  /** Accepting data loss: an unreadable `catalog.db` (and its WAL) is kept aside, not deleted. */
  #moveAside(err: unknown): void {
    const suffix = `.damaged-${Date.now()}`;
    for (const file of [this.file, `${this.file}-wal`, `${this.file}-shm`]) {
      if (existsSync(file)) renameSync(file, file + suffix);
    }
    this.#health.dataLossAccepted();
    this.#log.warn(
      { file: this.file, movedTo: this.file + suffix, err: (err as Error).message },
      'unreadable catalog.db moved aside (accept data loss); starting a new one',
    );
  }

  subscribe(listener: StoreListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  commit(ops: readonly StoreOp[]): Promise<CommitResult> {
    if (this.#closed) return Promise.reject(errors.storeUnavailable('store is closed'));
    if (this.#opened === undefined) {
      return Promise.reject(errors.storeUnavailable('store is not open'));
    }
    if (this.#broken !== undefined) {
      return Promise.reject(
        errors.storeUnavailable(`${this.file} failed; reopen the store`, this.#broken),
      );
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ ops, resolve, reject });
      this.#flushScheduled ??= setImmediate(() => this.#flush());
    });
  }

  /** Writes the pending commits, then closes the database. Later commits reject. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#flushScheduled !== undefined) clearImmediate(this.#flushScheduled);
    this.#flush();
    this.#listeners.clear();
    this.#health.stop();
    this.#markerScheduler.stop();
    if (this.#opened !== undefined) {
      this.#opened.db.close();
      this.#opened = undefined;
      await this.#markerScheduler.flush();
      this.#log.info({ file: this.file, index: this.#state.index }, 'catalog store closed');
    }
  }

  #flush(): void {
    this.#flushScheduled = undefined;
    const batch = this.#queue;
    const opened = this.#opened;
    if (batch.length === 0 || opened === undefined) return;
    this.#queue = [];

    // Decide every commit against the mirror first, in call order, so later commits in the batch
    // see earlier ones (check-and-set included). A failed write rebuilds the mirror from the file.
    const state = this.#state;
    const settled: { readonly commit: PendingCommit; readonly result: CommitResult }[] = [];
    const changes: StoreEvent[][] = [];
    for (const commit of batch) {
      if (!state.casHolds(commit.ops)) {
        settled.push({ commit, result: { ok: false, index: state.index } });
        continue;
      }
      const events = state.apply(commit.ops, state.index + 1);
      if (events.length > 0) changes.push(events);
      settled.push({ commit, result: { ok: true, index: state.index } });
    }

    if (changes.length > 0) {
      try {
        opened.write(changes, state.index);
      } catch (cause) {
        this.#health.writeFailed(cause, batch.length);
        this.#rebuildMirror(opened.db);
        const err = errors.storeUnavailable(`cannot write ${this.file}`, cause);
        for (const commit of batch) commit.reject(err);
        return;
      }
      this.#writeSucceeded(state.index);
      this.#transactionsCommitted += 1;
      for (const events of changes) for (const listener of this.#listeners) listener(events);
    }
    for (const { commit, result } of settled) commit.resolve(result);
  }

  /** After a commit SQLite returned from: the index is durable; a degraded store recovers. */
  #writeSucceeded(index: number): void {
    this.#markerScheduler.durable(index);
    this.#health.writeSucceeded();
  }

  /** The marker's index; an unreadable marker refuses the open unless data loss is accepted. */
  #readMarker(): number | undefined {
    try {
      return this.#marker.read();
    } catch (err) {
      if (!this.#acceptDataLoss) throw err;
      this.#health.dataLossAccepted();
      this.#log.warn(
        { file: this.#marker.file, err: (err as Error).message },
        'unreadable durable index marker ignored (accept data loss); rewriting it',
      );
      return undefined;
    }
  }

  /**
   * `catalog.db` is behind the marker: commits that were durable are gone. Refuses (throws
   * MESHWORK_ERR_STORE_CORRUPT) unless data loss is accepted; then logs the loss.
   */
  #behindMarker(what: string, storeIndex: number, markerIndex: number): void {
    const details = { file: this.file, markerFile: this.#marker.file, storeIndex, markerIndex };
    if (!this.#acceptDataLoss) {
      throw errors.storeCorrupt(
        `${this.file} ${what} but ${this.#marker.file} records index ${markerIndex} as ` +
          'durable: commits were lost (a damaged, truncated or replaced catalog.db or ' +
          'catalog.db-wal). Restore the data directory from a backup, or start with ' +
          '--accept-data-loss to go on without them (docs/operations.md, "Data and durability")',
        undefined,
        details,
      );
    }
    this.#health.dataLossAccepted();
    this.#log.warn(
      { ...details, lostIndexes: markerIndex - storeIndex },
      'catalog store behind its durable index marker: starting without the lost commits (accept data loss)',
    );
  }

  #rebuildMirror(db: Database.Database): void {
    try {
      this.#state = loadCatalogState(db, this.file);
      // The view already has the check states; the mirror only needs instances, KV and the index.
      this.#state.loadedCheckStates = [];
    } catch (err) {
      this.#broken = err;
      this.#log.error({ file: this.file, err }, 'catalog store cannot reload after a failed write');
    }
  }
}

/**
 * Creates the sqlite catalog store; nothing touches the disk until `open()`.
 *
 * @example
 * const store = createSqliteCatalogStore({ dataDir: '.meshwork/data' });
 */
export function createSqliteCatalogStore(options: SqliteCatalogStoreOptions): SqliteCatalogStore {
  return new SqliteCatalogStore(options);
}
