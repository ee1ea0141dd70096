/**
 * @module EtcdCatalogStore: the catalog in etcd, for cluster mode. The etcd revision is the index;
 * one watch per agent turns etcd's events into store events for every local watcher.
 */
import { Etcd3, type IOptions, type Watcher } from 'etcd3';
import type { IDuplexStream, ILeaseKeepAliveRequest, ILeaseKeepAliveResponse } from 'etcd3';
import { ERROR_CODES, errors, isMeshError } from '../../../core/errors.js';
import { silentLogger, type Logger } from '../../../core/logger.js';
import type { CheckState, Instance, KvEntry } from '../../../core/types.js';
import type {
  CatalogStore,
  CommitResult,
  StoreEvent,
  StoreListener,
  StoreOp,
  StoreSnapshot,
  StoredInstance,
  StoreTtlLeases,
} from '../catalog-store.js';

export interface EtcdCatalogStoreOptions {
  /** Client URLs, e.g. ['http://127.0.0.1:2379']. */
  readonly endpoints: readonly string[];
  /** Every key lives under this prefix (several catalogs can share one etcd). */
  readonly prefix?: string;
  /** A commit that etcd has not answered in this long fails with STORE_UNAVAILABLE. */
  readonly commitTimeoutMs?: number;
  readonly logger?: Logger;
}

export const DEFAULT_ETCD_CATALOG_STORE_OPTIONS = Object.freeze({
  prefix: '/meshwork/',
  commitTimeoutMs: 5_000,
});

type RequestOp =
  | { request_put: { key: Buffer; value: Buffer; lease?: string } }
  | { request_delete_range: { key: Buffer; range_end?: Buffer } };

interface Compare {
  key: Buffer;
  target: 'Create' | 'Mod';
  result: 'Equal' | 'Greater';
  create_revision?: string;
  mod_revision?: string;
}

interface EtcdKv {
  key: Buffer;
  value: Buffer;
  create_revision: string;
  mod_revision: string;
  lease?: string;
}

/** etcd's default --max-txn-ops: a transaction holds at most this many compares, and requests. */
const MAX_TXN_OPS = 128;

interface TxnResult {
  succeeded: boolean;
  header: { revision: string };
  responses: { response_delete_range?: { deleted?: string } }[];
}

/** One commit's share of a transaction (see `EtcdCatalogStore.commit`). */
interface PreparedCommit {
  readonly compare: Compare[];
  readonly success: RequestOp[];
  readonly deadlines: readonly { key: string; ttlMs: number }[];
  puts: number;
  /** `i/<instance id>` and `k/<kv key>` it touches. */
  readonly keys: readonly string[];
  /** Sent in a transaction of its own (a recursive KV delete: a range over unknown keys). */
  readonly alone: boolean;
}

interface QueuedCommit extends PreparedCommit {
  resolve(result: CommitResult): void;
  reject(err: unknown): void;
}

/** What the watch has delivered about an instance: enough to shape and guard commits. */
interface KnownInstance {
  readonly checks: readonly string[];
  /** TTL checks: check id -> ttlMs. */
  readonly ttl: ReadonlyMap<string, number>;
  /** mod_revision of the instance key: a put from this agent compares it (no lost update). */
  readonly modRevision: number;
}

/** etcd lease TTLs are whole seconds; etcd raises anything below its minimum (about 2 s). */
export function leaseSeconds(ttlMs: number): number {
  return Math.max(1, Math.ceil(ttlMs / 1000));
}

function knownInstance(instance: Instance, modRevision: number): KnownInstance {
  const ttl = new Map<string, number>();
  for (const c of instance.checks) if (c.kind === 'ttl') ttl.set(c.id, c.ttlMs ?? 0);
  return { checks: instance.checks.map((c) => c.id), ttl, modRevision };
}

