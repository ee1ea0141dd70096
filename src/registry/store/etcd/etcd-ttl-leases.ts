/** @module EtcdTtlLeases: TTL check deadlines as etcd leases, shared by every agent. */
import type { Etcd3 } from 'etcd3';
import { ERROR_CODES, errors, isMeshError } from '../../../core/errors.js';
import type { StoreTtlLeases } from '../catalog-store.js';
import { isDeleteEvent, type EtcdKv, type KnownInstance } from './etcd-event-decoder.js';
import type { EtcdKeyLayout } from './etcd-key-layout.js';
import { EtcdLeaseKeeper } from './etcd-lease-keeper.js';
import { withTimeout } from './with-timeout.js';

/** etcd lease TTLs are whole seconds; etcd raises anything below its minimum (about 2 s). */
export function leaseSeconds(ttlMs: number): number {
  return Math.max(1, Math.ceil(ttlMs / 1000));
}

/** What the TTL leases share with the catalog store that owns them. */
export interface EtcdTtlLeasesOptions {
  readonly client: Etcd3;
  readonly layout: EtcdKeyLayout;
  /** An etcd call unanswered in this long fails. */
  readonly timeoutMs: number;
  /** What the watch has delivered about each instance: which TTL checks it has, with their TTL. */
  readonly known: ReadonlyMap<string, KnownInstance>;
  /** Resolves once the store's watch has delivered `revision` (at once when closed). */
  appliedAt(revision: number): Promise<void>;
  /** Whether the store is closed. */
  isClosed(): boolean;
  /** Tells the store whether etcd answered (its readiness). */
  setReachable(reachable: boolean, err?: unknown): void;
}

/**
 * The store's {@link StoreTtlLeases}. Each TTL check has a key `t/<id>/<checkId>` under a lease
 * of the check's TTL; a heartbeat is a keep-alive of that lease, and etcd deleting the key is the
 * expiry. The catalog store hands this every `t/` key its range and watch see (`load`,
 * `follow`), so `alive` answers from memory; it grants the leases of the deadlines a commit arms
 * (`grant`).
 */
export class EtcdTtlLeases implements StoreTtlLeases {
  readonly #client: Etcd3;
  readonly #layout: EtcdKeyLayout;
  readonly #timeoutMs: number;
  readonly #known: ReadonlyMap<string, KnownInstance>;
  readonly #options: EtcdTtlLeasesOptions;
  readonly #keeper: EtcdLeaseKeeper;
  /** Live TTL keys (`<id>/<checkId>`) -> their lease id, as the watch delivered them. */
  readonly #leases = new Map<string, string>();
  readonly #expiryListeners = new Set<(instanceId: string, checkId: string) => void>();

  constructor(options: EtcdTtlLeasesOptions) {
    this.#client = options.client;
    this.#layout = options.layout;
    this.#timeoutMs = options.timeoutMs;
    this.#known = options.known;
    this.#options = options;
    this.#keeper = new EtcdLeaseKeeper(options.client);
  }

  async keepAlive(instanceId: string, onlyCheckId?: string): Promise<void> {
    if (this.#options.isClosed()) throw errors.storeUnavailable('store is closed');
    const ttl = this.#known.get(instanceId)?.ttl;
    if (ttl === undefined || ttl.size === 0) return;
    try {
      await Promise.all(
        [...ttl]
          .filter(([checkId]) => onlyCheckId === undefined || checkId === onlyCheckId)
          .map(async ([checkId, ttlMs]) => {
            const lease = this.#leases.get(`${instanceId}/${checkId}`);
            const left =
              lease === undefined
                ? 0
                : await withTimeout(this.#keeper.keepAlive(lease), this.#timeoutMs);
            // Expired (or never seen): a new lease for the key, which detaches it from the old one.
            if (left <= 0) await this.#arm(instanceId, checkId, ttlMs);
          }),
      );
    } catch (err) {
      if (isMeshError(err, ERROR_CODES.STORE_UNAVAILABLE)) throw err;
      this.#options.setReachable(false, err);
      throw errors.storeUnavailable(
        `etcd did not take the heartbeat: ${(err as Error).message}`,
        err,
      );
    }
    this.#options.setReachable(true);
  }

  async renew(instanceId: string, checkId: string): Promise<void> {
    const ttlMs = this.#known.get(instanceId)?.ttl.get(checkId);
    if (ttlMs === undefined || this.#leases.has(`${instanceId}/${checkId}`)) return;
    await this.#arm(instanceId, checkId, ttlMs);
  }

  alive(instanceId: string, checkId: string): boolean {
    return this.#leases.has(`${instanceId}/${checkId}`);
  }

  onExpired(listener: (instanceId: string, checkId: string) => void): () => void {
    this.#expiryListeners.add(listener);
    return () => this.#expiryListeners.delete(listener);
  }

  /** A new lease of `ttlMs` (rounded up to whole seconds); answers its id. */
  async grant(ttlMs: number): Promise<string> {
    const res = await withTimeout(
      this.#client.leaseClient.leaseGrant({ TTL: leaseSeconds(ttlMs) }),
      this.#timeoutMs,
    );
    return res.ID;
  }

  /** Records the live TTL keys of a range over the whole prefix (the store's `open`). */
  load(kvs: readonly EtcdKv[]): void {
    for (const item of kvs) {
      const rest = this.#layout.rest(item.key);
      if (rest.startsWith('t/') && item.lease !== undefined)
        this.#leases.set(rest.slice(2), item.lease);
    }
  }

  /**
   * Follows a TTL key's watch event (`name` is `<id>/<checkId>`). Answers [instanceId, checkId]
   * when its deletion is an expiry: the instance still has that TTL check (a deleted instance or
   * a changed check removes its key in the same transaction, after the instance key, so `known`
   * already says so).
   */
  follow(type: string, name: string, item: EtcdKv): [string, string] | undefined {
    if (!isDeleteEvent(type)) {
      if (item.lease !== undefined) this.#leases.set(name, item.lease);
      return undefined;
    }
    this.#leases.delete(name);
    const slash = name.indexOf('/');
    const id = name.slice(0, slash);
    const checkId = name.slice(slash + 1);
    return this.#known.get(id)?.ttl.has(checkId) === true ? [id, checkId] : undefined;
  }

  /** Tells the expiry listeners of the expiries `follow` found. */
  announceExpired(expired: readonly (readonly [string, string])[]): void {
    for (const [id, checkId] of expired) for (const l of this.#expiryListeners) l(id, checkId);
  }

  /** Drops the expiry listeners and ends the keep-alive stream. */
  close(): void {
    this.#expiryListeners.clear();
    this.#keeper.close();
  }

  /** Puts a TTL key under a new lease, if the instance still exists; waits for its event. */
  async #arm(instanceId: string, checkId: string, ttlMs: number): Promise<void> {
    const lease = await this.grant(ttlMs);
    const res = await withTimeout(
      this.#client.kv.txn({
        compare: [
          {
            key: Buffer.from(this.#layout.instance(instanceId)),
            target: 'Create',
            result: 'Greater',
            create_revision: '0',
          },
        ],
        success: [
          {
            request_put: {
              key: Buffer.from(this.#layout.ttl(instanceId, checkId)),
              value: Buffer.from(''),
              lease,
            },
          },
        ],
        failure: [],
      }),
      this.#timeoutMs,
    );
    if (res.succeeded) await this.#options.appliedAt(Number(res.header.revision));
  }
}
