/**
 * @module InstanceWriter: the registry's writes of instances, serialised per instance id so a
 * read-check-write stays consistent: register, deregister, check edits (an instance's and the
 * node's), maintenance (an instance's and the agent's).
 */
import { isDeepStrictEqual } from 'node:util';
import type { Clock } from '../core/clock.js';
import { errors } from '../core/errors.js';
import type { CheckDefinition, Instance, RegistrationSource } from '../core/types.js';
import type { InstanceDto } from '../protocol/api-types.js';
import type { ParsedRegistration } from '../protocol/registration.js';
import { AGENT_MAINTENANCE_PREFIX, nodeChecksId, type CatalogView } from './catalog-view.js';
import { retryCommit } from './commit-retry.js';
import {
  instanceIdOf,
  NO_MAINTENANCE,
  nodeChecksInstance,
  sameDefinition,
  type InstanceBuilder,
} from './instance-builder.js';
import type { RegistryMetrics } from './registry-metrics.js';
import type { CatalogStore, StoreOp } from './store/catalog-store.js';

/** What an {@link InstanceWriter} reads, builds with and writes through. */
export interface InstanceWriterOptions {
  readonly view: CatalogView;
  readonly store: CatalogStore;
  readonly builder: InstanceBuilder;
  readonly clock: Clock;
  /** This agent's node name (its node checks and agent maintenance). */
  readonly nodeName: string;
  /** The store is shared with other agents (cluster mode). */
  readonly shared: boolean;
  readonly metrics?: RegistryMetrics | undefined;
}

/** Instance writes of one registry (see `CatalogWriter` for each one's contract). */
export class InstanceWriter {
  readonly #view: CatalogView;
  readonly #store: CatalogStore;
  readonly #builder: InstanceBuilder;
  readonly #clock: Clock;
  readonly #nodeName: string;
  readonly #shared: boolean;
  readonly #metrics: RegistryMetrics | undefined;
  /** Writes to one instance id run one after another: read-check-write stays consistent. */
  readonly #idQueues = new Map<string, Promise<unknown>>();

  constructor(options: InstanceWriterOptions) {
    this.#view = options.view;
    this.#store = options.store;
    this.#builder = options.builder;
    this.#clock = options.clock;
    this.#nodeName = options.nodeName;
    this.#shared = options.shared;
    this.#metrics = options.metrics;
  }

  /**
   * Registers or updates an instance (idempotent: re-registering the same definition writes
   * nothing). Throws 409-coded errors when the id belongs to another service.
   */
  async register(
    input: ParsedRegistration,
    defaults: { source?: RegistrationSource; managedBy?: string } = {},
  ): Promise<{ index: number; instance: InstanceDto; changed: boolean }> {
    const id = instanceIdOf(input);
    return this.#serial(id, () =>
      retryCommit(async () => {
        const instance = this.#builder.build({ ...input, id }, defaults);
        const prev = this.#view.get(instance.id);
        if (prev !== undefined && sameDefinition(prev, instance)) {
          return {
            index: this.#view.index,
            instance: this.#dtoOrThrow(instance.id),
            changed: false,
          };
        }
        const r = await this.#store.commit([{ op: 'put-instance', instance }]);
        if (!r.ok) return undefined;
        this.#metrics?.registrations.inc({ source: instance.source });
        return { index: r.index, instance: this.#dtoOrThrow(instance.id), changed: true };
      }),
    );
  }

