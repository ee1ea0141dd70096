/** @module MemoryCatalogStore: the non-durable store behind `--dev` and unit tests. */
import { errors } from '../../../core/errors.js';
import type {
  CatalogStore,
  CommitResult,
  StoreListener,
  StoreOp,
  StoreSnapshot,
} from '../catalog-store.js';
import { StoreState } from '../store-state.js';

/** Keeps everything in memory; commits apply synchronously (the promise resolves at once). */
export class MemoryCatalogStore implements CatalogStore {
  readonly kind = 'memory';
  readonly #state = new StoreState();
  readonly #listeners = new Set<StoreListener>();
  #closed = false;

  available(): boolean {
    return !this.#closed;
  }

  open(): Promise<StoreSnapshot> {
    return Promise.resolve(this.#state.snapshot());
  }

  subscribe(listener: StoreListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  commit(ops: readonly StoreOp[]): Promise<CommitResult> {
    if (this.#closed) return Promise.reject(errors.storeUnavailable('store is closed'));
    if (!this.#state.casHolds(ops)) return Promise.resolve({ ok: false, index: this.#state.index });
    const events = this.#state.apply(ops, this.#state.index + 1);
    if (events.length > 0) for (const listener of this.#listeners) listener(events);
    return Promise.resolve({ ok: true, index: this.#state.index });
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#listeners.clear();
    return Promise.resolve();
  }
}

export function createMemoryCatalogStore(): MemoryCatalogStore {
  return new MemoryCatalogStore();
}