/** The byte after the last byte of `prefix`: etcd ranges are [key, range_end). */
function rangeEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if ((end[i] as number) < 0xff) {
      end[i] = (end[i] as number) + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

/**
 * Keys: `<prefix>i/<id>` the instance (JSON), `<prefix>c/<id>/<checkId>` a check state (JSON),
 * `<prefix>k/<key>` a KV entry (JSON with the value in base64 and the flags), `<prefix>t/<id>/
 * <checkId>` a TTL check's deadline: a key under a lease of the check's TTL, which heartbeats keep
 * alive and whose deletion by etcd is the expiry.
 */
export class EtcdCatalogStore implements CatalogStore, StoreTtlLeases {
  readonly kind = 'etcd';
  readonly ttlLeases: StoreTtlLeases = this;
  readonly #client: Etcd3;
  readonly #prefix: string;
  readonly #timeoutMs: number;
  readonly #log: Logger;
  readonly #listeners = new Set<StoreListener>();
  /** What the watch has delivered about each instance, to shape and guard commits. */
  readonly #instances = new Map<string, KnownInstance>();
  /** Live TTL keys (`<id>/<checkId>`) -> their lease id, as the watch delivered them. */
  readonly #leases = new Map<string, string>();
  readonly #expiryListeners = new Set<(instanceId: string, checkId: string) => void>();
  readonly #keeper: LeaseKeeper;
  #watcher: Watcher | undefined;
  /** Commits waiting for the transaction in flight to finish (group commit). */
  readonly #queue: QueuedCommit[] = [];
  #flushing = false;
  #applied = 0;
  readonly #waiters: { revision: number; resolve: () => void }[] = [];
  #closed = false;
  /** False from a failed commit until etcd answers again. */
  #reachable = true;
  /**
   * The watch is streaming. Writes wait for their watch event (read-your-writes), so without a
   * watch the agent is not ready even when etcd answers.
   */
  #watchConnected = false;

  constructor(options: EtcdCatalogStoreOptions) {
    if (options.endpoints.length === 0)
      throw errors.validation('endpoints', 'give at least one etcd endpoint');
    this.#prefix = options.prefix ?? DEFAULT_ETCD_CATALOG_STORE_OPTIONS.prefix;
    this.#timeoutMs = options.commitTimeoutMs ?? DEFAULT_ETCD_CATALOG_STORE_OPTIONS.commitTimeoutMs;
    this.#log = (options.logger ?? silentLogger).child({
      component: 'catalog-store',
      kind: 'etcd',
    });
    const clientOptions: IOptions = { hosts: [...options.endpoints] };
    this.#client = new Etcd3(clientOptions);
    this.#keeper = new LeaseKeeper(this.#client);
  }

  async open(): Promise<StoreSnapshot> {
    let res;
    try {
      res = await this.#client.kv.range({
        key: Buffer.from(this.#prefix),
        range_end: rangeEnd(Buffer.from(this.#prefix)),
      });
    } catch (err) {
      throw errors.storeUnavailable(`etcd unreachable: ${(err as Error).message}`, err);
    }
    const revision = Number(res.header.revision);
    const instances = new Map<string, StoredInstance>();
    const checkStates: CheckState[] = [];
    const kv: KvEntry[] = [];
    const stateRevisions = new Map<string, number>();
    for (const item of res.kvs as EtcdKv[]) {
      const rest = item.key.toString('utf8').slice(this.#prefix.length);
      if (rest.startsWith('t/')) {
        if (item.lease !== undefined) this.#leases.set(rest.slice(2), item.lease);
        continue;
      }
      const parsed = this.#parse(item);
      if (parsed === undefined) continue;
      if (parsed.type === 'instance') {
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
    for (const item of res.kvs as EtcdKv[]) {
      const s = instances.get(item.key.toString('utf8').slice(this.#prefix.length + 2));
      if (s !== undefined && item.key.toString('utf8').startsWith(`${this.#prefix}i/`))
        this.#instances.set(s.instance.id, knownInstance(s.instance, Number(item.mod_revision)));
    }
    this.#applied = revision;
    await this.#startWatch(revision + 1);
    this.#log.info(
      { revision, instances: instances.size, keys: kv.length },
      'catalog store opened',
    );
    return {
      index: Math.max(revision, 1),
      instances: [...instances.values()],
      checkStates: checkStates.filter((s) => instances.has(s.instanceId)),
      kv,
    };
  }

  available(): boolean {
    return !this.#closed && this.#reachable && this.#watchConnected;
  }

  subscribe(listener: StoreListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Group commit: while one transaction is on its way to etcd, the commits that arrive meanwhile
   * wait and then go together in the next one (each gRPC call costs far more CPU than its
   * operations). Commits touching the same instance or KV key go in separate transactions, in
   * order, since etcd refuses a key twice in one.
   */
  async commit(ops: readonly StoreOp[]): Promise<CommitResult> {
    if (this.#closed) throw errors.storeUnavailable('store is closed');
    let result: CommitResult = { ok: true, index: Math.max(this.#applied, 1) };
    for (const chunk of this.#chunks(ops)) {
      result = await this.#commitChunk(chunk);
      if (!result.ok) return result;
    }
    return result;
  }

  /**
   * Splits a commit too large for one etcd transaction (more than its --max-txn-ops, e.g. an
   * `apply` of a hundred instances) into consecutive ones. Such a commit is then not atomic: a
   * reader may see part of it, and a failed compare in a later part leaves the earlier parts
   * applied (the registry's callers re-read and retry, and `apply` converges).
   */
  #chunks(ops: readonly StoreOp[]): (readonly StoreOp[])[] {
    const size = (u: PreparedCommit): number =>
      Math.max(u.compare.length, u.success.length + u.deadlines.length);
    if (ops.length <= 1 || size(this.#prepare(ops)) <= MAX_TXN_OPS) return [ops];
    const chunks: StoreOp[][] = [];
    let current: StoreOp[] = [];
    let used = 0;
    for (const op of ops) {
      const n = size(this.#prepare([op]));
      if (current.length > 0 && used + n > MAX_TXN_OPS) {
        chunks.push(current);
        current = [];
        used = 0;
      }
      current.push(op);
      used += n;
    }
    chunks.push(current);
    return chunks;
  }

  async #commitChunk(ops: readonly StoreOp[]): Promise<CommitResult> {
    const unit = this.#prepare(ops);
    if (unit.success.length === 0) return { ok: true, index: Math.max(this.#applied, 1) };
    try {
      for (const d of unit.deadlines) {
        const lease = await this.#grant(d.ttlMs);
        unit.success.push({
          request_put: { key: Buffer.from(d.key), value: Buffer.from(''), lease },
        });
        unit.puts++;
      }
    } catch (err) {
      throw this.#unreachable(err);
    }
    return new Promise<CommitResult>((resolve, reject) => {
      this.#queue.push({ ...unit, resolve, reject });
      if (!this.#flushing) void this.#flush();
    });
  }

  /** Turns store ops into one transaction's compares and requests (no I/O). */
  #prepare(ops: readonly StoreOp[]): PreparedCommit {
    const compare: Compare[] = [];
    const success: RequestOp[] = [];
    /** TTL deadlines to arm: a lease each, granted before the transaction. */
    const deadlines: { key: string; ttlMs: number }[] = [];
    let puts = 0;
    /** What the commit touches, so that two commits on one key never share a transaction. */
    const keys: string[] = [];
    let alone = false;
    for (const op of ops) {
      switch (op.op) {
        case 'put-instance': {
          const { instance } = op;
          keys.push(`i/${instance.id}`);
          const key = this.#instanceKey(instance.id);
          const known = this.#instances.get(instance.id);
          // Another agent may have written the instance since our view heard of it: compare, so
          // a registration never silently overwrites one this agent has not seen.
          compare.push(
            known === undefined
              ? this.#casCompare(Buffer.from(key), 0)
              : this.#casCompare(Buffer.from(key), known.modRevision),
          );
          success.push(this.#put(key, JSON.stringify(instance)));
          puts++;
          const wanted = new Set(instance.checks.map((c) => c.id));
          for (const checkId of known?.checks ?? []) {
            if (!wanted.has(checkId))
              success.push(this.#delete(this.#checkKey(instance.id, checkId)));
          }
          for (const checkId of known?.ttl.keys() ?? []) {
            const def = instance.checks.find((c) => c.id === checkId);
            if (def?.kind !== 'ttl') success.push(this.#delete(this.#ttlKey(instance.id, checkId)));
          }
          for (const c of instance.checks) {
            if (c.kind !== 'ttl') continue;
            const ttlMs = c.ttlMs ?? 0;
            const unchanged =
              known?.ttl.get(c.id) === ttlMs && this.#leases.has(`${instance.id}/${c.id}`);
            if (!unchanged) deadlines.push({ key: this.#ttlKey(instance.id, c.id), ttlMs });
          }
          break;
        }
        case 'delete-instance':
          keys.push(`i/${op.id}`);
          success.push(this.#delete(this.#instanceKey(op.id)));
          success.push(this.#deletePrefix(`${this.#prefix}c/${op.id}/`));
          success.push(this.#deletePrefix(`${this.#prefix}t/${op.id}/`));
          break;
        case 'put-check-state': {
          // A late state for a deleted instance or check is dropped (CatalogStore contract).
          const checks = this.#instances.get(op.state.instanceId)?.checks;
          if (checks === undefined || !checks.includes(op.state.checkId)) break;
          keys.push(`i/${op.state.instanceId}`);
          success.push(
            this.#put(
              this.#checkKey(op.state.instanceId, op.state.checkId),
              JSON.stringify(op.state),
            ),
          );
          puts++;
          break;
        }
        case 'kv-put': {
          keys.push(`k/${op.key}`);
          const key = Buffer.from(this.#kvKey(op.key));
          if (op.cas !== undefined) compare.push(this.#casCompare(key, op.cas));
          success.push({
            request_put: {
              key,
              value: Buffer.from(
                JSON.stringify({ v: Buffer.from(op.value).toString('base64'), f: op.flags }),
              ),
            },
          });
          puts++;
          break;
        }
        case 'kv-delete': {
          keys.push(`k/${op.key}`);
          if (op.recursive === true) {
            alone = true; // a range: it may cover keys of any other commit
            success.push(this.#deletePrefix(this.#kvKey(op.key)));
          } else {
            const key = Buffer.from(this.#kvKey(op.key));
            if (op.cas !== undefined) compare.push(this.#casCompare(key, op.cas));
            success.push({ request_delete_range: { key } });
          }
          break;
        }
      }
    }
    coalesce(success);
    return { compare, success, deadlines, puts, keys, alone };
  }

  /** Sends queued commits, as many per transaction as fit, until the queue is empty. */
  async #flush(): Promise<void> {
    this.#flushing = true;
    try {
      while (this.#queue.length > 0) {
        const batch = this.#nextBatch();
        let res;
        try {
          res = await this.#txn(
            batch.flatMap((u) => u.compare),
            batch.flatMap((u) => u.success),
          );
        } catch (err) {
          for (const u of batch) u.reject(err);
          continue;
        }
        if (res.succeeded || batch.length === 1) {
          this.#settle(batch, res);
          continue;
        }
        // Some commit's compare failed, and a failed transaction does not say whose: send each
        // on its own (rare: only when another agent wrote the same instance or KV key).
        for (const u of batch) {
          try {
            this.#settle([u], await this.#txn(u.compare, u.success));
          } catch (err) {
            u.reject(err);
          }
        }
      }
    } finally {
      this.#flushing = false;
    }
  }

  /**
   * Takes the queue's head and every following commit that fits etcd's limit on operations per
   * transaction and touches none of the keys already taken.
   */
  #nextBatch(): QueuedCommit[] {
    const first = this.#queue.shift() as QueuedCommit;
    const batch = [first];
    if (first.alone) return batch;
    const keys = new Set(first.keys);
    let compares = first.compare.length;
    let requests = first.success.length;
    for (;;) {
      const next = this.#queue[0];
      if (next === undefined || next.alone) break;
      if (compares + next.compare.length > MAX_TXN_OPS) break;
      if (requests + next.success.length > MAX_TXN_OPS) break;
      if (next.keys.some((k) => keys.has(k))) break;
      this.#queue.shift();
      batch.push(next);
      for (const k of next.keys) keys.add(k);
      compares += next.compare.length;
      requests += next.success.length;
    }
    return batch;
  }

  /** One transaction, with the commit timeout; a failure to reach etcd is STORE_UNAVAILABLE. */
  async #txn(compare: Compare[], success: RequestOp[]): Promise<TxnResult> {
    let res: TxnResult;
    try {
      res = (await withTimeout(
        this.#client.kv.txn({ compare, success, failure: [] }),
        this.#timeoutMs,
      )) as TxnResult;
    } catch (err) {
      throw this.#unreachable(err);
    }
    this.#setReachable(true);
    return res;
  }

  #unreachable(err: unknown): Error {
    this.#setReachable(false, err);
    return errors.storeUnavailable(
      `etcd did not commit: ${(err as Error).message}; reads are served from the last-known catalog`,
      err,
    );
  }

  /** Answers the commits of one transaction once the watch has delivered what it wrote. */
  #settle(batch: readonly QueuedCommit[], res: TxnResult): void {
    const revision = Number(res.header.revision);
    if (!res.succeeded) {
      // Whatever made a compare fail is at or below this revision: let the listeners hear of it
      // first, so the caller retries against a view that has it (CatalogStore contract).
      void this.#appliedAt(revision).then(() => {
        for (const u of batch) u.resolve({ ok: false, index: Math.max(this.#applied, revision) });
      });
      return;
    }
    let changed = batch.reduce((n, u) => n + u.puts, 0);
    for (const r of res.responses) changed += Number(r.response_delete_range?.deleted ?? 0);
    // Only a txn that changed something has a revision of its own to wait for (deletes of
    // absent keys create none, and the current revision may belong to keys outside our prefix).
    if (changed === 0) {
      for (const u of batch) u.resolve({ ok: true, index: Math.max(this.#applied, 1) });
      return;
    }
    void this.#appliedAt(revision).then(() => {
      for (const u of batch) u.resolve({ ok: true, index: revision });
    });
  }

  // ---- TTL deadlines (StoreTtlLeases) -------------------------------------------------------

  async keepAlive(instanceId: string, onlyCheckId?: string): Promise<void> {
    if (this.#closed) throw errors.storeUnavailable('store is closed');
    const ttl = this.#instances.get(instanceId)?.ttl;
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
      this.#setReachable(false, err);
      throw errors.storeUnavailable(
        `etcd did not take the heartbeat: ${(err as Error).message}`,
        err,
      );
    }
    this.#setReachable(true);
  }

  async renew(instanceId: string, checkId: string): Promise<void> {
    const ttlMs = this.#instances.get(instanceId)?.ttl.get(checkId);
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

  async #grant(ttlMs: number): Promise<string> {
    const res = await withTimeout(
      this.#client.leaseClient.leaseGrant({ TTL: leaseSeconds(ttlMs) }),
      this.#timeoutMs,
    );
    return res.ID;
  }

  /** Puts a TTL key under a new lease, if the instance still exists; waits for its event. */
  async #arm(instanceId: string, checkId: string, ttlMs: number): Promise<void> {
    const lease = await this.#grant(ttlMs);
    const res = await withTimeout(
      this.#client.kv.txn({
        compare: [
          {
            key: Buffer.from(this.#instanceKey(instanceId)),
            target: 'Create',
            result: 'Greater',
            create_revision: '0',
          },
        ],
        success: [
          {
            request_put: {
              key: Buffer.from(this.#ttlKey(instanceId, checkId)),
              value: Buffer.from(''),
              lease,
            },
          },
        ],
        failure: [],
      }),
      this.#timeoutMs,
    );
    if (res.succeeded) await this.#appliedAt(Number(res.header.revision));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.clear();
    this.#expiryListeners.clear();
    this.#keeper.close();
    await this.#watcher?.cancel().catch(() => undefined);
    this.#client.close();
    for (const w of this.#waiters.splice(0)) w.resolve();
  }

  // ---- internals ---------------------------------------------------------------------------

  #instanceKey(id: string): string {
    return `${this.#prefix}i/${id}`;
  }

  #checkKey(id: string, checkId: string): string {
    return `${this.#prefix}c/${id}/${checkId}`;
  }

  #ttlKey(id: string, checkId: string): string {
    return `${this.#prefix}t/${id}/${checkId}`;
  }

  #kvKey(key: string): string {
    return `${this.#prefix}k/${key}`;
  }

  #put(key: string, value: string): RequestOp {
    return { request_put: { key: Buffer.from(key), value: Buffer.from(value) } };
  }

  #delete(key: string): RequestOp {
    return { request_delete_range: { key: Buffer.from(key) } };
  }

  #deletePrefix(prefix: string): RequestOp {
    const key = Buffer.from(prefix);
    return { request_delete_range: { key, range_end: rangeEnd(key) } };
  }

  /** cas 0: the key must not exist (create_revision 0); cas N: its mod_revision must be N. */
  #casCompare(key: Buffer, cas: number): Compare {
    return cas === 0
      ? { key, target: 'Create', result: 'Equal', create_revision: '0' }
      : { key, target: 'Mod', result: 'Equal', mod_revision: String(cas) };
  }

  #setReachable(reachable: boolean, err?: unknown): void {
    if (reachable === this.#reachable) return;
    this.#reachable = reachable;
    if (reachable) {
      this.#log.info({ applied: this.#applied }, 'etcd reachable again');
      return;
    }
    this.#log.warn(
      { err: (err as Error | undefined)?.message },
      'etcd unreachable; refusing writes',
    );
    this.#probeUntilReachable();
  }

  /** While unreachable, asks etcd once a second for one key, and recovers on the first answer. */
  #probeUntilReachable(): void {
    const probe = (): void => {
      if (this.#closed || this.#reachable) return;
      withTimeout(this.#client.kv.range({ key: Buffer.from(this.#prefix), limit: 1 }), 1_000).then(
        () => this.#setReachable(true),
        () => setTimeout(probe, 1_000).unref(),
      );
    };
    setTimeout(probe, 1_000).unref();
  }

  #appliedAt(revision: number): Promise<void> {
    if (this.#applied >= revision || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ revision, resolve }));
  }

  async #startWatch(fromRevision: number): Promise<void> {
    const watcher = await this.#client
      .watch()
      .prefix(this.#prefix)
      .startRevision(String(fromRevision))
      .create();
    this.#watcher = watcher;
    watcher.on('data', (res) => this.#onWatch(res.events as { type: string; kv: EtcdKv }[]));
    watcher.on('error', (err) => this.#log.error({ err: err.message }, 'etcd watch failed'));
    this.#watchConnected = true;
    watcher.on('disconnected', (err) => {
      if (this.#watchConnected) this.#log.warn({ err: err.message }, 'etcd watch lost; resuming');
      this.#watchConnected = false;
    });
    watcher.on('connected', () => {
      if (!this.#watchConnected) this.#log.info({ applied: this.#applied }, 'etcd watch resumed');
      this.#watchConnected = true;
    });
  }

  #onWatch(raw: readonly { type: string; kv: EtcdKv }[]): void {
    // Events of one txn share a revision: deliver them together, revision by revision.
    const expired: [string, string][] = [];
    let batch: StoreEvent[] = [];
    let batchRevision = 0;
    const flush = (): void => {
      if (batch.length > 0) for (const l of this.#listeners) l(batch);
      if (batchRevision > this.#applied) this.#applied = batchRevision;
      batch = [];
    };
    for (const e of raw) {
      const revision = Number(e.kv.mod_revision);
      if (revision !== batchRevision) {
        flush();
        batchRevision = revision;
      }
      const rest = e.kv.key.toString('utf8').slice(this.#prefix.length);
      if (rest.startsWith('t/')) {
        const lapsed = this.#onTtlKey(e.type, rest.slice(2), e.kv);
        if (lapsed !== undefined) expired.push(lapsed);
        continue;
      }
      const event = this.#toEvent(e.type, e.kv, revision);
      if (event !== undefined) batch.push(event);
    }
    flush();
    for (const [id, checkId] of expired) for (const l of this.#expiryListeners) l(id, checkId);
    const ready = this.#waiters.filter((w) => w.revision <= this.#applied);
    if (ready.length > 0) {
      const rest = this.#waiters.filter((w) => w.revision > this.#applied);
      this.#waiters.length = 0;
      this.#waiters.push(...rest);
      for (const w of ready) w.resolve();
    }
  }

  /**
   * Follows a TTL key. Answers [instanceId, checkId] when its deletion is an expiry: the instance
   * still has that TTL check (a deleted instance or a changed check removes its key in the same
   * transaction, after the instance key, so the map already says so).
   */
  #onTtlKey(type: string, rest: string, item: EtcdKv): [string, string] | undefined {
    if (type !== 'Delete' && type !== 'delete') {
      if (item.lease !== undefined) this.#leases.set(rest, item.lease);
      return undefined;
    }
    this.#leases.delete(rest);
    const slash = rest.indexOf('/');
    const id = rest.slice(0, slash);
    const checkId = rest.slice(slash + 1);
    return this.#instances.get(id)?.ttl.has(checkId) === true ? [id, checkId] : undefined;
  }

  #toEvent(type: string, item: EtcdKv, revision: number): StoreEvent | undefined {
    const key = item.key.toString('utf8');
    if (!key.startsWith(this.#prefix)) return undefined;
    const rest = key.slice(this.#prefix.length);
    if (type === 'Delete' || type === 'delete') {
      if (rest.startsWith('i/')) {
        const id = rest.slice(2);
        this.#instances.delete(id);
        return { type: 'instance-delete', index: revision, id };
      }
      if (rest.startsWith('k/')) return { type: 'kv-delete', index: revision, key: rest.slice(2) };
      return undefined; // check states go with their instance or check definition
    }
    const parsed = this.#parse(item);
    if (parsed === undefined) return undefined;
    if (parsed.type === 'instance') {
      this.#instances.set(parsed.instance.id, knownInstance(parsed.instance, revision));
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

  #parse(
    item: EtcdKv,
  ):
    | { type: 'instance'; instance: Instance }
    | { type: 'check'; state: CheckState }
    | { type: 'kv'; entry: KvEntry }
    | undefined {
    const rest = item.key.toString('utf8').slice(this.#prefix.length);
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
    } catch (err) {
      this.#log.error(
        { key: item.key.toString('utf8'), err: (err as Error).message },
        'unreadable etcd key skipped',
      );
    }
    return undefined;
  }
}

/**
 * etcd refuses a txn that touches one key twice; within a commit the last op on a key wins, and
 * a prefix delete replaces earlier ops on keys under it.
 */
function coalesce(ops: RequestOp[]): void {
  const keyOf = (op: RequestOp): string =>
    ('request_put' in op ? op.request_put.key : op.request_delete_range.key).toString('latin1');
  for (let i = ops.length - 1; i >= 0; i--) {
    const later = ops.slice(i + 1);
    const op = ops[i] as RequestOp;
    const key = keyOf(op);
    const shadowed = later.some((l) => {
      if (keyOf(l) === key) return true;
      if ('request_delete_range' in l && l.request_delete_range.range_end !== undefined) {
        const start = l.request_delete_range.key.toString('latin1');
        const end = l.request_delete_range.range_end.toString('latin1');
        return key >= start && key < end;
      }
      return false;
    });
    if (shadowed) ops.splice(i, 1);
  }
}

/**
 * Heartbeats as etcd lease keep-alives over one long-lived stream: a keep-alive is one small
 * message, not a write (no revision, no watch event), so heartbeats cost etcd almost nothing.
 */
class LeaseKeeper {
  readonly #client: Etcd3;
  #stream: Promise<IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>> | undefined;
  /** Lease id -> callers waiting for its answer, in request order. */
  readonly #pending = new Map<string, { resolve(ttl: number): void; reject(e: Error): void }[]>();

  constructor(client: Etcd3) {
    this.#client = client;
  }

  /** Resolves with the lease's remaining TTL in seconds; 0 or less when it has expired. */
  async keepAlive(lease: string): Promise<number> {
    const stream = await this.#open();
    return new Promise<number>((resolve, reject) => {
      let waiting = this.#pending.get(lease);
      if (waiting === undefined) this.#pending.set(lease, (waiting = []));
      waiting.push({ resolve, reject });
      stream.write({ ID: lease });
    });
  }

  close(): void {
    void this.#stream?.then((s) => s.end()).catch(() => undefined);
    this.#fail(new Error('store is closed'));
  }

  #open(): Promise<IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>> {
    if (this.#stream !== undefined) return this.#stream;
    const opening = this.#client.leaseClient.leaseKeepAlive().then((stream) => {
      stream.on('data', (res: ILeaseKeepAliveResponse) => {
        const waiting = this.#pending.get(String(res.ID));
        const next = waiting?.shift();
        if (waiting?.length === 0) this.#pending.delete(String(res.ID));
        next?.resolve(Number(res.TTL));
      });
      stream.on('error', (err: Error) => this.#fail(err, opening));
      stream.on('end', () => this.#fail(new Error('keep-alive stream ended'), opening));
      return stream;
    });
    opening.catch(() => {
      if (this.#stream === opening) this.#stream = undefined;
    });
    this.#stream = opening;
    return opening;
  }

  /** Fails every waiting keep-alive; the next one opens a new stream. */
  #fail(err: Error, stream?: Promise<unknown>): void {
    if (stream !== undefined && this.#stream !== stream) return;
    this.#stream = undefined;
    const pending = [...this.#pending.values()].flat();
    this.#pending.clear();
    for (const p of pending) p.reject(err);
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e as Error);
      },
    );
  });
}

export function createEtcdCatalogStore(options: EtcdCatalogStoreOptions): EtcdCatalogStore {
  return new EtcdCatalogStore(options);
}
