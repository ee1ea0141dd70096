/** @module SqliteCatalogStore: the embedded durable store (SQLite, WAL, group commit). */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, renameSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Counter, Gauge, Registry as PromRegistry } from 'prom-client';
import { errors, isMeshError } from '../../../core/errors.js';
import { silentLogger, type Logger } from '../../../core/logger.js';
import type { CheckState, Instance } from '../../../core/types.js';
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

/** A probe recovers only with at least this much free space in the data directory. */
const PROBE_MIN_FREE_BYTES = 1024 * 1024;

/** The schema this code reads and writes; any other version in the file is refused. */
const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE instances (
  id TEXT PRIMARY KEY,
  service TEXT NOT NULL,
  instance TEXT NOT NULL,
  create_index INTEGER NOT NULL,
  modify_index INTEGER NOT NULL
);
CREATE TABLE check_states (
  instance_id TEXT NOT NULL,
  check_id TEXT NOT NULL,
  state TEXT NOT NULL,
  PRIMARY KEY (instance_id, check_id)
);
CREATE TABLE kv (
  key TEXT PRIMARY KEY,
  value BLOB NOT NULL,
  flags INTEGER NOT NULL,
  create_index INTEGER NOT NULL,
  modify_index INTEGER NOT NULL
);
INSERT INTO meta (key, value) VALUES ('schema_version', ${SCHEMA_VERSION}), ('index', 1);
`;

interface PendingCommit {
  readonly ops: readonly StoreOp[];
  readonly resolve: (result: CommitResult) => void;
  readonly reject: (err: unknown) => void;
}

interface Statements {
  readonly putInstance: Database.Statement<[string, string, string, number, number]>;
  /** Drops the states of checks no longer in the instance (second param: JSON array of ids). */
  readonly dropStaleChecks: Database.Statement<[string, string]>;
  readonly deleteInstance: Database.Statement<[string]>;
  readonly deleteChecksOf: Database.Statement<[string]>;
  readonly putCheckState: Database.Statement<[string, string, string]>;
  readonly touchInstance: Database.Statement<[number, string]>;
  readonly putKv: Database.Statement<[string, Buffer, number, number, number]>;
  readonly deleteKv: Database.Statement<[string]>;
  readonly setIndex: Database.Statement<[number]>;
}

interface Opened {
  readonly db: Database.Database;
  readonly write: (changes: readonly (readonly StoreEvent[])[], index: number) => void;
  /** A small real write transaction: the degraded store's probe. */
  readonly probe: () => void;
}

interface StoreMetrics {
  readonly writeErrors: Counter;
  readonly degraded: Gauge;
  readonly dataLossAccepted: Gauge;
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
  readonly #markerIntervalMs: number;
  readonly #probeIntervalMs: number;
  readonly #metrics: StoreMetrics;
  readonly #listeners = new Set<StoreListener>();
  #state = new StoreState();
  #opened: Opened | undefined;
  #closed = false;
  /** Set when the mirror could not be rebuilt after a failed write; every commit then fails. */
  #broken: unknown;
  #queue: PendingCommit[] = [];
  #flushScheduled: NodeJS.Immediate | undefined;
  #transactionsCommitted = 0;
  /** The index of the last commit SQLite returned from (durable), and the marker's. */
  #durableIndex = 0;
  #markerIndex = 0;
  #markerTimer: NodeJS.Timeout | undefined;
  #markerWriting: Promise<void> | undefined;
  #markerLastWriteMs = -Infinity;
  #markerFailing = false;
  /** Why writes fail (disk full, I/O error), while they do. */
  #degraded: string | undefined;
  #probeTimer: NodeJS.Timeout | undefined;

  constructor(options: SqliteCatalogStoreOptions) {
    const defaults = DEFAULT_SQLITE_CATALOG_STORE_OPTIONS;
    this.#dataDir = options.dataDir;
    this.file = join(options.dataDir, 'catalog.db');
    this.#marker = new IndexMarker(join(options.dataDir, 'catalog.index'));
    this.#acceptDataLoss = options.acceptDataLoss ?? defaults.acceptDataLoss;
    this.#markerIntervalMs = options.markerIntervalMs ?? defaults.markerIntervalMs;
    this.#probeIntervalMs = options.probeIntervalMs ?? defaults.probeIntervalMs;
    this.#log = (options.logger ?? silentLogger).child({
      component: 'catalog-store',
      kind: 'sqlite',
    });
    const registers = [options.metrics ?? new PromRegistry()];
    this.#metrics = {
      writeErrors: new Counter({
        name: 'meshwork_store_write_errors_total',
        help: 'Catalog write transactions that failed (disk full, I/O error).',
        registers,
      }),
      degraded: new Gauge({
        name: 'meshwork_store_degraded',
        help: '1 while writes to catalog.db fail (the agent is not ready), else 0.',
        registers,
      }),
      dataLossAccepted: new Gauge({
        name: 'meshwork_store_data_loss_accepted',
        help: '1 when this start accepted a store behind catalog.index (--accept-data-loss).',
        registers,
      }),
    };
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
    return !this.#closed && this.#broken === undefined && this.#degraded === undefined;
  }

  unavailableReason(): string | undefined {
    // Closed is a shutdown, not a degraded store: readiness just says "not ready".
    if (this.#closed) return undefined;
    if (this.#broken !== undefined) return `${this.file} cannot be reloaded after a failed write`;
    if (this.#degraded !== undefined) return `writes to ${this.file} fail: ${this.#degraded}`;
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
      const isNew = this.#isNew(conn);
      const state = isNew ? new StoreState() : this.#load(conn);
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
        write: this.#prepareWrite(conn),
        // Rewrites the index row: a real transaction (WAL frame, fsync) that changes nothing.
        probe: conn.transaction(() => setIndex.run(this.#state.index)),
      };
      this.#durableIndex = state.index;
      // A new or pre-marker data directory (or an unreadable marker, accepted) gets one now.
      if (markerIndex === undefined) await this.#writeMarker();
      else this.#markerIndex = markerIndex;
    } catch (err) {
      db?.close();
      this.#opened = undefined;
      throw this.#openError(err);
    }
  }

  /** Accepting data loss: an unreadable `catalog.db` (and its WAL) is kept aside, not deleted. */
  #moveAside(err: unknown): void {
    const suffix = `.damaged-${Date.now()}`;
    for (const file of [this.file, `${this.file}-wal`, `${this.file}-shm`]) {
      if (existsSync(file)) renameSync(file, file + suffix);
    }
    this.#metrics.dataLossAccepted.set(1);
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
    clearTimeout(this.#probeTimer);
    clearTimeout(this.#markerTimer);
    this.#markerTimer = undefined;
    if (this.#opened !== undefined) {
      this.#opened.db.close();
      this.#opened = undefined;
      await this.#markerWriting;
      if (this.#durableIndex > this.#markerIndex) await this.#writeMarker();
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
        this.#writeFailed(cause, batch.length);
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

  /**
   * A write SQLite refused (disk full, I/O error) makes the store degraded: logged once per
   * episode, not once per failed commit. Any other failure is a bug and is logged each time.
   */
  #writeFailed(cause: unknown, commits: number): void {
    this.#metrics.writeErrors.inc();
    const code = (cause as { code?: unknown } | null)?.code;
    if (typeof code !== 'string' || !code.startsWith('SQLITE_')) {
      this.#log.error({ file: this.file, err: cause, commits }, 'catalog write failed');
      return;
    }
    if (this.#degraded !== undefined) {
      this.#log.debug({ file: this.file, code, commits }, 'catalog write failed');
      return;
    }
    this.#degraded =
      code === 'SQLITE_FULL'
        ? `disk full (${code})`
        : code.startsWith('SQLITE_IOERR')
          ? `I/O error (${code})`
          : code;
    this.#metrics.degraded.set(1);
    this.#log.error(
      { file: this.file, code, reason: (cause as Error).message },
      'catalog writes failing: not ready, refusing writes until one succeeds',
    );
    this.#scheduleProbe();
  }

  /** After a commit SQLite returned from: the index is durable; a degraded store recovers. */
  #writeSucceeded(index: number): void {
    this.#durableIndex = index;
    this.#scheduleMarker();
    if (this.#degraded === undefined) return;
    this.#log.info({ file: this.file, was: this.#degraded }, 'catalog writes succeed again: ready');
    this.#degraded = undefined;
    this.#metrics.degraded.set(0);
    clearTimeout(this.#probeTimer);
  }

  /** While degraded, a trial write once per interval; it needs some free space to count. */
  #scheduleProbe(): void {
    this.#probeTimer = setTimeout(() => {
      const opened = this.#opened;
      if (this.#degraded === undefined || opened === undefined) return;
      try {
        const fs = statfsSync(this.#dataDir);
        if (fs.bavail * fs.bsize < PROBE_MIN_FREE_BYTES) throw new Error('no free space');
        opened.probe();
      } catch {
        this.#scheduleProbe();
        return;
      }
      this.#writeSucceeded(this.#durableIndex);
    }, this.#probeIntervalMs);
    this.#probeTimer.unref();
  }

  /**
   * Rewrites the marker with the durable index, at most once per interval and never two at a
   * time; a marker that lags is still a correct lower bound.
   */
  #scheduleMarker(): void {
    const busy = this.#markerTimer !== undefined || this.#markerWriting !== undefined;
    if (busy || this.#closed || this.#durableIndex <= this.#markerIndex) return;
    const waitMs = Math.max(0, this.#markerLastWriteMs + this.#markerIntervalMs - Date.now());
    this.#markerTimer = setTimeout(() => {
      this.#markerTimer = undefined;
      this.#markerLastWriteMs = Date.now();
      this.#markerWriting = this.#writeMarker().finally(() => {
        this.#markerWriting = undefined;
        if (this.#durableIndex > this.#markerIndex) this.#scheduleMarker();
      });
    }, waitMs);
    this.#markerTimer.unref();
  }

  /** Writes the durable index to the marker; a failure keeps the old one (still a lower bound). */
  async #writeMarker(): Promise<void> {
    const index = this.#durableIndex;
    try {
      await this.#marker.write(index);
      this.#markerIndex = index;
      this.#markerFailing = false;
    } catch (err) {
      this.#metrics.writeErrors.inc();
      if (this.#markerFailing || this.#degraded !== undefined) return;
      this.#markerFailing = true;
      this.#log.warn(
        { file: this.#marker.file, index, err: (err as Error).message },
        'cannot update the durable index marker; keeping the previous one',
      );
    }
  }

  /** The marker's index; an unreadable marker refuses the open unless data loss is accepted. */
  #readMarker(): number | undefined {
    try {
      return this.#marker.read();
    } catch (err) {
      if (!this.#acceptDataLoss) throw err;
      this.#metrics.dataLossAccepted.set(1);
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
    this.#metrics.dataLossAccepted.set(1);
    this.#log.warn(
      { ...details, lostIndexes: markerIndex - storeIndex },
      'catalog store behind its durable index marker: starting without the lost commits (accept data loss)',
    );
  }

  #rebuildMirror(db: Database.Database): void {
    try {
      this.#state = this.#load(db);
      // The view already has the check states; the mirror only needs instances, KV and the index.
      this.#state.loadedCheckStates = [];
    } catch (err) {
      this.#broken = err;
      this.#log.error({ file: this.file, err }, 'catalog store cannot reload after a failed write');
    }
  }

  /** True for a file with no tables yet; refuses a file that is not ours or has another version. */
  #isNew(db: Database.Database): boolean {
    const tables = db
      .prepare<[], string>("SELECT name FROM sqlite_master WHERE type = 'table'")
      .pluck()
      .all();
    if (tables.length === 0) return true;
    if (!tables.includes('meta')) throw errors.storeCorrupt(`${this.file} is not a catalog`);
    const version = db
      .prepare<[], unknown>("SELECT value FROM meta WHERE key = 'schema_version'")
      .pluck()
      .get();
    if (version !== SCHEMA_VERSION) {
      throw errors.storeCorrupt(
        `${this.file} has schema version ${String(version)}, this build reads ${SCHEMA_VERSION}`,
      );
    }
    return false;
  }

  #load(db: Database.Database): StoreState {
    const state = new StoreState();
    const index = db
      .prepare<[], unknown>("SELECT value FROM meta WHERE key = 'index'")
      .pluck()
      .get();
    if (typeof index !== 'number' || !Number.isSafeInteger(index) || index < 1) {
      throw errors.storeCorrupt(`${this.file} has an invalid index ${String(index)}`, undefined, {
        unreadable: true,
      });
    }
    let highest = 1;
    const instances = db.prepare<
      [],
      { instance: string; create_index: number; modify_index: number }
    >('SELECT instance, create_index, modify_index FROM instances');
    for (const row of instances.iterate()) {
      const instance = JSON.parse(row.instance) as Instance;
      state.instances.set(instance.id, {
        instance,
        createIndex: row.create_index,
        modifyIndex: row.modify_index,
      });
      highest = Math.max(highest, row.modify_index);
    }
    const checks = db.prepare<[], string>('SELECT state FROM check_states').pluck();
    for (const json of checks.iterate()) {
      state.loadedCheckStates.push(JSON.parse(json) as CheckState);
    }
    const kv = db.prepare<
      [],
      { key: string; value: Buffer; flags: number; create_index: number; modify_index: number }
    >('SELECT key, value, flags, create_index, modify_index FROM kv');
    for (const row of kv.iterate()) {
      state.kv.set(row.key, {
        key: row.key,
        // A plain Uint8Array view, so readers get the same type the memory store hands back.
        value: new Uint8Array(row.value.buffer, row.value.byteOffset, row.value.byteLength),
        flags: row.flags,
        createIndex: row.create_index,
        modifyIndex: row.modify_index,
      });
      highest = Math.max(highest, row.modify_index);
    }
    if (highest > index) {
      throw errors.storeCorrupt(
        `${this.file} has rows at index ${highest} beyond its index ${index}`,
        undefined,
        { unreadable: true },
      );
    }
    state.index = index;
    return state;
  }

  /** Prepares the statements once and returns the batch writer: one transaction per call. */
  #prepareWrite(db: Database.Database): Opened['write'] {
    const s: Statements = {
      putInstance: db.prepare(
        'INSERT OR REPLACE INTO instances (id, service, instance, create_index, modify_index) ' +
          'VALUES (?, ?, ?, ?, ?)',
      ),
      dropStaleChecks: db.prepare(
        'DELETE FROM check_states ' +
          'WHERE instance_id = ? AND check_id NOT IN (SELECT value FROM json_each(?))',
      ),
      deleteInstance: db.prepare('DELETE FROM instances WHERE id = ?'),
      deleteChecksOf: db.prepare('DELETE FROM check_states WHERE instance_id = ?'),
      touchInstance: db.prepare('UPDATE instances SET modify_index = ? WHERE id = ?'),
      putCheckState: db.prepare(
        'INSERT OR REPLACE INTO check_states (instance_id, check_id, state) VALUES (?, ?, ?)',
      ),
      putKv: db.prepare(
        'INSERT OR REPLACE INTO kv (key, value, flags, create_index, modify_index) ' +
          'VALUES (?, ?, ?, ?, ?)',
      ),
      deleteKv: db.prepare('DELETE FROM kv WHERE key = ?'),
      setIndex: db.prepare("UPDATE meta SET value = ? WHERE key = 'index'"),
    };
    // The events are exactly what StoreState applied, so replaying them (plus the one silent rule,
    // stale check states) leaves the file equal to the mirror.
    return db.transaction((changes: readonly (readonly StoreEvent[])[], index: number) => {
      for (const events of changes) {
        for (const event of events) {
          switch (event.type) {
            case 'instance-put': {
              const { instance } = event;
              s.putInstance.run(
                instance.id,
                instance.service,
                JSON.stringify(instance),
                event.createIndex,
                event.index,
              );
              s.dropStaleChecks.run(instance.id, JSON.stringify(instance.checks.map((c) => c.id)));
              break;
            }
            case 'instance-delete':
              s.deleteInstance.run(event.id);
              s.deleteChecksOf.run(event.id);
              break;
            case 'check-state':
              s.putCheckState.run(
                event.state.instanceId,
                event.state.checkId,
                JSON.stringify(event.state),
              );
              s.touchInstance.run(event.index, event.state.instanceId);
              break;
            case 'kv-put': {
              const { entry } = event;
              const value = Buffer.from(
                entry.value.buffer,
                entry.value.byteOffset,
                entry.value.byteLength,
              );
              s.putKv.run(entry.key, value, entry.flags, entry.createIndex, entry.modifyIndex);
              break;
            }
            case 'kv-delete':
              s.deleteKv.run(event.key);
              break;
          }
        }
      }
      s.setIndex.run(index);
    });
  }

  #openError(err: unknown): unknown {
    if (isMeshError(err)) return err;
    const code = (err as { code?: unknown } | null)?.code;
    if (
      err instanceof SyntaxError ||
      code === 'SQLITE_NOTADB' ||
      (typeof code === 'string' && code.startsWith('SQLITE_CORRUPT'))
    ) {
      return errors.storeCorrupt(`${this.file} is unreadable`, err, { unreadable: true });
    }
    const reason = code === 'SQLITE_BUSY' ? 'is in use by another process' : 'cannot be opened';
    return errors.storeUnavailable(`${this.file} ${reason}`, err);
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
