/** @module EtcdEventDecoder: etcd key-values and watch events as catalog records and events. */
import type { Logger } from '../../../core/logger.js';
import type { CheckState, Instance, KvEntry, Session } from '../../../core/types.js';
import type {
  MeshResource,
  MeshResourceKey,
  StoredMeshResource,
} from '../../../protocol/mesh/resource.js';
import type { StoreEvent, StoredInstance, StoredSession, StoreSnapshot } from '../catalog-store.js';
import { kvEntry } from '../store-state.js';
import type { EtcdKeyLayout } from './etcd-key-layout.js';

/** A key-value as the etcd3 client delivers it (range responses and watch events). */
export interface EtcdKv {
  key: Buffer;
  value: Buffer;
  create_revision: string;
  mod_revision: string;
  lease?: string;
}

/** What the watch has delivered about an instance: enough to shape and guard commits. */
export interface KnownInstance {
  readonly checks: readonly string[];
  /** TTL checks: check id -> ttlMs. */
  readonly ttl: ReadonlyMap<string, number>;
  /** mod_revision of the instance key: a put from this agent compares it (no lost update). */
  readonly modRevision: number;
}

/**
 * What the watch has delivered about the mesh resources: a put of a resource equal to the
 * stored one is skipped, and every mesh commit compares the generation (see `EtcdKeyLayout`).
 */
export interface KnownMesh {
  /** mod_revision of `g/mesh`; 0 while it was never written. */
  generation: number;
  readonly resources: Map<MeshResourceKey, MeshResource>;
}

/**
 * What the watch has delivered about the sessions and the KV entries' locks: an acquire compares
 * and rewrites its session's key, an ending session compares the keys it releases, and a plain
 * put keeps the lock it finds (see `EtcdCommitPlanner`).
 */
export interface KnownLocks {
  /** Session id -> the session and the mod_revision of its key. */
  readonly sessions: Map<string, { readonly session: Session; readonly modRevision: number }>;
  /** KV key -> its entry as delivered (lock fields included; modifyIndex is its mod_revision). */
  readonly kv: Map<string, KvEntry>;
}

/** A KV entry as stored in etcd: value in base64, flags, and the lock while there is one. */
interface StoredKvValue {
  readonly v: string;
  readonly f: number;
  readonly s?: string;
  readonly i?: number;
}

/** The etcd value of a KV entry. */
export function kvValue(
  value: Uint8Array,
  flags: number,
  session: string | undefined,
  lockIndex: number | undefined,
): Buffer {
  const stored: StoredKvValue = {
    v: Buffer.from(value).toString('base64'),
    f: flags,
    ...(session === undefined ? {} : { s: session }),
    ...(lockIndex === undefined || lockIndex === 0 ? {} : { i: lockIndex }),
  };
  return Buffer.from(JSON.stringify(stored));
}

/** A decoded catalog key: an instance, a check state, a KV entry or a mesh resource. */
export type EtcdRecord =
  | { type: 'instance'; instance: Instance }
  | { type: 'check'; state: CheckState }
  | { type: 'kv'; entry: KvEntry }
  | { type: 'mesh'; key: MeshResourceKey; stored: StoredMeshResource }
  | { type: 'session'; stored: StoredSession };

/** Whether a watch event's type is a deletion (the etcd3 client has spelt it both ways). */
export function isDeleteEvent(type: string): boolean {
  return type === 'Delete' || type === 'delete';
}

function knownInstance(instance: Instance, modRevision: number): KnownInstance {
  const ttl = new Map<string, number>();
  for (const c of instance.checks) if (c.kind === 'ttl') ttl.set(c.id, c.ttlMs ?? 0);
  return { checks: instance.checks.map((c) => c.id), ttl, modRevision };
}

