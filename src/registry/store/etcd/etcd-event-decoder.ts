/** @module EtcdEventDecoder: etcd key-values and watch events as catalog records and events. */
import type { Logger } from '../../../core/logger.js';
import type { CheckState, Instance, KvEntry } from '../../../core/types.js';
import type {
  MeshResource,
  MeshResourceKey,
  StoredMeshResource,
} from '../../../protocol/mesh/resource.js';
import type { StoreEvent, StoreSnapshot, StoredInstance } from '../catalog-store.js';
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

/** A decoded catalog key: an instance, a check state, a KV entry or a mesh resource. */
export type EtcdRecord =
  | { type: 'instance'; instance: Instance }
  | { type: 'check'; state: CheckState }
  | { type: 'kv'; entry: KvEntry }
  | { type: 'mesh'; key: MeshResourceKey; stored: StoredMeshResource };

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
 * Decodes the catalog's keys (`i/`, `c/`, `k/`, `r/`; see {@link EtcdKeyLayout}) and keeps
 * `known` and `mesh`, the record of what etcd has delivered about each instance and about the
 * mesh resources, current as it goes. TTL keys (`t/`), membership keys (`m/`) and the mesh
 * generation (`g/`) are not records: the caller hands `t/` to the TTL leases, `g/` only moves
 * `mesh.generation`, and `m/` decodes to nothing. An unreadable value is logged and skipped,
 * never thrown.
 */
export class EtcdEventDecoder {
  readonly #layout: EtcdKeyLayout;
  readonly #known: Map<string, KnownInstance>;
  readonly #mesh: KnownMesh;
  readonly #log: Logger;

  constructor(
    layout: EtcdKeyLayout,
    known: Map<string, KnownInstance>,
    mesh: KnownMesh,
    log: Logger,
  ) {
    this.#layout = layout;
    this.#known = known;
    this.#mesh = mesh;
    this.#log = log;
  }

  /** The catalog in a range over the whole prefix, read at `revision`. */
  snapshot(kvs: readonly EtcdKv[], revision: number): StoreSnapshot {
    const instances = new Map<string, StoredInstance>();
    const checkStates: CheckState[] = [];
    const kv: KvEntry[] = [];
    const meshResources: StoredMeshResource[] = [];
    const stateRevisions = new Map<string, number>();
    for (const item of kvs) {
      const rest = this.#layout.rest(item.key);
      if (rest.startsWith('t/')) continue;
      if (rest === 'g/mesh') {
        this.#mesh.generation = Number(item.mod_revision);
        continue;
      }
      const parsed = this.record(item);
      if (parsed === undefined) continue;
      if (parsed.type === 'mesh') {
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
      } else kv.push(parsed.entry);
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
      sessions: [],
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
      if (rest.startsWith('k/')) return { type: 'kv-delete', index: revision, key: rest.slice(2) };
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
    return { type: 'kv-put', index: revision, entry: parsed.entry };
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
        const v = JSON.parse(item.value.toString('utf8')) as { v: string; f: number };
        return {
          type: 'kv',
          entry: {
            key: rest.slice(2),
            value: new Uint8Array(Buffer.from(v.v, 'base64')),
            flags: v.f,
            createIndex: Number(item.create_revision),
            modifyIndex: Number(item.mod_revision),
          },
        };
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
