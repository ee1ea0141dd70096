/** @module EtcdCommitPlanner: a commit's store ops as etcd transaction compares and requests. */
import { isDeepStrictEqual } from 'node:util';
import { meshResourceKey } from '../../../protocol/mesh/resource.js';
import type { StoreOp } from '../catalog-store.js';
import {
  kvValue,
  type KnownInstance,
  type KnownLocks,
  type KnownMesh,
} from './etcd-event-decoder.js';
import { rangeEnd, type EtcdKeyLayout } from './etcd-key-layout.js';

/** A request in an etcd transaction, as the etcd3 client's `kv.txn` takes it. */
export type RequestOp =
  | { request_put: { key: Buffer; value: Buffer; lease?: string } }
  | { request_delete_range: { key: Buffer; range_end?: Buffer } };

/** A compare in an etcd transaction, as the etcd3 client's `kv.txn` takes it. */
export interface Compare {
  key: Buffer;
  target: 'Create' | 'Mod';
  result: 'Equal' | 'Greater';
  create_revision?: string;
  mod_revision?: string;
}

/** etcd's default --max-txn-ops: a transaction holds at most this many compares, and requests. */
export const MAX_TXN_OPS = 128;

/** One commit's share of a transaction: what group commit sends (see `EtcdGroupCommit`). */
export interface EtcdCommitPlan {
  readonly compare: Compare[];
  readonly success: RequestOp[];
  /** TTL deadlines to arm: a lease each, granted before the transaction. */
  readonly deadlines: readonly { key: string; ttlMs: number }[];
  /** Requests that change a key for sure (puts); deletes count only once etcd says so. */
  puts: number;
  /** `i/<instance id>`, `k/<kv key>`, `r/<mesh key>`, `s/<session>` and `g/mesh` it touches. */
  readonly keys: readonly string[];
  /** Sent in a transaction of its own (a recursive KV delete: a range over unknown keys). */
  readonly alone: boolean;
}

/** What a plan reads about the catalog: the watch's view, never etcd itself (no I/O). */
export interface EtcdCommitPlannerOptions {
  readonly layout: EtcdKeyLayout;
  /** What the watch has delivered about each instance. */
  readonly known: ReadonlyMap<string, KnownInstance>;
  /** What the watch has delivered about the mesh resources. */
  readonly mesh: KnownMesh;
  /** What the watch has delivered about the sessions and the KV entries' locks. */
  readonly locks: KnownLocks;
  /** Whether a TTL check's deadline is armed, as the watch delivered it. */
  leaseAlive(instanceId: string, checkId: string): boolean;
}

/**
 * Plans etcd transactions from store ops. Pure apart from reading the watch's view: the same ops
 * against the same view give the same plan.
 */
export class EtcdCommitPlanner {
  readonly #layout: EtcdKeyLayout;
  readonly #known: ReadonlyMap<string, KnownInstance>;
  readonly #mesh: KnownMesh;
  readonly #locks: KnownLocks;
  readonly #leaseAlive: (instanceId: string, checkId: string) => boolean;

  constructor(options: EtcdCommitPlannerOptions) {
    this.#layout = options.layout;
    this.#known = options.known;
    this.#mesh = options.mesh;
    this.#locks = options.locks;
    this.#leaseAlive = (instanceId, checkId) => options.leaseAlive(instanceId, checkId);
  }

