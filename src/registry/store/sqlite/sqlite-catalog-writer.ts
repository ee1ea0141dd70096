/** @module SqliteCatalogWriter: the prepared statements that write store events to catalog.db. */
import type Database from 'better-sqlite3';
import { meshResourceKey } from '../../../protocol/mesh/resource.js';
import type { StoreEvent } from '../catalog-store.js';

/**
 * Writes a batch of commits' events and the new index in one transaction (one fsync). Throws
 * the SQLite error when the transaction fails; nothing of the batch is written then.
 */
export type CatalogBatchWriter = (
  changes: readonly (readonly StoreEvent[])[],
  index: number,
) => void;

interface Statements {
  readonly putInstance: Database.Statement<[string, string, string, number, number]>;
  /** Drops the states of checks no longer in the instance (second param: JSON array of ids). */
  readonly dropStaleChecks: Database.Statement<[string, string]>;
  readonly deleteInstance: Database.Statement<[string]>;
  readonly deleteChecksOf: Database.Statement<[string]>;
  readonly putCheckState: Database.Statement<[string, string, string]>;
  readonly touchInstance: Database.Statement<[number, string]>;
  readonly putKv: Database.Statement<
    [string, Buffer, number, number, number, string | null, number]
  >;
  readonly putSession: Database.Statement<[string, string, number]>;
  readonly deleteSession: Database.Statement<[string]>;
  readonly deleteKv: Database.Statement<[string]>;
  readonly putMesh: Database.Statement<[string, string, number, number]>;
  readonly deleteMesh: Database.Statement<[string]>;
  readonly setIndex: Database.Statement<[number]>;
}

/** Prepares the statements once and returns the batch writer: one transaction per call. */
export function prepareCatalogWriter(db: Database.Database): CatalogBatchWriter {
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
      'INSERT OR REPLACE INTO kv ' +
        '(key, value, flags, create_index, modify_index, session, lock_index) ' +
        'VALUES (?, ?, ?, ?, ?, ?, ?)',
    ),
    putSession: db.prepare(
      'INSERT OR REPLACE INTO sessions (id, session, create_index) VALUES (?, ?, ?)',
    ),
    deleteSession: db.prepare('DELETE FROM sessions WHERE id = ?'),
    deleteKv: db.prepare('DELETE FROM kv WHERE key = ?'),
    putMesh: db.prepare(
      'INSERT OR REPLACE INTO mesh_resources (key, resource, create_index, modify_index) ' +
        'VALUES (?, ?, ?, ?)',
    ),
    deleteMesh: db.prepare('DELETE FROM mesh_resources WHERE key = ?'),
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
            s.putKv.run(
              entry.key,
              value,
              entry.flags,
              entry.createIndex,
              entry.modifyIndex,
              entry.session ?? null,
              entry.lockIndex ?? 0,
            );
            break;
          }
          case 'session-put':
            s.putSession.run(event.session.id, JSON.stringify(event.session), event.createIndex);
            break;
          case 'session-delete':
            s.deleteSession.run(event.id);
            break;
          case 'kv-delete':
            s.deleteKv.run(event.key);
            break;
          case 'mesh-put':
            s.putMesh.run(
              meshResourceKey(event.resource),
              JSON.stringify(event.resource),
              event.createIndex,
              event.index,
            );
            break;
          case 'mesh-delete':
            s.deleteMesh.run(event.key);
            break;
        }
      }
    }
    s.setIndex.run(index);
  });
}
