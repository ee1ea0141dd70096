/**
 * @module StoreState: the in-memory tables and the op-application rules shared by the memory
 * and sqlite stores, so both apply commits with exactly the same semantics.
 */
import { isDeepStrictEqual } from 'node:util';
import type { CheckState, KvEntry } from '../../core/types.js';
import {
  meshResourceKey,
  type MeshResourceKey,
  type StoredMeshResource,
} from '../../protocol/mesh/resource.js';
import type {
  StoreEvent,
  StoreOp,
  StoredInstance,
  StoredSession,
  StoreSnapshot,
} from './catalog-store.js';

/** Tables of a store, plus the rules for applying ops to them. */
export class StoreState {
  index = 1;
  readonly instances = new Map<string, StoredInstance>();
  /**
   * Check states read from a durable copy at open, for the open snapshot only. `apply` does not
   * keep check states in memory: the registry's view does, and a durable store writes them
   * through; a third copy per instance would cost memory for nothing.
   */
  loadedCheckStates: CheckState[] = [];
  readonly kv = new Map<string, KvEntry>();
  readonly meshResources = new Map<MeshResourceKey, StoredMeshResource>();
  readonly sessions = new Map<string, StoredSession>();

  /** Whether every check-and-set condition in `ops` holds. */
  casHolds(ops: readonly StoreOp[]): boolean {
    for (const op of ops) {
      const cond =
        op.op === 'kv-check'
          ? { key: op.key, cas: op.index }
          : op.op === 'kv-put' || op.op === 'kv-delete'
            ? { key: op.key, cas: op.cas }
            : undefined;
      if (cond?.cas !== undefined) {
        const { cas } = cond;
        const current = this.kv.get(cond.key);
        if (cas === 0 ? current !== undefined : current?.modifyIndex !== cas) return false;
      }
      const holder = op.op === 'kv-put' ? op.lock?.session : undefined;
      if (holder !== undefined && !this.sessions.has(holder)) return false;
    }
    return true;
  }

  /**
   * Applies `ops` at `index` (the caller checked `casHolds`) and returns the events. Returns no
   * events when nothing changed.
   */
  apply(ops: readonly StoreOp[], index: number): StoreEvent[] {
    const events: StoreEvent[] = [];
    for (const op of ops) {
      switch (op.op) {
        case 'put-instance': {
          const prev = this.instances.get(op.instance.id);
          const createIndex = prev?.createIndex ?? index;
          this.instances.set(op.instance.id, {
            instance: op.instance,
            createIndex,
            modifyIndex: index,
          });
          events.push({ type: 'instance-put', index, instance: op.instance, createIndex });
          break;
        }
        case 'delete-instance': {
          if (!this.instances.delete(op.id)) break;
          events.push({ type: 'instance-delete', index, id: op.id });
          break;
        }
        case 'put-check-state': {
          const owner = this.instances.get(op.state.instanceId);
          // A late state for a deleted instance or check is dropped.
          if (owner === undefined || !owner.instance.checks.some((c) => c.id === op.state.checkId))
            break;
          // A status change is a change of the instance: its modify index moves too.
          this.instances.set(op.state.instanceId, { ...owner, modifyIndex: index });
          events.push({ type: 'check-state', index, state: op.state });
          break;
        }
        case 'kv-put': {
          const prev = this.kv.get(op.key);
          const lock = op.lock ?? { session: prev?.session, lockIndex: prev?.lockIndex ?? 0 };
          const entry = kvEntry(
            {
              key: op.key,
              value: op.value,
              flags: op.flags,
              createIndex: prev?.createIndex ?? index,
              modifyIndex: index,
            },
            lock.session,
            lock.lockIndex,
          );
          this.kv.set(op.key, entry);
          events.push({ type: 'kv-put', index, entry });
          break;
        }
        case 'put-session': {
          const createIndex = this.sessions.get(op.session.id)?.createIndex ?? index;
          this.sessions.set(op.session.id, { session: op.session, createIndex });
          events.push({ type: 'session-put', index, session: op.session, createIndex });
          break;
        }
        case 'delete-session': {
          const stored = this.sessions.get(op.id);
          if (stored === undefined) break;
          this.sessions.delete(op.id);
          events.push({ type: 'session-delete', index, id: op.id });
          for (const held of [...this.kv.values()].filter((e) => e.session === op.id)) {
            if (stored.session.behavior === 'delete') {
              this.kv.delete(held.key);
              events.push({ type: 'kv-delete', index, key: held.key });
            } else {
              const entry = kvEntry({ ...held, modifyIndex: index }, undefined, held.lockIndex);
              this.kv.set(held.key, entry);
              events.push({ type: 'kv-put', index, entry });
            }
          }
          break;
        }
        case 'kv-delete': {
          if (op.recursive === true) {
            for (const key of [...this.kv.keys()]) {
              if (key.startsWith(op.key)) {
                this.kv.delete(key);
                events.push({ type: 'kv-delete', index, key });
              }
            }
          } else if (this.kv.delete(op.key)) {
            events.push({ type: 'kv-delete', index, key: op.key });
          }
          break;
        }
        case 'kv-check':
          break;
        case 'put-mesh-resource': {
          const key = meshResourceKey(op.resource);
          const prev = this.meshResources.get(key);
          if (prev !== undefined && isDeepStrictEqual(prev.resource, op.resource)) break;
          const createIndex = prev?.createIndex ?? index;
          this.meshResources.set(key, { resource: op.resource, createIndex, modifyIndex: index });
          events.push({ type: 'mesh-put', index, resource: op.resource, createIndex });
          break;
        }
        case 'delete-mesh-resource': {
          if (!this.meshResources.delete(op.key)) break;
          events.push({ type: 'mesh-delete', index, key: op.key });
          break;
        }
      }
    }
    if (events.length > 0) this.index = index;
    return events;
  }

  /** The state at open. Call once: it hands over (and forgets) the loaded check states. */
  snapshot(): StoreSnapshot {
    const checkStates = this.loadedCheckStates;
    this.loadedCheckStates = [];
    return {
      index: this.index,
      instances: [...this.instances.values()],
      checkStates,
      kv: [...this.kv.values()],
      meshResources: [...this.meshResources.values()],
      sessions: [...this.sessions.values()],
    };
  }
}

/**
 * `base` (its own lock fields ignored) held by `session` at `lockIndex`: the lock fields are
 * present only when set (never-locked entries look as they did before sessions existed).
 */
export function kvEntry(
  base: KvEntry,
  session: string | undefined,
  lockIndex: number | undefined,
): KvEntry {
  const { key, value, flags, createIndex, modifyIndex } = base;
  return {
    key,
    value,
    flags,
    createIndex,
    modifyIndex,
    ...(session === undefined ? {} : { session }),
    ...(lockIndex === undefined || lockIndex === 0 ? {} : { lockIndex }),
  };
}