  /**
   * Splits a commit too large for one etcd transaction (more than its --max-txn-ops, e.g. an
   * `apply` of a hundred instances) into consecutive ones. Such a commit is then not atomic: a
   * reader may see part of it, and a failed compare in a later part leaves the earlier parts
   * applied (the registry's callers re-read and retry, and `apply` converges).
   */
  split(ops: readonly StoreOp[]): (readonly StoreOp[])[] {
    const size = (u: EtcdCommitPlan): number =>
      Math.max(u.compare.length, u.success.length + u.deadlines.length);
    if (ops.length <= 1 || size(this.plan(ops)) <= MAX_TXN_OPS) return [ops];
    const chunks: StoreOp[][] = [];
    let current: StoreOp[] = [];
    let used = 0;
    for (const op of ops) {
      const n = size(this.plan([op]));
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

  /** Turns store ops into one transaction's compares and requests (no I/O). */
  plan(ops: readonly StoreOp[]): EtcdCommitPlan {
    const layout = this.#layout;
    const compare: Compare[] = [];
    const success: RequestOp[] = [];
    const deadlines: { key: string; ttlMs: number }[] = [];
    let puts = 0;
    /** What the commit touches, so that two commits on one key never share a transaction. */
    const keys: string[] = [];
    let alone = false;
    let meshChanged = false;
    for (const op of ops) {
      switch (op.op) {
        case 'put-instance': {
          const { instance } = op;
          keys.push(`i/${instance.id}`);
          const key = layout.instance(instance.id);
          const known = this.#known.get(instance.id);
          // Another agent may have written the instance since our view heard of it: compare, so
          // a registration never silently overwrites one this agent has not seen.
          compare.push(
            known === undefined
              ? casCompare(Buffer.from(key), 0)
              : casCompare(Buffer.from(key), known.modRevision),
          );
          success.push(putRequest(key, JSON.stringify(instance)));
          puts++;
          const wanted = new Set(instance.checks.map((c) => c.id));
          for (const checkId of known?.checks ?? []) {
            if (!wanted.has(checkId))
              success.push(deleteRequest(layout.check(instance.id, checkId)));
          }
          for (const checkId of known?.ttl.keys() ?? []) {
            const def = instance.checks.find((c) => c.id === checkId);
            if (def?.kind !== 'ttl') success.push(deleteRequest(layout.ttl(instance.id, checkId)));
          }
          for (const c of instance.checks) {
            if (c.kind !== 'ttl') continue;
            const ttlMs = c.ttlMs ?? 0;
            const unchanged = known?.ttl.get(c.id) === ttlMs && this.#leaseAlive(instance.id, c.id);
            if (!unchanged) deadlines.push({ key: layout.ttl(instance.id, c.id), ttlMs });
          }
          break;
        }
        case 'delete-instance':
          keys.push(`i/${op.id}`);
          success.push(deleteRequest(layout.instance(op.id)));
          success.push(deletePrefixRequest(layout.checks(op.id)));
          success.push(deletePrefixRequest(layout.ttls(op.id)));
          break;
        case 'put-check-state': {
          // A late state for a deleted instance or check is dropped (CatalogStore contract).
          const checks = this.#known.get(op.state.instanceId)?.checks;
          if (checks === undefined || !checks.includes(op.state.checkId)) break;
          keys.push(`i/${op.state.instanceId}`);
          success.push(
            putRequest(
              layout.check(op.state.instanceId, op.state.checkId),
              JSON.stringify(op.state),
            ),
          );
          puts++;
          break;
        }
        case 'kv-put': {
          keys.push(`k/${op.key}`);
          const key = Buffer.from(layout.kv(op.key));
          const current = this.#locks.kv.get(op.key);
          // Without cas the put still compares what the watch delivered: it keeps the lock it
          // found, and must not drop one another agent took meanwhile (CatalogStore contract).
          // The agent's own keys (NUL-prefixed) are never locked: they are written blind.
          if (op.cas !== undefined) compare.push(casCompare(key, op.cas));
          else if (!op.key.startsWith('\u0000'))
            compare.push(casCompare(key, current?.modifyIndex ?? 0));
          const lock = op.lock ?? { session: current?.session, lockIndex: current?.lockIndex ?? 0 };
          const holder = op.lock?.session;
          if (holder !== undefined) {
            // An acquire: its session must exist, and rewriting the session's key makes a
            // concurrent end of the session (which compares it) fail and look again.
            const known = this.#locks.sessions.get(holder);
            keys.push(`s/${holder}`);
            const sessionKey = Buffer.from(layout.session(holder));
            compare.push(
              known === undefined
                ? { key: sessionKey, target: 'Create', result: 'Greater', create_revision: '0' }
                : casCompare(sessionKey, known.modRevision),
            );
            if (known !== undefined)
              success.push(putRequest(layout.session(holder), JSON.stringify(known.session)));
          }
          success.push({
            request_put: { key, value: kvValue(op.value, op.flags, lock.session, lock.lockIndex) },
          });
          puts++;
          break;
        }
        case 'put-session': {
          const { session } = op;
          keys.push(`s/${session.id}`);
          const key = layout.session(session.id);
          compare.push(casCompare(Buffer.from(key), 0));
          success.push(putRequest(key, JSON.stringify(session)));
          puts++;
          if (session.ttlMs > 0)
            deadlines.push({ key: layout.sessionDeadline(session.id), ttlMs: session.ttlMs * 2 });
          break;
        }
        case 'delete-session': {
          const known = this.#locks.sessions.get(op.id);
          if (known === undefined) break;
          keys.push(`s/${op.id}`);
          compare.push(casCompare(Buffer.from(layout.session(op.id)), known.modRevision));
          success.push(deleteRequest(layout.session(op.id)));
          success.push(deleteRequest(layout.sessionDeadline(op.id)));
          for (const held of this.#locks.kv.values()) {
            if (held.session !== op.id) continue;
            keys.push(`k/${held.key}`);
            const key = layout.kv(held.key);
            compare.push(casCompare(Buffer.from(key), held.modifyIndex));
            if (known.session.behavior === 'delete') success.push(deleteRequest(key));
            else {
              success.push({
                request_put: {
                  key: Buffer.from(key),
                  value: kvValue(held.value, held.flags, undefined, held.lockIndex),
                },
              });
              puts++;
            }
          }
          break;
        }
        case 'kv-delete': {
          keys.push(`k/${op.key}`);
          if (op.recursive === true) {
            alone = true; // a range: it may cover keys of any other commit
            success.push(deletePrefixRequest(layout.kv(op.key)));
          } else {
            const key = Buffer.from(layout.kv(op.key));
            if (op.cas !== undefined) compare.push(casCompare(key, op.cas));
            success.push({ request_delete_range: { key } });
          }
          break;
        }
        case 'kv-check':
          keys.push(`k/${op.key}`);
          compare.push(casCompare(Buffer.from(layout.kv(op.key)), op.index));
          break;
        case 'put-mesh-resource': {
          const key = meshResourceKey(op.resource);
          // Equal to what the watch delivered: nothing to write (CatalogStore contract).
          if (isDeepStrictEqual(this.#mesh.resources.get(key), op.resource)) break;
          keys.push(`r/${key}`);
          success.push(putRequest(layout.meshResource(key), JSON.stringify(op.resource)));
          puts++;
          meshChanged = true;
          break;
        }
        case 'delete-mesh-resource': {
          if (!this.#mesh.resources.has(op.key)) break;
          keys.push(`r/${op.key}`);
          success.push(deleteRequest(layout.meshResource(op.key)));
          meshChanged = true;
          break;
        }
      }
    }
    if (meshChanged) {
      // The writer checked the mesh set as its view has it: if another agent changed any
      // resource since, the commit fails and the writer checks again (CatalogStore contract).
      const key = layout.meshGeneration();
      keys.push('g/mesh');
      compare.push(casCompare(Buffer.from(key), this.#mesh.generation));
      success.push(putRequest(key, ''));
      puts++;
    }
    coalesce(success);
    return { compare, success, deadlines, puts, keys, alone };
  }
}

function putRequest(key: string, value: string): RequestOp {
  return { request_put: { key: Buffer.from(key), value: Buffer.from(value) } };
}

function deleteRequest(key: string): RequestOp {
  return { request_delete_range: { key: Buffer.from(key) } };
}

function deletePrefixRequest(prefix: string): RequestOp {
  const key = Buffer.from(prefix);
  return { request_delete_range: { key, range_end: rangeEnd(key) } };
}

/** cas 0: the key must not exist (create_revision 0); cas N: its mod_revision must be N. */
function casCompare(key: Buffer, cas: number): Compare {
  return cas === 0
    ? { key, target: 'Create', result: 'Equal', create_revision: '0' }
    : { key, target: 'Mod', result: 'Equal', mod_revision: String(cas) };
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