/**
 * Decodes the catalog's keys (`i/`, `c/`, `k/`, `r/`, `s/`; see {@link EtcdKeyLayout}) and keeps
 * `known` and `mesh`, the record of what etcd has delivered about each instance and about the
 * mesh resources, current as it goes; likewise `locks` for sessions (`s/`) and KV entries. TTL
 * keys (`t/`, `e/`), membership keys (`m/`) and the mesh generation (`g/`) are not records: the
 * caller hands `t/` to the TTL leases and `e/` to the session leases, `g/` only moves
 * `mesh.generation`, and `m/` decodes to nothing. An unreadable value is logged and skipped,
 * never thrown.
 */
export class EtcdEventDecoder {
  readonly #layout: EtcdKeyLayout;
  readonly #known: Map<string, KnownInstance>;
  readonly #mesh: KnownMesh;
  readonly #locks: KnownLocks;
  readonly #log: Logger;

  constructor(
    layout: EtcdKeyLayout,
    known: Map<string, KnownInstance>,
    mesh: KnownMesh,
    locks: KnownLocks,
    log: Logger,
  ) {
    this.#layout = layout;
    this.#known = known;
    this.#mesh = mesh;
    this.#locks = locks;
    this.#log = log;
  }

  /** The catalog in a range over the whole prefix, read at `revision`. */
  snapshot(kvs: readonly EtcdKv[], revision: number): StoreSnapshot {
    const instances = new Map<string, StoredInstance>();
    const checkStates: CheckState[] = [];
    const kv: KvEntry[] = [];
    const meshResources: StoredMeshResource[] = [];
    const sessions: StoredSession[] = [];
    const stateRevisions = new Map<string, number>();
    for (const item of kvs) {
      const rest = this.#layout.rest(item.key);
      if (rest.startsWith('t/') || rest.startsWith('e/')) continue;
      if (rest === 'g/mesh') {
        this.#mesh.generation = Number(item.mod_revision);
        continue;
      }
      const parsed = this.record(item);
      if (parsed === undefined) continue;
      if (parsed.type === 'session') {
        sessions.push(parsed.stored);
        this.#knowSession(parsed.stored.session, Number(item.mod_revision));
      } else if (parsed.type === 'mesh') {
        meshResources.push(parsed.stored);
        this.#mesh.resources.set(parsed.key, parsed.stored.resource);
      } else if (parsed.type === 'instance') {
        instances.set(parsed.instance.id, {
          instance: parsed.instance,
          createIndex: Number(item.create_revision),
          modifyIndex: Number(item.mod_revision),
        });
      } else if (parsed.type === 'check') {
        checkStates.push(parsed.state);
        const r = Number(item.mod_revision);
        stateRevisions.set(
          parsed.state.instanceId,
          Math.max(r, stateRevisions.get(parsed.state.instanceId) ?? 0),
        );
      } else {
        kv.push(parsed.entry);
        this.#locks.kv.set(parsed.entry.key, parsed.entry);
      }
    }
    for (const [id, r] of stateRevisions) {
      const s = instances.get(id);
      // A status change is a change of the instance (StoredInstance.modifyIndex).
      if (s !== undefined && r > s.modifyIndex) instances.set(id, { ...s, modifyIndex: r });
    }
    const prefix = this.#layout.prefix;
    for (const item of kvs) {
      const s = instances.get(item.key.toString('utf8').slice(prefix.length + 2));
      if (s !== undefined && item.key.toString('utf8').startsWith(`${prefix}i/`))
        this.#known.set(s.instance.id, knownInstance(s.instance, Number(item.mod_revision)));
    }
    return {
      index: Math.max(revision, 1),
      instances: [...instances.values()],
      checkStates: checkStates.filter((s) => instances.has(s.instanceId)),
      kv,
      meshResources,
      sessions,
    };
  }

