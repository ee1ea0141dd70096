/**
 * @module ReservedKv: the agent's own keys in the store (RESERVED_KV_PREFIX), for its parts
 * that keep state beside the catalog (the mesh CA, the call graph's per-agent share). Stored and replicated as KV entries, so every
 * store (memory, sqlite, etcd) keeps them with compare-and-set and events, but hidden from every
 * KV read and refused to every KV write of the APIs (see catalog-view.ts).
 */
import type { KvEntry } from '../core/types.js';
import type { ReservedKv, ReservedKvOp } from './reserved-kv-contract.js';
import { RESERVED_KV_PREFIX, type CatalogView } from './catalog-view.js';
import type { CatalogStore, StoreEvent, StoreOp } from './store/catalog-store.js';

export type { ReservedKv } from './reserved-kv-contract.js';

interface Subscription {
  readonly prefix: string;
  readonly listener: (keys: readonly string[]) => void;
}

/** The registry's ReservedKv; its `onEvents` MUST see every batch after the view applied it. */
export class RegistryReservedKv implements ReservedKv {
  readonly #view: CatalogView;
  readonly #store: CatalogStore;
  readonly #subscriptions = new Set<Subscription>();

  constructor(view: CatalogView, store: CatalogStore) {
    this.#view = view;
    this.#store = store;
  }

  get(key: string): KvEntry | undefined {
    assertReserved(key);
    return this.#view.reservedKvGet(key);
  }

  list(prefix: string): KvEntry[] {
    assertReserved(prefix);
    return this.#view.reservedKvList(prefix);
  }

  async put(key: string, value: Uint8Array, cas: number): Promise<{ ok: boolean; index: number }> {
    assertReserved(key);
    const r = await this.#store.commit([{ op: 'kv-put', key, value, flags: 0, cas }]);
    return { ok: r.ok, index: r.index };
  }

  async delete(key: string, cas: number): Promise<{ ok: boolean; index: number }> {
    assertReserved(key);
    const r = await this.#store.commit([{ op: 'kv-delete', key, cas }]);
    return { ok: r.ok, index: r.index };
  }

  async commit(ops: readonly ReservedKvOp[]): Promise<{ ok: boolean; index: number }> {
    const storeOps = ops.map((o): StoreOp => {
      assertReserved(o.key);
      const cas = o.cas === undefined ? {} : { cas: o.cas };
      return o.op === 'put'
        ? { op: 'kv-put', key: o.key, value: o.value, flags: 0, ...cas }
        : { op: 'kv-delete', key: o.key, ...cas };
    });
    const r = await this.#store.commit(storeOps);
    return { ok: r.ok, index: r.index };
  }

  subscribe(prefix: string, listener: (keys: readonly string[]) => void): () => void {
    assertReserved(prefix);
    const s = { prefix, listener };
    this.#subscriptions.add(s);
    return () => this.#subscriptions.delete(s);
  }

  onEvents(events: readonly StoreEvent[]): void {
    if (this.#subscriptions.size === 0) return;
    for (const s of [...this.#subscriptions]) {
      const keys: string[] = [];
      for (const e of events) {
        const key = e.type === 'kv-put' ? e.entry.key : e.type === 'kv-delete' ? e.key : undefined;
        if (key?.startsWith(s.prefix) === true) keys.push(key);
      }
      if (keys.length > 0) s.listener(keys);
    }
  }
}

function assertReserved(key: string): void {
  // An impossible state: only the agent's own parts hold a ReservedKv.
  if (!key.startsWith(RESERVED_KV_PREFIX)) throw new Error(`not a reserved key: ${key}`);
}
