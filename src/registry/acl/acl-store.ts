/**
 * @module Where ACL tokens and policies live: one document, replaced whole under a version check
 * (tokens and policies are few, written rarely, and read through the resolver's cache). Kept
 * apart from the catalog store and its reads, so no KV or catalog read path can show a secret:
 * memory (dev), a sqlite file of its own beside the catalog (`acl.db`), or one etcd key
 * (etcd-acl-store.ts, loaded in cluster mode only).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

/** A policy as stored. */
export interface StoredAclPolicy {
  readonly id: string;
  readonly name: string;
  readonly description: string;
  /** Consul's rules text (HCL or JSON), kept as given. */
  readonly rules: string;
  readonly datacenters: readonly string[];
  readonly createIndex: number;
  readonly modifyIndex: number;
}

/** A token as stored. */
export interface StoredAclToken {
  readonly accessorId: string;
  readonly secretId: string;
  readonly description: string;
  /** Policy ids. */
  readonly policies: readonly string[];
  readonly local: boolean;
  /** ISO time of creation. */
  readonly createTime: string;
  readonly createIndex: number;
  readonly modifyIndex: number;
  /** A token made through the legacy endpoints (`/v1/acl/create`): its type and inline rules. */
  readonly legacy?: { readonly type: 'client' | 'management'; readonly rules: string };
}

/** Every token and policy, and whether bootstrap happened. */
export interface AclDocument {
  /** Bumped by every write; tokens and policies take it as their Create/ModifyIndex. */
  readonly index: number;
  readonly bootstrapped: boolean;
  readonly policies: readonly StoredAclPolicy[];
  readonly tokens: readonly StoredAclToken[];
}

/** A document and the version to give `save` to replace it (0: none stored yet). */
export interface VersionedAclDocument {
  readonly doc: AclDocument | undefined;
  readonly version: number;
}

/**
 * Durable storage of the ACL document.
 *
 * Contract: `load` answers the stored document (undefined before the first save) and its
 * version; `save(doc, version)` replaces it only if the stored version is still `version`,
 * answering false otherwise (another writer came first: load and try again). Both reject with
 * MESHWORK_ERR_STORE_UNAVAILABLE when the backend cannot be reached. `save` resolves once the
 * write is durable.
 */
export interface AclStore {
  readonly kind: string;
  load(): Promise<VersionedAclDocument>;
  save(doc: AclDocument, version: number): Promise<boolean>;
  close(): Promise<void>;
}

/** The in-memory store (`--dev`, tests): nothing survives a restart. */
export function createMemoryAclStore(): AclStore {
  let current: VersionedAclDocument = { doc: undefined, version: 0 };
  return {
    kind: 'memory',
    load: () => Promise.resolve(current),
    save: (doc, version) => {
      if (version !== current.version) return Promise.resolve(false);
      current = { doc: structuredClone(doc), version: version + 1 };
      return Promise.resolve(true);
    },
    close: () => Promise.resolve(),
  };
}

/** The sqlite store: `<dataDir>/acl.db`, one row, written with a full sync. */
export function createSqliteAclStore(dataDir: string): AclStore {
  mkdirSync(dataDir, { recursive: true });
  const db = new Database(join(dataDir, 'acl.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(
    'CREATE TABLE IF NOT EXISTS acl_document (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL, doc TEXT NOT NULL)',
  );
  const read = db.prepare<[], { version: number; doc: string }>(
    'SELECT version, doc FROM acl_document WHERE id = 1',
  );
  const insert = db.prepare(
    'INSERT OR IGNORE INTO acl_document (id, version, doc) VALUES (1, 1, ?)',
  );
  const update = db.prepare(
    'UPDATE acl_document SET version = version + 1, doc = ? WHERE id = 1 AND version = ?',
  );
  return {
    kind: 'sqlite',
    load: () => {
      const row = read.get();
      return Promise.resolve(
        row === undefined
          ? { doc: undefined, version: 0 }
          : { doc: JSON.parse(row.doc) as AclDocument, version: row.version },
      );
    },
    save: (doc, version) => {
      const text = JSON.stringify(doc);
      const r = version === 0 ? insert.run(text) : update.run(text, version);
      return Promise.resolve(r.changes === 1);
    },
    close: () => {
      db.close();
      return Promise.resolve();
    },
  };
}
