/**
 * @module RegistryTxn: a transaction of KV and instance operations (Consul's /v1/txn), all or
 * nothing in one store commit. Ops are checked in order against the view (with the txn's own
 * earlier writes on top); the commit then carries a `kv-check` for every key the txn read or
 * wrote, so it fails if any of them moved since, and the txn runs again against the new view.
 */
import { errors } from '../core/errors.js';
import type { KvEntry } from '../core/types.js';
import { kvEntryBytes, RESERVED_KV_PREFIX, type CatalogView } from './catalog-view.js';
import { retryCommit } from './commit-retry.js';
import { instanceIdOf, type InstanceBuilder } from './instance-builder.js';
import type { CatalogStore, StoreOp } from './store/catalog-store.js';
import type { TxnError, TxnOp, TxnOutcome, TxnResult } from './txn-types.js';

export type { TxnError, TxnKvVerb, TxnOp, TxnOutcome, TxnResult } from './txn-types.js';

/** What a {@link RegistryTxn} reads, builds with and commits through. */
export interface RegistryTxnOptions {
  readonly view: CatalogView;
  readonly store: CatalogStore;
  readonly builder: InstanceBuilder;
  /** Bytes of KV keys and values together (the registry's KV quota). */
  readonly kvQuotaBytes: number;
  /** Whether a lock delay keeps `key` from a new holder now (registry-sessions.ts). */
  readonly lockDelayed?: (key: string) => boolean;
  /**
   * Runs a txn in the per-instance write queue of the instances it names (InstanceWriter's
   * `serial`), so it is ordered with the other writes of those instances. Default: at once.
   */
  readonly serialize?: <T>(ids: readonly string[], fn: () => Promise<T>) => Promise<T>;
}

/**
 * The instance ids `ops` name (a txn's place in their write queues). A registration without an
 * id gets a fresh one, which no other write can be queued on.
 */
function instanceIds(ops: readonly TxnOp[]): string[] {
  const ids: string[] = [];
  for (const op of ops) {
    if (op.type !== 'instance') continue;
    const id = 'registration' in op ? op.registration.id : op.id;
    if (id !== undefined) ids.push(id);
  }
  return ids;
}

/**
 * Store ops one txn may commit: etcd applies at most 128 in one transaction (its --max-txn-ops)
 * and splits larger commits, which would no longer be atomic. Consul's 64 ops stay within it,
 * unless a delete-tree of "" expands to many keys.
 */
const MAX_COMMIT_OPS = 128;

/** An index not known before the commit: the txn's own writes (filled in after it). */
const PENDING = -1;

/** What one evaluation produced: results (with PENDING indexes) or errors, and the store ops. */
interface Plan {
  readonly results: (
    TxnResult | { readonly type: 'instance-id'; readonly id: string; readonly opIndex: number }
  )[];
  readonly errors: TxnError[];
  readonly ops: StoreOp[];
}

/** Runs transactions against one registry's view and store. */
export class RegistryTxn {
  readonly #view: CatalogView;
  readonly #store: CatalogStore;
  readonly #builder: InstanceBuilder;
  readonly #kvQuotaBytes: number;
  readonly #lockDelayed: (key: string) => boolean;
  readonly #serialize: <T>(ids: readonly string[], fn: () => Promise<T>) => Promise<T>;

  constructor(options: RegistryTxnOptions) {
    this.#view = options.view;
    this.#store = options.store;
    this.#builder = options.builder;
    this.#kvQuotaBytes = options.kvQuotaBytes;
    this.#lockDelayed = options.lockDelayed ?? (() => false);
    this.#serialize = options.serialize ?? ((_ids, fn) => fn());
  }

  /**
   * Runs `ops` all or nothing. A txn of reads only is answered from the view (no commit). Throws
   * only what the store throws (STORE_UNAVAILABLE), or a validation error from building an
   * instance. A txn that names instances waits for their queued writes, and they for it.
   */
  async run(ops: readonly TxnOp[]): Promise<TxnOutcome> {
    const ids = instanceIds(ops);
    return ids.length === 0 ? this.#run(ops) : this.#serialize(ids, () => this.#run(ops));
  }

