/** @module SqliteCatalogStore: the embedded durable store (SQLite, WAL, group commit). */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
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

/** Options of {@link createSqliteCatalogStore}. */
export interface SqliteCatalogStoreOptions {
  /** Directory holding `catalog.db`; created if missing. */
  readonly dataDir: string;
  readonly logger?: Logger;
}

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
    this.#dataDir = options.dataDir;
    this.file = join(options.dataDir, 'catalog.db');
    this.#log = (options.logger ?? silentLogger).child({
      component: 'catalog-store',
      kind: 'sqlite',
    });
  }

  /** Write transactions committed so far: one per batch that changed something. */
  get transactionsCommitted(): number {
    return this.#transactionsCommitted;
  }

  available(): boolean {
    return !this.#closed && this.#broken === undefined;
  }

  async open(): Promise<StoreSnapshot> {
    if (this.#closed) throw errors.storeUnavailable('store is closed');
    assert(this.#opened === undefined, 'open() MUST be called once');
    let db: Database.Database | undefined;
    try {
      mkdirSync(this.#dataDir, { recursive: true });
      // timeout 0: once open we hold an exclusive lock, so a busy file means another process
      // owns it and waiting would not help.
      db = new Database(this.file, { timeout: 0 });
      // EXCLUSIVE before WAL: the WAL index then lives in heap memory, not a -shm file, and the
      // lock taken on first access is held until close, so no other process can write behind
      // the mirror.
      db.pragma('locking_mode = EXCLUSIVE');
      db.pragma('journal_mode = WAL');
      // FULL: in WAL mode NORMAL may lose the last commits on power loss; FULL fsyncs every commit.
      db.pragma('synchronous = FULL');
      // macOS fsync() does not flush the drive's cache; F_FULLFSYNC does (no-op elsewhere).
      db.pragma('fullfsync = ON');
      this.#migrate(db);
      this.#state = this.#load(db);
      this.#opened = { db, write: this.#prepareWrite(db) };
    } catch (err) {
      db?.close();
      throw this.#openError(err);
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
    if (this.#opened !== undefined) {
      this.#opened.db.close();
      this.#opened = undefined;
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
        this.#log.error(
          { file: this.file, err: cause, commits: batch.length },
          'catalog write failed',
        );
        this.#rebuildMirror(opened.db);
        const err = errors.storeUnavailable(`cannot write ${this.file}`, cause);
        for (const commit of batch) commit.reject(err);
        return;
      }
      this.#transactionsCommitted += 1;
      for (const events of changes) for (const listener of this.#listeners) listener(events);
    }
    for (const { commit, result } of settled) commit.resolve(result);
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

  /** Creates the schema in a new file; refuses a file that is not ours or has another version. */
  #migrate(db: Database.Database): void {
    const tables = db
      .prepare<[], string>("SELECT name FROM sqlite_master WHERE type = 'table'")
      .pluck()
      .all();
    if (tables.length === 0) {
      db.transaction(() => db.exec(SCHEMA))();
      return;
    }
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
  }

  #load(db: Database.Database): StoreState {
    const state = new StoreState();
    const index = db
      .prepare<[], unknown>("SELECT value FROM meta WHERE key = 'index'")
      .pluck()
      .get();
    if (typeof index !== 'number' || !Number.isSafeInteger(index) || index < 1) {
      throw errors.storeCorrupt(`${this.file} has an invalid index ${String(index)}`);
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
      return errors.storeCorrupt(`${this.file} is unreadable`, err);
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
