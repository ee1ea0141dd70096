/** @module ReservedKv: the contract of the agent's own replicated keys (see reserved-kv.ts). */
import type { KvEntry } from '../core/types.js';

/**
 * Reserved keys start with this (a control character, which no API key may hold): the agent's
 * own state beside the catalog (maintenance flags, the mesh CA, Consul user events and prepared
 * queries).
 */
export const RESERVED_KV_PREFIX = '\u0000';

/** One op of a {@link ReservedKv.commit}: a put or delete, with an optional compare-and-set. */
export type ReservedKvOp =
  | { readonly op: 'put'; readonly key: string; readonly value: Uint8Array; readonly cas?: number }
  | { readonly op: 'delete'; readonly key: string; readonly cas?: number };

/**
 * Read, compare-and-set and follow reserved keys.
 *
 * Contract: `get` reads this agent's view (it includes every commit this agent's `put` resolved,
 * and, in cluster mode, other agents' commits once their events arrived). Listeners are called
 * synchronously after the view applied a batch of events that touched a key under their
 * prefix; they MUST NOT throw.
 */
export interface ReservedKv {
  get(key: string): KvEntry | undefined;
  /**
   * Puts `value` at `key` if the key's modifyIndex is `cas` (0: only if absent). Resolves
   * `ok: false` when it was not (nothing written). Rejects with STORE_UNAVAILABLE as commits do.
   */
  put(key: string, value: Uint8Array, cas: number): Promise<{ ok: boolean; index: number }>;
  /** The entries under `prefix`, in key order (from the view, as `get`). */
  list(prefix: string): KvEntry[];
  /** Deletes `key` if its modifyIndex is `cas`; resolves `ok: false` when it was not. */
  delete(key: string, cas: number): Promise<{ ok: boolean; index: number }>;
  /**
   * Applies puts and deletes all or nothing, in one commit. Resolves `ok: false` when a `cas`
   * did not hold (nothing written). Rejects with STORE_UNAVAILABLE as commits do.
   */
  commit(ops: readonly ReservedKvOp[]): Promise<{ ok: boolean; index: number }>;
  /** `listener` is given the keys under `prefix` the batch put or deleted. */
  subscribe(prefix: string, listener: (keys: readonly string[]) => void): () => void;
}