  /** Removes an instance. Answers whether it existed. */
  async deregister(id: string): Promise<{ index: number; deleted: boolean }> {
    return this.#serial(id, async () => {
      if (this.#view.get(id) === undefined) return { index: this.#view.index, deleted: false };
      const index = await this.#commit([{ op: 'delete-instance', id }]);
      this.#metrics?.deregistrations.inc({ reason: 'api' });
      return { index, deleted: true };
    });
  }

  /**
   * Replaces this agent's node checks with `edit(current)` (Consul's node-level checks, which
   * apply to every instance of the node). They are stored, run and persisted like an instance's
   * checks; checks that keep their id keep their state. A node check never deregisters anything
   * (Consul ignores DeregisterCriticalServiceAfter without a service), so that is cleared.
   */
  async updateNodeChecks(
    edit: (checks: readonly CheckDefinition[]) => readonly CheckDefinition[],
  ): Promise<{ index: number }> {
    const id = nodeChecksId(this.#nodeName);
    return this.#serial(id, () =>
      retryCommit(async () => {
        const prev = this.#view.nodeChecksInstance();
        const checks = edit(prev?.checks ?? []).map((c) =>
          c.deregisterCriticalAfterMs === 0 ? c : { ...c, deregisterCriticalAfterMs: 0 },
        );
        this.#builder.assertCheckCount(checks, prev?.checks.length ?? 0);
        if (isDeepStrictEqual(prev?.checks ?? [], checks)) return { index: this.#view.index };
        const now = this.#clock.now();
        const op: StoreOp =
          checks.length === 0
            ? { op: 'delete-instance', id }
            : {
                op: 'put-instance',
                instance: {
                  ...(prev ?? nodeChecksInstance(id, now)),
                  checks,
                  updatedAt: now,
                },
              };
        const r = await this.#store.commit([op]);
        return r.ok ? { index: r.index } : undefined;
      }),
    );
  }

  /**
   * Replaces an instance's checks with `edit(current)`, e.g. to add or remove one check (Consul's
   * /v1/agent/check/register). Checks that keep their id keep their state.
   */
  async updateChecks(
    id: string,
    edit: (checks: readonly CheckDefinition[]) => readonly CheckDefinition[],
  ): Promise<{ index: number; instance: InstanceDto }> {
    return this.#updateField(id, 'checks', (prev) => {
      const checks = edit(prev.checks);
      this.#builder.assertCheckCount(checks, prev.checks.length);
      return checks;
    });
  }

  /** Puts one instance in or out of maintenance. */
  async setMaintenance(
    id: string,
    enabled: boolean,
    reason: string,
  ): Promise<{ index: number; instance: InstanceDto }> {
    return this.#updateField(id, 'maintenance', () =>
      enabled ? { enabled, reason } : NO_MAINTENANCE,
    );
  }

  /**
   * Sets `field` of instance `id` (throws not-found) to `next(current)`, writing only when that
   * changes it: the read-check-write of {@link updateChecks} and {@link setMaintenance}.
   */
  #updateField<K extends 'checks' | 'maintenance'>(
    id: string,
    field: K,
    next: (prev: Instance) => Instance[K],
  ): Promise<{ index: number; instance: InstanceDto }> {
    return this.#serial(id, () =>
      retryCommit(async () => {
        const prev = this.#view.get(id);
        if (prev === undefined) throw errors.instanceNotFound(id);
        const value = next(prev);
        if (isDeepStrictEqual(prev[field], value)) {
          return { index: this.#view.index, instance: this.#dtoOrThrow(id) };
        }
        const instance = { ...prev, [field]: value, updatedAt: this.#clock.now() };
        const r = await this.#store.commit([{ op: 'put-instance', instance }]);
        return r.ok ? { index: r.index, instance: this.#dtoOrThrow(id) } : undefined;
      }),
    );
  }

  /** Puts the whole agent (every instance it serves) in or out of maintenance. */
  async setAgentMaintenance(enabled: boolean, reason: string): Promise<{ index: number }> {
    if (this.#shared) {
      // Every agent serves the whole catalog in cluster mode, so "the instances of this agent"
      // has no meaning yet (nodes per instance come with the Consul API).
      throw errors.validation(
        'enable',
        'agent maintenance is not available in cluster mode (--store etcd); put instances in maintenance one by one',
      );
    }
    const key = AGENT_MAINTENANCE_PREFIX + this.#nodeName;
    const op: StoreOp = enabled
      ? { op: 'kv-put', key, value: Buffer.from(reason || 'agent maintenance'), flags: 0 }
      : { op: 'kv-delete', key };
    return { index: await this.#commit([op]) };
  }

  /** Runs `fn` after every earlier write to the same instance id has finished. */
  #serial<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return this.serial([id], fn);
  }

  /**
   * Runs `fn` once every earlier write to any of `ids` has finished (its commit applied and
   * heard by the view), and holds later writes to them until `fn` has: the per-instance queue,
   * for a write that is not this writer's own (a txn's, which may touch several instances). A
   * write that bypassed it could be read over: the store's group commit applies a commit a tick
   * after it is issued, so a read-modify-write issued meanwhile would build on the view before it.
   */
  async serial<T>(ids: readonly string[], fn: () => Promise<T>): Promise<T> {
    const unique = ids.length < 2 ? ids : [...new Set(ids)];
    const before: Promise<unknown>[] = [];
    for (const id of unique) {
      const tail = this.#idQueues.get(id);
      if (tail !== undefined) before.push(tail);
    }
    // The queues hold this write before fn starts: a write issued while fn runs (from within
    // it) waits too. Tails never reject, so fn runs whatever the earlier writes came to.
    let settle!: () => void;
    const tail = new Promise<void>((resolve) => (settle = resolve));
    for (const id of unique) this.#idQueues.set(id, tail);
    let run: Promise<T>;
    try {
      run =
        before.length === 0
          ? fn()
          : (before.length === 1 ? before[0]! : Promise.all(before)).then(fn);
    } catch (err) {
      run = Promise.reject(err as Error); // a synchronous throw must not leave the queues held
    }
    run.then(settle, settle);
    try {
      return await run;
    } finally {
      for (const id of unique) if (this.#idQueues.get(id) === tail) this.#idQueues.delete(id);
    }
  }

  #dtoOrThrow(id: string): InstanceDto {
    const dto = this.#view.dto(id);
    // The store delivered the commit's events before resolving, so the view has it (or a later
    // delete raced it, which callers see as not found).
    if (dto === undefined) throw errors.instanceNotFound(id);
    return dto;
  }

  async #commit(ops: readonly StoreOp[]): Promise<number> {
    const r = await this.#store.commit(ops);
    return r.index;
  }
}