  /** The store event for one watch event at `revision`, or undefined for keys that make none. */
  event(type: string, item: EtcdKv, revision: number): StoreEvent | undefined {
    const key = item.key.toString('utf8');
    if (!key.startsWith(this.#layout.prefix)) return undefined;
    const rest = key.slice(this.#layout.prefix.length);
    if (isDeleteEvent(type)) {
      if (rest.startsWith('i/')) {
        const id = rest.slice(2);
        this.#known.delete(id);
        return { type: 'instance-delete', index: revision, id };
      }
      if (rest.startsWith('k/')) {
        this.#locks.kv.delete(rest.slice(2));
        return { type: 'kv-delete', index: revision, key: rest.slice(2) };
      }
      if (rest.startsWith('s/')) {
        const id = rest.slice(2);
        this.#locks.sessions.delete(id);
        return { type: 'session-delete', index: revision, id };
      }
      if (rest.startsWith('r/')) {
        const meshKey = rest.slice(2) as MeshResourceKey;
        this.#mesh.resources.delete(meshKey);
        return { type: 'mesh-delete', index: revision, key: meshKey };
      }
      return undefined; // check states go with their instance or check definition
    }
    if (rest === 'g/mesh') {
      this.#mesh.generation = revision;
      return undefined;
    }
    const parsed = this.record(item);
    if (parsed === undefined) return undefined;
    if (parsed.type === 'mesh') {
      const { resource, createIndex } = parsed.stored;
      this.#mesh.resources.set(parsed.key, resource);
      return { type: 'mesh-put', index: revision, resource, createIndex };
    }
    if (parsed.type === 'instance') {
      this.#known.set(parsed.instance.id, knownInstance(parsed.instance, revision));
      return {
        type: 'instance-put',
        index: revision,
        instance: parsed.instance,
        createIndex: Number(item.create_revision),
      };
    }
    if (parsed.type === 'check')
      return { type: 'check-state', index: revision, state: parsed.state };
    if (parsed.type === 'session') {
      // An acquire rewrites its session's key (same value): sessions never change, no event.
      const seen = this.#locks.sessions.has(parsed.stored.session.id);
      this.#knowSession(parsed.stored.session, revision);
      if (seen) return undefined;
      const { session, createIndex } = parsed.stored;
      return { type: 'session-put', index: revision, session, createIndex };
    }
    this.#locks.kv.set(parsed.entry.key, parsed.entry);
    return { type: 'kv-put', index: revision, entry: parsed.entry };
  }

  #knowSession(session: Session, modRevision: number): void {
    this.#locks.sessions.set(session.id, { session, modRevision });
  }

  /** One catalog key's record; undefined for other keys and for unreadable values. */
  record(item: EtcdKv): EtcdRecord | undefined {
    const rest = this.#layout.rest(item.key);
    try {
      if (rest.startsWith('i/'))
        return { type: 'instance', instance: JSON.parse(item.value.toString('utf8')) as Instance };
      if (rest.startsWith('c/'))
        return { type: 'check', state: JSON.parse(item.value.toString('utf8')) as CheckState };
      if (rest.startsWith('k/')) {
        const v = JSON.parse(item.value.toString('utf8')) as StoredKvValue;
        const base = {
          key: rest.slice(2),
          value: new Uint8Array(Buffer.from(v.v, 'base64')),
          flags: v.f,
          createIndex: Number(item.create_revision),
          modifyIndex: Number(item.mod_revision),
        };
        return { type: 'kv', entry: kvEntry(base, v.s, v.i) };
      }
      if (rest.startsWith('s/')) {
        const session = JSON.parse(item.value.toString('utf8')) as Session;
        return { type: 'session', stored: { session, createIndex: Number(item.create_revision) } };
      }
      if (rest.startsWith('r/')) {
        return {
          type: 'mesh',
          key: rest.slice(2) as MeshResourceKey,
          stored: {
            resource: JSON.parse(item.value.toString('utf8')) as MeshResource,
            createIndex: Number(item.create_revision),
            modifyIndex: Number(item.mod_revision),
          },
        };
      }
    } catch (err) {
      this.#log.error(
        { key: item.key.toString('utf8'), err: (err as Error).message },
        'unreadable etcd key skipped',
      );
    }
    return undefined;
  }
}