  #run(ops: readonly TxnOp[]): Promise<TxnOutcome> {
    return retryCommit(async (): Promise<TxnOutcome | undefined> => {
      const plan = this.#plan(ops);
      if (plan.errors.length > 0) return { ok: false, errors: plan.errors };
      this.#checkQuota(plan.ops);
      const writes = plan.ops.some((o) => o.op !== 'kv-check');
      let index = this.#view.index;
      if (writes) {
        const r = await this.#store.commit(plan.ops);
        // A key or instance moved since the view was read: plan again against the new view.
        if (!r.ok) return undefined;
        index = r.index;
      }
      const results = plan.results.flatMap((r): TxnResult[] => {
        if (r.type === 'instance-id') {
          // Gone when a later op of the txn deleted it (or another write did, since).
          const dto = this.#view.dto(r.id);
          return dto === undefined ? [] : [{ type: 'instance', instance: dto, opIndex: r.opIndex }];
        }
        if (r.type !== 'kv' || r.entry.modifyIndex !== PENDING) return [r];
        const e = r.entry;
        return [
          {
            type: 'kv',
            opIndex: r.opIndex,
            entry: {
              ...e,
              modifyIndex: index,
              createIndex: e.createIndex === PENDING ? index : e.createIndex,
            },
          },
        ];
      });
      return { ok: true, index, results };
    });
  }

  /** Throws KV_QUOTA_EXCEEDED when the txn's puts would grow KV past the quota. */
  #checkQuota(ops: readonly StoreOp[]): void {
    const sizes = new Map<string, number>();
    for (const op of ops) {
      if (op.op === 'kv-put') sizes.set(op.key, kvEntryBytes(op.key, op.value));
      else if (op.op === 'kv-delete') sizes.set(op.key, 0);
    }
    let growth = 0;
    for (const [key, bytes] of sizes) {
      const prev = this.#view.kvGet(key);
      growth += bytes - (prev === undefined ? 0 : kvEntryBytes(key, prev.value));
    }
    const used = this.#view.kvBytes;
    if (growth > 0 && used + growth > this.#kvQuotaBytes)
      throw errors.kvQuotaExceeded('(txn)', used, growth, this.#kvQuotaBytes);
  }

  #plan(ops: readonly TxnOp[]): Plan {
    const view = this.#view;
    /** KV as the txn sees it: the view plus its own writes (null: deleted). */
    const kv = new Map<string, KvEntry | null>();
    /** The index of each key as the view had it when first touched (0: absent). */
    const guards = new Map<string, number>();
    const read = (key: string): KvEntry | undefined => {
      if (!guards.has(key)) guards.set(key, view.kvGet(key)?.modifyIndex ?? 0);
      const own = kv.get(key);
      return own === undefined ? view.kvGet(key) : (own ?? undefined);
    };
    const tree = (prefix: string): KvEntry[] => {
      const out = new Map<string, KvEntry>();
      for (const e of view.kvList(prefix)) out.set(e.key, e);
      for (const [k, e] of kv) {
        if (!k.startsWith(prefix)) continue;
        if (e === null) out.delete(k);
        else out.set(k, e);
      }
      // Not guarded key by key: a tree may hold more keys than one commit compares (etcd: 128).
      return [...out.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    };
    const results: Plan['results'] = [];
    const failures: TxnError[] = [];
    const writes: StoreOp[] = [];
    /** The keys each range delete (by its position in `writes`) found. */
    const trees = new Map<number, readonly string[]>();
    const blank = (e: KvEntry): KvEntry => ({ ...e, value: new Uint8Array(0) });
    /**
     * Puts `value` at `key`; `lock` moves the key's lock (the store checks the session still
     * exists at commit), else the key keeps its holder and lock index (as a plain KV put).
     */
    const put = (
      key: string,
      value: Uint8Array,
      flags: number,
      lock?: { readonly session: string | undefined; readonly lockIndex: number },
    ): KvEntry => {
      const prev = read(key);
      const session = lock === undefined ? prev?.session : lock.session;
      const lockIndex = lock === undefined ? prev?.lockIndex : lock.lockIndex;
      const entry: KvEntry = {
        key,
        value,
        flags,
        createIndex: prev?.createIndex ?? PENDING,
        modifyIndex: PENDING,
        ...(session === undefined ? {} : { session }),
        ...(lockIndex === undefined ? {} : { lockIndex }),
      };
      kv.set(key, entry);
      writes.push({ op: 'kv-put', key, value, flags, ...(lock === undefined ? {} : { lock }) });
      return entry;
    };
    /** Instances as the txn sees them (null: deleted by it). */
    const instances = new Map<string, 'put' | null>();
    const instanceExists = (id: string): boolean => {
      const own = instances.get(id);
      return own === undefined ? view.get(id) !== undefined : own !== null;
    };

    ops.forEach((op, opIndex) => {
      const fail = (what: string): void => {
        failures.push({ opIndex, what });
      };
      if (op.type === 'refused') return fail(op.what);
      if (op.type === 'noop') return;
      if (op.type === 'kv') {
        const { key } = op;
        // The agent's own keys are no part of KV (catalog-view.ts); the parser refuses them too.
        if (key.startsWith(RESERVED_KV_PREFIX))
          return fail(`key ${JSON.stringify(key)} is reserved`);
        switch (op.verb) {
          case 'get': {
            const e = read(key);
            if (e === undefined) return fail(`key ${JSON.stringify(key)} doesn't exist`);
            results.push({ type: 'kv', entry: e, opIndex });
            return;
          }
          case 'get-tree':
            for (const e of tree(key)) results.push({ type: 'kv', entry: e, opIndex });
            return;
          case 'check-index': {
            const e = read(key);
            if (e === undefined) return fail(`key ${JSON.stringify(key)} doesn't exist`);
            if (e.modifyIndex !== op.index)
              return fail(`current modify index ${e.modifyIndex} != ${op.index ?? 0}`);
            results.push({ type: 'kv', entry: blank(e), opIndex });
            return;
          }
          case 'check-not-exists':
            if (read(key) !== undefined) return fail(`key ${JSON.stringify(key)} exists`);
            return;
          case 'set':
            results.push({
              type: 'kv',
              entry: blank(put(key, op.value ?? new Uint8Array(0), op.flags ?? 0)),
              opIndex,
            });
            return;
          case 'cas': {
            const e = read(key);
            const held = (op.index ?? 0) === 0 ? e === undefined : e?.modifyIndex === op.index;
            if (!held) return fail(`failed to set key ${JSON.stringify(key)}, index is stale`);
            results.push({
              type: 'kv',
              entry: blank(put(key, op.value ?? new Uint8Array(0), op.flags ?? 0)),
              opIndex,
            });
            return;
          }
          case 'lock': {
            // Consul's KVLock: a new holder when free (lock index + 1), the same holder updates.
            const session = op.session ?? '';
            if (view.session(session) === undefined)
              return fail(`invalid session ${JSON.stringify(session)}`);
            const e = read(key);
            let lockIndex = e?.lockIndex ?? 0;
            if (e?.session !== session) {
              if (e?.session !== undefined)
                return fail(`failed to lock key ${JSON.stringify(key)}, lock is already held`);
              if (this.#lockDelayed(key))
                return fail(`failed to lock key ${JSON.stringify(key)} due to lock delay`);
              lockIndex += 1;
            }
            const value = op.value ?? new Uint8Array(0);
            results.push({
              type: 'kv',
              entry: blank(put(key, value, op.flags ?? 0, { session, lockIndex })),
              opIndex,
            });
            return;
          }
          case 'unlock': {
            const e = read(key);
            if (e === undefined || e.session === undefined || e.session !== op.session)
              return fail(
                `failed to unlock key ${JSON.stringify(key)}, lock isn't held, or is held by another session`,
              );
            const value = op.value ?? new Uint8Array(0);
            const lock = { session: undefined, lockIndex: e.lockIndex ?? 0 };
            results.push({
              type: 'kv',
              entry: blank(put(key, value, op.flags ?? 0, lock)),
              opIndex,
            });
            return;
          }
          case 'check-session': {
            const e = read(key);
            if (e === undefined)
              return fail(`failed to check session, key ${JSON.stringify(key)} doesn't exist`);
            if (e.session !== op.session)
              return fail(
                `failed session check for key ${JSON.stringify(key)}, current session ${JSON.stringify(e.session ?? '')} != ${JSON.stringify(op.session ?? '')}`,
              );
            results.push({ type: 'kv', entry: blank(e), opIndex });
            return;
          }
          case 'delete':
            read(key);
            kv.set(key, null);
            writes.push({ op: 'kv-delete', key });
            return;
          case 'delete-cas': {
            const e = read(key);
            // Consul: a compare-and-delete of a key that is already gone succeeds.
            if (e !== undefined && e.modifyIndex !== op.index)
              return fail(`failed to delete key ${JSON.stringify(key)}, index is stale`);
            kv.set(key, null);
            writes.push({ op: 'kv-delete', key });
            return;
          }
          case 'delete-tree': {
            const keys = tree(key).map((e) => e.key);
            for (const k of keys) kv.set(k, null);
            // One range delete (any size); key by key for "" (a range over "" would reach the
            // agent's reserved keys), and see below for a put under the prefix after it.
            if (key === '') for (const k of keys) writes.push({ op: 'kv-delete', key: k });
            else {
              trees.set(writes.length, keys);
              writes.push({ op: 'kv-delete', key, recursive: true });
            }
            return;
          }
        }
      }
      // Instances: ops name them by id (Consul's service ID on this agent's node).
      if ('registration' in op) {
        const id = instanceIdOf(op.registration);
        const current = instances.get(id) === null ? undefined : view.get(id);
        if (op.verb === 'cas') {
          const at = current === undefined ? 0 : (view.dto(id)?.modifyIndex ?? 0);
          if ((op.index ?? 0) !== at)
            return fail(`failed to set service ${JSON.stringify(id)}, index is stale`);
        }
        const instance = this.#builder.build({ ...op.registration, id }, {});
        if (current !== undefined && current.service !== instance.service)
          return fail(
            `service ID ${JSON.stringify(id)} is taken by service ${JSON.stringify(current.service)}`,
          );
        instances.set(id, 'put');
        writes.push({ op: 'put-instance', instance });
        results.push({ type: 'instance-id', id, opIndex });
        return;
      }
      const { id } = op;
      if (op.verb === 'get') {
        const dto = instances.get(id) === undefined ? view.dto(id) : undefined;
        if (instances.get(id) === 'put') results.push({ type: 'instance-id', id, opIndex });
        else if (dto === undefined) return fail(`service ${JSON.stringify(id)} doesn't exist`);
        else results.push({ type: 'instance', instance: dto, opIndex });
        return;
      }
      if (op.verb === 'delete-cas' && instanceExists(id)) {
        if (instances.get(id) === 'put' || view.dto(id)?.modifyIndex !== op.index)
          return fail(`failed to delete service ${JSON.stringify(id)}, index is stale`);
      }
      if (instanceExists(id)) writes.push({ op: 'delete-instance', id });
      instances.set(id, null);
    });
    // etcd refuses a put inside a range deleted by the same transaction: such a range delete
    // goes key by key.
    const expanded = writes.flatMap((w, i): StoreOp[] => {
      const keys = trees.get(i);
      if (w.op !== 'kv-delete' || keys === undefined) return [w];
      const later = writes.slice(i + 1).some((x) => x.op === 'kv-put' && x.key.startsWith(w.key));
      return later ? keys.map((k): StoreOp => ({ op: 'kv-delete', key: k })) : [w];
    });
    const guarded = [...guards].map(([key, index]): StoreOp => ({ op: 'kv-check', key, index }));
    const all = [...guarded, ...expanded];
    if (all.length > MAX_COMMIT_OPS)
      failures.push({
        opIndex: 0,
        what: `the transaction touches ${all.length} keys; one store commit holds at most ${MAX_COMMIT_OPS}`,
      });
    return { results, errors: failures, ops: all };
  }
}
