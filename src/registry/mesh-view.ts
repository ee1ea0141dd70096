/**
 * @module MeshView: the mesh resources as this agent holds them (the registry's read side of
 * them), fed only by the store's snapshot and events, with the index of the last change (the
 * `mesh` topic) and sorted lists kept ready for readers.
 */
import {
  meshResourceKey,
  type MeshKind,
  type MeshResource,
  type MeshResourceKey,
  type StoredMeshResource,
} from '../protocol/mesh/resource.js';

const byKey = (a: StoredMeshResource, b: StoredMeshResource): number => {
  const ka = meshResourceKey(a.resource);
  const kb = meshResourceKey(b.resource);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
};

/** The stored mesh resources by key; lists are built on first read after a change and shared. */
export class MeshView {
  /** The index of the last change to any mesh resource (the store's index at load). */
  index = 1;
  readonly #resources = new Map<MeshResourceKey, StoredMeshResource>();
  /** Sorted lists (`all` and one per kind), dropped on every change. */
  #lists = new Map<MeshKind | 'all', readonly StoredMeshResource[]>();

  load(resources: readonly StoredMeshResource[], index: number): void {
    this.#resources.clear();
    for (const r of resources) this.#resources.set(meshResourceKey(r.resource), r);
    this.index = index;
    this.#lists = new Map();
  }

  /** Stores a put resource at `index`; answers its key. */
  put(resource: MeshResource, createIndex: number, index: number): MeshResourceKey {
    const key = meshResourceKey(resource);
    this.#resources.set(key, { resource, createIndex, modifyIndex: index });
    this.#changed(index);
    return key;
  }

  /** Forgets a deleted resource; answers whether it was held. */
  delete(key: MeshResourceKey, index: number): boolean {
    if (!this.#resources.delete(key)) return false;
    this.#changed(index);
    return true;
  }

  get(key: MeshResourceKey): StoredMeshResource | undefined {
    return this.#resources.get(key);
  }

  /** Every resource (of one kind), sorted by key. Shared: callers MUST NOT mutate it. */
  list(kind?: MeshKind): readonly StoredMeshResource[] {
    const slot = kind ?? 'all';
    let list = this.#lists.get(slot);
    if (list === undefined) {
      const all = [...this.#resources.values()];
      list = Object.freeze(
        (kind === undefined ? all : all.filter((r) => r.resource.kind === kind)).sort(byKey),
      );
      this.#lists.set(slot, list);
    }
    return list;
  }

  /** The resources as they are now, by key (a copy the caller may change: a write's plan). */
  resourceMap(): Map<MeshResourceKey, MeshResource> {
    const out = new Map<MeshResourceKey, MeshResource>();
    for (const [key, r] of this.#resources) out.set(key, r.resource);
    return out;
  }

  #changed(index: number): void {
    if (index > this.index) this.index = index;
    if (this.#lists.size > 0) this.#lists = new Map();
  }
}
