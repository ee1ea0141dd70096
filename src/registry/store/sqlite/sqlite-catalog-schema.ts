/**
 * @module SqliteCatalogSchema: catalog.db tables, version check and migration, load, and open
 * errors.
 */
import type Database from 'better-sqlite3';
import { errors, isMeshError } from '../../../core/errors.js';
import type { CheckState, Instance, Session } from '../../../core/types.js';
import { meshResourceKey, type MeshResource } from '../../../protocol/mesh/resource.js';
import { kvEntry, StoreState } from '../store-state.js';

/**
 * The schema this code reads and writes. An older file is migrated at open ({@link MIGRATIONS});
 * a newer one (written by a later build) is refused.
 */
export const SCHEMA_VERSION = 3;

/** Version 2: mesh resources (issue 18). */
const MESH_RESOURCES_TABLE = `
CREATE TABLE mesh_resources (
  key TEXT PRIMARY KEY,
  resource TEXT NOT NULL,
  create_index INTEGER NOT NULL,
  modify_index INTEGER NOT NULL
);
`;

/** Version 3: sessions, and the lock fields of KV entries (issue 22). */
const SESSIONS_TABLE = `
CREATE TABLE sessions (
  id TEXT PRIMARY KEY,
  session TEXT NOT NULL,
  create_index INTEGER NOT NULL
);
`;
const KV_LOCK_COLUMNS = `
ALTER TABLE kv ADD COLUMN session TEXT;
ALTER TABLE kv ADD COLUMN lock_index INTEGER NOT NULL DEFAULT 0;
`;

/**
 * `MIGRATIONS[n]` takes a file from version n to n + 1. Each runs in the open's transaction with
 * the version bump, so a crash leaves the file at the old version or the new, never between.
 */
export const MIGRATIONS: Readonly<Record<number, string>> = Object.freeze({
  1: MESH_RESOURCES_TABLE,
  2: SESSIONS_TABLE + KV_LOCK_COLUMNS,
});

/** Creates the tables of a new `catalog.db` at index 1; run once, in a transaction. */
export const SCHEMA = `
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
  modify_index INTEGER NOT NULL,
  session TEXT,
  lock_index INTEGER NOT NULL DEFAULT 0
);
${MESH_RESOURCES_TABLE}
${SESSIONS_TABLE}
INSERT INTO meta (key, value) VALUES ('schema_version', ${SCHEMA_VERSION}), ('index', 1);
`;

/**
 * True for a file with no tables yet; migrates a file of an older schema version to
 * {@link SCHEMA_VERSION}; refuses (MESHWORK_ERR_STORE_CORRUPT) a file that is not a catalog or
 * has a version this build does not know. `file` names the database in messages.
 */
export function isNewCatalog(db: Database.Database, file: string): boolean {
  const tables = db
    .prepare<[], string>("SELECT name FROM sqlite_master WHERE type = 'table'")
    .pluck()
    .all();
  if (tables.length === 0) return true;
  if (!tables.includes('meta')) throw errors.storeCorrupt(`${file} is not a catalog`);
  const version = db
    .prepare<[], unknown>("SELECT value FROM meta WHERE key = 'schema_version'")
    .pluck()
    .get();
  if (version === SCHEMA_VERSION) return false;
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) {
    throw errors.storeCorrupt(`${file} has an invalid schema version ${String(version)}`);
  }
  if (version > SCHEMA_VERSION) {
    throw errors.storeCorrupt(
      `${file} has schema version ${version}, written by a newer build; this build reads up to ${SCHEMA_VERSION}`,
    );
  }
  const setVersion = db.prepare<[number]>("UPDATE meta SET value = ? WHERE key = 'schema_version'");
  db.transaction(() => {
    for (let v = version; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v] as string);
    setVersion.run(SCHEMA_VERSION);
  })();
  return false;
}

/**
 * Reads the whole catalog (instances, check states, KV, index) into a new {@link StoreState}.
 * An invalid index, or rows beyond it, throw MESHWORK_ERR_STORE_CORRUPT marked `unreadable`.
 */
export function loadCatalogState(db: Database.Database, file: string): StoreState {
  const state = new StoreState();
  const index = db.prepare<[], unknown>("SELECT value FROM meta WHERE key = 'index'").pluck().get();
  if (typeof index !== 'number' || !Number.isSafeInteger(index) || index < 1) {
    throw errors.storeCorrupt(`${file} has an invalid index ${String(index)}`, undefined, {
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
    {
      key: string;
      value: Buffer;
      flags: number;
      create_index: number;
      modify_index: number;
      session: string | null;
      lock_index: number;
    }
  >('SELECT key, value, flags, create_index, modify_index, session, lock_index FROM kv');
  for (const row of kv.iterate()) {
    const base = {
      key: row.key,
      // A plain Uint8Array view, so readers get the same type the memory store hands back.
      value: new Uint8Array(row.value.buffer, row.value.byteOffset, row.value.byteLength),
      flags: row.flags,
      createIndex: row.create_index,
      modifyIndex: row.modify_index,
    };
    state.kv.set(row.key, kvEntry(base, row.session ?? undefined, row.lock_index));
    highest = Math.max(highest, row.modify_index);
  }
  const sessions = db.prepare<[], { session: string; create_index: number }>(
    'SELECT session, create_index FROM sessions',
  );
  for (const row of sessions.iterate()) {
    const session = JSON.parse(row.session) as Session;
    state.sessions.set(session.id, { session, createIndex: row.create_index });
    highest = Math.max(highest, row.create_index);
  }
  const resources = db.prepare<
    [],
    { key: string; resource: string; create_index: number; modify_index: number }
  >('SELECT key, resource, create_index, modify_index FROM mesh_resources');
  for (const row of resources.iterate()) {
    const resource = JSON.parse(row.resource) as MeshResource;
    state.meshResources.set(meshResourceKey(resource), {
      resource,
      createIndex: row.create_index,
      modifyIndex: row.modify_index,
    });
    highest = Math.max(highest, row.modify_index);
  }
  if (highest > index) {
    throw errors.storeCorrupt(
      `${file} has rows at index ${highest} beyond its index ${index}`,
      undefined,
      { unreadable: true },
    );
  }
  state.index = index;
  return state;
}

/**
 * Maps a failure to open `file` to the store's errors: an unreadable file is
 * MESHWORK_ERR_STORE_CORRUPT (`unreadable`), anything else MESHWORK_ERR_STORE_UNAVAILABLE.
 * A MeshError is returned as it is.
 */
export function catalogOpenError(err: unknown, file: string): unknown {
  if (isMeshError(err)) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (
    err instanceof SyntaxError ||
    code === 'SQLITE_NOTADB' ||
    (typeof code === 'string' && code.startsWith('SQLITE_CORRUPT'))
  ) {
    return errors.storeCorrupt(`${file} is unreadable`, err, { unreadable: true });
  }
  const reason = code === 'SQLITE_BUSY' ? 'is in use by another process' : 'cannot be opened';
  return errors.storeUnavailable(`${file} ${reason}`, err);
}
