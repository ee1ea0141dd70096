/**
 * @module Prepared queries kept in the store (reserved keys), so they survive a restart and
 * every agent of a cluster shares them: one key per query, one per name (taken with a
 * compare-and-set, so two agents cannot create one name twice), and a generation key whose
 * modify index is the list's blocking index.
 */
import { randomUUID } from 'node:crypto';
import { errors } from '../../core/errors.js';
import { RESERVED_KV_PREFIX, type ReservedKv } from '../../registry/reserved-kv-contract.js';
import type { PreparedQueryDef } from './consul-prepared-query.js';
import { refuse } from './consul-refuse.js';

const PREFIX = `${RESERVED_KV_PREFIX}consul-queries/`;
const QUERY_PREFIX = `${PREFIX}q/`;
const NAME_PREFIX = `${PREFIX}n/`;
const GENERATION_KEY = `${PREFIX}gen`;

/** A stored query with its indexes. */
export interface StoredPreparedQuery {
  readonly def: PreparedQueryDef;
  readonly createIndex: number;
  readonly modifyIndex: number;
}

/** The prepared queries of the cluster, in the reserved keys. */
export class PreparedQueryStore {
  readonly #kv: ReservedKv;

  constructor(kv: ReservedKv) {
    this.#kv = kv;
  }

  /** The index of the last change to any query (1 before any). */
  get index(): number {
    return this.#kv.get(GENERATION_KEY)?.modifyIndex ?? 1;
  }

  list(): StoredPreparedQuery[] {
    const out: StoredPreparedQuery[] = [];
    for (const e of this.#kv.list(QUERY_PREFIX)) {
      try {
        const def = JSON.parse(Buffer.from(e.value).toString()) as PreparedQueryDef;
        out.push({ def, createIndex: e.createIndex, modifyIndex: e.modifyIndex });
      } catch {
        // An unreadable entry is skipped (written by a newer agent, say).
      }
    }
    return out;
  }

  get(id: string): StoredPreparedQuery | undefined {
    return this.list().find((q) => q.def.ID === id);
  }

  /** A fresh query ID (a UUID no stored query has). */
  newId(): string {
    for (;;) {
      const id = randomUUID();
      if (this.#kv.get(QUERY_PREFIX + id) === undefined) return id;
    }
  }

  /**
   * Stores `def` (a create when its ID is new): refuses a Name another query holds, or that is
   * another query's ID, with Consul's messages.
   */
  async put(def: PreparedQueryDef): Promise<void> {
    const key = QUERY_PREFIX + def.ID;
    const prev = this.#kv.get(key);
    const prevDef = prev === undefined ? undefined : this.get(def.ID)?.def;
    if (
      def.Name !== '' &&
      def.Name !== def.ID &&
      this.#kv.get(QUERY_PREFIX + def.Name) !== undefined
    )
      throw refuse(`Invalid prepared query: Name "${def.Name}" aliases an existing query ID`, 400);
    const nameKey = (name: string): string => NAME_PREFIX + name;
    const renamed = prevDef?.Name !== def.Name;
    const taken = (name: string) => {
      const holder = this.#kv.get(nameKey(name));
      return holder !== undefined && Buffer.from(holder.value).toString() !== def.ID;
    };
    if (def.Name !== '' && taken(def.Name))
      throw refuse(`Invalid prepared query: Name "${def.Name}" aliases an existing query name`);
    const r = await this.#kv.commit([
      { op: 'put', key, value: Buffer.from(JSON.stringify(def)), cas: prev?.modifyIndex ?? 0 },
      ...(renamed && prevDef !== undefined && prevDef.Name !== ''
        ? [{ op: 'delete' as const, key: nameKey(prevDef.Name) }]
        : []),
      ...(renamed && def.Name !== ''
        ? [{ op: 'put' as const, key: nameKey(def.Name), value: Buffer.from(def.ID), cas: 0 }]
        : []),
      { op: 'put', key: GENERATION_KEY, value: new Uint8Array(0) },
    ]);
    if (r.ok) return;
    if (def.Name !== '' && taken(def.Name))
      throw refuse(`Invalid prepared query: Name "${def.Name}" aliases an existing query name`);
    throw errors.storeUnavailable('prepared query: changed by another request meanwhile, retry');
  }

  /** Deletes a query; answers whether it existed. */
  async delete(id: string): Promise<boolean> {
    const q = this.get(id);
    if (q === undefined) return false;
    await this.#kv.commit([
      { op: 'delete', key: QUERY_PREFIX + id },
      ...(q.def.Name === '' ? [] : [{ op: 'delete' as const, key: NAME_PREFIX + q.def.Name }]),
      { op: 'put', key: GENERATION_KEY, value: new Uint8Array(0) },
    ]);
    return true;
  }
}
