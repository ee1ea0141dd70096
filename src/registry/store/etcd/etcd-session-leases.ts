/** @module EtcdSessionLeases: session TTLs as etcd leases, shared by every agent. */
import type { Etcd3 } from 'etcd3';
import { errors } from '../../../core/errors.js';
import type { StoreSessionLeases } from '../catalog-store.js';
import { isDeleteEvent, type EtcdKv, type KnownLocks } from './etcd-event-decoder.js';
import type { EtcdKeyLayout } from './etcd-key-layout.js';
import { EtcdLeaseKeeper } from './etcd-lease-keeper.js';
import { withTimeout } from './with-timeout.js';

/** What the session leases share with the catalog store that owns them. */
export interface EtcdSessionLeasesOptions {
  readonly client: Etcd3;
  readonly layout: EtcdKeyLayout;
  /** An etcd call unanswered in this long fails. */
  readonly timeoutMs: number;
  /** What the watch has delivered about the sessions. */
  readonly locks: KnownLocks;
  /** Whether the store is closed. */
  isClosed(): boolean;
  /** Tells the store whether etcd answered (its readiness). */
  setReachable(reachable: boolean, err?: unknown): void;
}

/**
 * The store's {@link StoreSessionLeases}. A TTL session has a key `e/<id>` under a lease of twice
 * its TTL (granted with the `put-session` commit, see `EtcdCommitPlanner`); a renew is a
 * keep-alive of that lease, and etcd deleting the key while the session exists is its lapse. The
 * catalog store hands this every `e/` key its range and watch see (`load`, `follow`).
 */
export class EtcdSessionLeases implements StoreSessionLeases {
  readonly #options: EtcdSessionLeasesOptions;
  readonly #keeper: EtcdLeaseKeeper;
  /** Live deadlines: session id -> lease id, as the watch delivered them. */
  readonly #leases = new Map<string, string>();
  readonly #listeners = new Set<(id: string) => void>();

  constructor(options: EtcdSessionLeasesOptions) {
    this.#options = options;
    this.#keeper = new EtcdLeaseKeeper(options.client);
  }

  async renew(id: string): Promise<boolean> {
    if (this.#options.isClosed()) throw errors.storeUnavailable('store is closed');
    const lease = this.#leases.get(id);
    if (lease === undefined) return false;
    let left: number;
    try {
      left = await withTimeout(this.#keeper.keepAlive(lease), this.#options.timeoutMs);
    } catch (err) {
      this.#options.setReachable(false, err);
      throw errors.storeUnavailable(`etcd did not take the renew: ${(err as Error).message}`, err);
    }
    this.#options.setReachable(true);
    return left > 0;
  }

  alive(id: string): boolean {
    return this.#leases.has(id);
  }

  onExpired(listener: (id: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Records the live deadlines of a range over the whole prefix (the store's `open`). */
  load(kvs: readonly EtcdKv[]): void {
    for (const item of kvs) {
      const rest = this.#options.layout.rest(item.key);
      if (rest.startsWith('e/') && item.lease !== undefined)
        this.#leases.set(rest.slice(2), item.lease);
    }
  }

  /**
   * Follows a deadline key's watch event (`id` is the session's). Answers the id when its
   * deletion is a lapse: the session still exists (ending a session deletes its key after the
   * session's, in the same transaction, so `locks` already says so).
   */
  follow(type: string, id: string, item: EtcdKv): string | undefined {
    if (!isDeleteEvent(type)) {
      if (item.lease !== undefined) this.#leases.set(id, item.lease);
      return undefined;
    }
    this.#leases.delete(id);
    return this.#options.locks.sessions.has(id) ? id : undefined;
  }

  /** Tells the listeners of the lapses `follow` found. */
  announceExpired(ids: readonly string[]): void {
    for (const id of ids) for (const l of this.#listeners) l(id);
  }

  close(): void {
    this.#listeners.clear();
    this.#keeper.close();
  }
}
