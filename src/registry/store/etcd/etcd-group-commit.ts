/** @module EtcdGroupCommit: concurrent commits share one etcd transaction (group commit). */
import type { CommitResult } from '../catalog-store.js';
import {
  MAX_TXN_OPS,
  type Compare,
  type EtcdCommitPlan,
  type RequestOp,
} from './etcd-commit-planner.js';

/** An etcd transaction's answer, as the etcd3 client gives it. */
export interface TxnResult {
  succeeded: boolean;
  header: { revision: string };
  responses: { response_delete_range?: { deleted?: string } }[];
}

/** How group commit reaches etcd and the store's watch. */
export interface EtcdGroupCommitOptions {
  /**
   * Sends one transaction. MUST reject (with STORE_UNAVAILABLE) when etcd does not answer; a
   * failed compare resolves with `succeeded: false`.
   */
  txn(compare: Compare[], success: RequestOp[]): Promise<TxnResult>;
  /** Resolves once the store's watch has delivered `revision` to its listeners. */
  appliedAt(revision: number): Promise<void>;
  /** The last revision the watch delivered. */
  applied(): number;
}

interface QueuedCommit extends EtcdCommitPlan {
  resolve(result: CommitResult): void;
  reject(err: unknown): void;
}

/**
 * Group commit: while one transaction is on its way to etcd, the commits that arrive meanwhile
 * wait and then go together in the next one (each gRPC call costs far more CPU than its
 * operations). Commits touching the same instance or KV key go in separate transactions, in
 * order, since etcd refuses a key twice in one. A commit is answered only after the watch has
 * delivered what it wrote (read-your-writes, CatalogStore contract).
 */
export class EtcdGroupCommit {
  readonly #options: EtcdGroupCommitOptions;
  /** Commits waiting for the transaction in flight to finish. */
  readonly #queue: QueuedCommit[] = [];
  #flushing = false;

  constructor(options: EtcdGroupCommitOptions) {
    this.#options = options;
  }

  /** Queues a planned commit (its leases already granted); resolves when it is settled. */
  commit(plan: EtcdCommitPlan): Promise<CommitResult> {
    return new Promise<CommitResult>((resolve, reject) => {
      this.#queue.push({ ...plan, resolve, reject });
      if (!this.#flushing) void this.#flush();
    });
  }

  /** Sends queued commits, as many per transaction as fit, until the queue is empty. */
  async #flush(): Promise<void> {
    this.#flushing = true;
    try {
      while (this.#queue.length > 0) {
        const batch = this.#nextBatch();
        let res;
        try {
          res = await this.#options.txn(
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
            this.#settle([u], await this.#options.txn(u.compare, u.success));
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

  /** Answers the commits of one transaction once the watch has delivered what it wrote. */
  #settle(batch: readonly QueuedCommit[], res: TxnResult): void {
    const o = this.#options;
    const revision = Number(res.header.revision);
    if (!res.succeeded) {
      // Whatever made a compare fail is at or below this revision: let the listeners hear of it
      // first, so the caller retries against a view that has it (CatalogStore contract).
      void o.appliedAt(revision).then(() => {
        for (const u of batch) u.resolve({ ok: false, index: Math.max(o.applied(), revision) });
      });
      return;
    }
    let changed = batch.reduce((n, u) => n + u.puts, 0);
    for (const r of res.responses) changed += Number(r.response_delete_range?.deleted ?? 0);
    // Only a txn that changed something has a revision of its own to wait for (deletes of
    // absent keys create none, and the current revision may belong to keys outside our prefix).
    if (changed === 0) {
      for (const u of batch) u.resolve({ ok: true, index: Math.max(o.applied(), 1) });
      return;
    }
    void o.appliedAt(revision).then(() => {
      for (const u of batch) u.resolve({ ok: true, index: revision });
    });
  }
}
