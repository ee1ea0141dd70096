/** @module The types of a registry transaction (Consul's /v1/txn): its ops, results and errors. */
import type { KvEntry } from '../core/types.js';
import type { InstanceDto } from '../protocol/api-types.js';
import type { ParsedRegistration } from '../protocol/registration.js';

/** The KV verbs of a transaction (Consul's names). */
export type TxnKvVerb =
  | 'set'
  | 'cas'
  | 'get'
  | 'get-tree'
  | 'check-index'
  | 'check-not-exists'
  | 'delete'
  | 'delete-tree'
  | 'delete-cas'
  | 'lock'
  | 'unlock'
  | 'check-session';

/**
 * One operation of a transaction. `index` is the compared modify index (cas verbs); `session`
 * the lock session of `lock`, `unlock` and `check-session`.
 */
export type TxnOp =
  | {
      readonly type: 'kv';
      readonly verb: TxnKvVerb;
      readonly key: string;
      readonly value?: Uint8Array;
      readonly flags?: number;
      readonly index?: number;
      readonly session?: string;
    }
  | {
      readonly type: 'instance';
      readonly verb: 'get' | 'delete' | 'delete-cas';
      readonly id: string;
      readonly index?: number;
    }
  | {
      readonly type: 'instance';
      readonly verb: 'set' | 'cas';
      readonly registration: ParsedRegistration;
      readonly index?: number;
    }
  /** An op the caller refuses (unsupported): it fails the txn with `what`. */
  | { readonly type: 'refused'; readonly what: string }
  /** An op the caller answers itself (a read of something outside the store): nothing here. */
  | { readonly type: 'noop' };

/**
 * One result, with the op it answers: a KV entry (its value empty unless the op read it) or an
 * instance. An op may answer none (a delete) or several (a get-tree).
 */
export type TxnResult = { readonly opIndex: number } & (
  | { readonly type: 'kv'; readonly entry: KvEntry }
  | { readonly type: 'instance'; readonly instance: InstanceDto }
);

export interface TxnError {
  readonly opIndex: number;
  readonly what: string;
}

/** A transaction's answer: its results and index, or the ops that failed (nothing applied). */
export type TxnOutcome =
  | { readonly ok: true; readonly index: number; readonly results: readonly TxnResult[] }
  | { readonly ok: false; readonly errors: readonly TxnError[] };
