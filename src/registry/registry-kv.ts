/**
 * @module RegistryKv: the agent's KV space: reads from the catalog view, puts held to the KV
 * quota (counting puts in flight), deletes (one key, by prefix, compare-and-set).
 */
import { errors } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { KvEntry } from '../core/types.js';
import { LIMITS } from '../protocol/limits.js';
import { hasControlChars, NO_CONTROL_CHARS } from '../protocol/validation.js';
import { kvEntryBytes, type CatalogView } from './catalog-view.js';
import { retryCommit } from './commit-retry.js';
import type { RegistryMetrics } from './registry-metrics.js';
import type { CatalogStore, StoreEvent, StoreOp } from './store/catalog-store.js';

/** A KV put's lock change (see the `kv-put` store op): the holder after it and the lock index. */
export interface KvLock {
  readonly session: string | undefined;
  readonly lockIndex: number;
}

/** What a {@link RegistryKv} reads, writes through and enforces. */
export interface RegistryKvOptions {
  readonly view: CatalogView;
  readonly store: CatalogStore;
  /** Bytes of KV keys and values together; a put past it is refused with KV_QUOTA_EXCEEDED. */
  readonly quotaBytes: number;
  readonly logger: Logger;
  readonly metrics?: RegistryMetrics | undefined;
}

/** Bytes a KV put in flight may add, held against the quota until the view counts them. */
interface KvReservation {
  readonly key: string;
  readonly bytes: number;
}

/** KV reads and writes of one registry. Its `onEvents` MUST see every store event batch. */
export class RegistryKv {
  readonly #view: CatalogView;
  readonly #store: CatalogStore;
  readonly #quotaBytes: number;
  readonly #log: Logger;
  readonly #metrics: RegistryMetrics | undefined;
  /** Growth of KV puts in flight (see kvPut), by key in commit order, and its sum. */
  readonly #kvReservations = new Map<string, KvReservation[]>();
  #kvReservedBytes = 0;
  /** The KV quota refused a put, and none that grows KV was taken since (logged once). */
  #kvFullLogged = false;

  constructor(options: RegistryKvOptions) {
    this.#view = options.view;
    this.#store = options.store;
    this.#quotaBytes = options.quotaBytes;
    this.#log = options.logger;
    this.#metrics = options.metrics;
  }

  kvGet(key: string): KvEntry | undefined {
    return this.#view.kvGet(key);
  }

  kvList(prefix: string): KvEntry[] {
    return this.#view.kvList(prefix);
  }

  /**
   * Puts a KV value. Throws KV_VALUE_TOO_LARGE past LIMITS.maxKvValueBytes, and KV_QUOTA_EXCEEDED
   * when the KV store would grow past `limits.kvQuotaBytes` (a put that does not grow it, such as
   * a smaller value, always goes through).
   */
  async kvPut(
    key: string,
    value: Uint8Array,
    options: { flags?: number; cas?: number; lock?: KvLock } = {},
  ): Promise<{ ok: boolean; index: number }> {
    assertUserKey(key);
    if (value.byteLength > LIMITS.maxKvValueBytes)
      throw errors.kvValueTooLarge(key, value.byteLength, LIMITS.maxKvValueBytes);
    const prev = this.#view.kvGet(key);
    const growthBytes =
      kvEntryBytes(key, value) - (prev === undefined ? 0 : kvEntryBytes(key, prev.value));
    const usedBytes = this.#view.kvBytes + this.#kvReservedBytes;
    if (growthBytes > 0 && usedBytes + growthBytes > this.#quotaBytes) {
      this.#metrics?.kvQuotaRefusals.inc();
      // Once per full spell: a client retrying at the quota would flood the log; the counter
      // has every refusal.
      if (!this.#kvFullLogged)
        this.#log.warn(
          { key, usedBytes, growthBytes, quotaBytes: this.#quotaBytes },
          'KV quota reached: puts that grow KV are refused',
        );
      this.#kvFullLogged = true;
      throw errors.kvQuotaExceeded(key, usedBytes, growthBytes, this.#quotaBytes);
    }
    if (growthBytes > 0) this.#kvFullLogged = false;
    const op: StoreOp = {
      op: 'kv-put',
      key,
      value,
      flags: options.flags ?? 0,
      ...(options.cas === undefined ? {} : { cas: options.cas }),
      ...(options.lock === undefined ? {} : { lock: options.lock }),
    };
    // A put in flight counts until its event lands in the view, so concurrent puts cannot
    // overshoot the quota together (nor count twice once the view has them).
    const reservation = this.#reserveKv(key, Math.max(growthBytes, 0));
    try {
      // A plain put never fails in Consul. A shared store fails one that raced another agent's
      // write of the key (it keeps locks it has heard of): the view has that write now; again.
      const plain = options.cas === undefined && options.lock === undefined;
      return plain
        ? await retryCommit(async () => {
            const r = await this.#commitCas([op]);
            return r.ok ? r : undefined;
          })
        : await this.#commitCas([op]);
    } finally {
      this.#releaseKv(reservation);
    }
  }

  #reserveKv(key: string, bytes: number): KvReservation {
    const reservation = { key, bytes };
    const forKey = this.#kvReservations.get(key);
    if (forKey === undefined) this.#kvReservations.set(key, [reservation]);
    else forKey.push(reservation);
    this.#kvReservedBytes += bytes;
    return reservation;
  }

  /** Ends a reservation (once: later calls do nothing). */
  #releaseKv(reservation: KvReservation): void {
    const forKey = this.#kvReservations.get(reservation.key);
    const at = forKey?.indexOf(reservation) ?? -1;
    if (forKey === undefined || at < 0) return;
    forKey.splice(at, 1);
    if (forKey.length === 0) this.#kvReservations.delete(reservation.key);
    this.#kvReservedBytes -= reservation.bytes;
  }

  async kvDelete(
    key: string,
    options: { recursive?: boolean; cas?: number } = {},
  ): Promise<{ ok: boolean; index: number }> {
    if (options.recursive !== true) assertUserKey(key);
    if (options.recursive === true) {
      // Never let a recursive delete of "" reach the reserved agent keys.
      const ops: StoreOp[] = this.#view.kvList(key).map((e) => ({ op: 'kv-delete', key: e.key }));
      if (ops.length === 0) return { ok: true, index: this.#view.index };
      return this.#commitCas(ops);
    }
    const op: StoreOp = {
      op: 'kv-delete',
      key,
      ...(options.cas === undefined ? {} : { cas: options.cas }),
    };
    return this.#commitCas([op]);
  }

  /**
   * Ends the reservations of the puts whose events the view has just applied: their bytes are in
   * the view now (the oldest for the key first, as a key's events come in commit order).
   */
  onEvents(events: readonly StoreEvent[]): void {
    for (const e of events) {
      const first = e.type === 'kv-put' ? this.#kvReservations.get(e.entry.key)?.[0] : undefined;
      if (first !== undefined) this.#releaseKv(first);
    }
  }

  async #commitCas(ops: readonly StoreOp[]): Promise<{ ok: boolean; index: number }> {
    const r = await this.#store.commit(ops);
    return { ok: r.ok, index: r.index };
  }
}

function assertUserKey(key: string): void {
  if (key === '') throw errors.validation('key', 'must not be empty');
  if (hasControlChars(key)) throw errors.validation('key', NO_CONTROL_CHARS);
}
