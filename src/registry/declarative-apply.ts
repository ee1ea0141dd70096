/**
 * @module DeclarativeApply: makes the instances a named set owns match a list (config files,
 * orchestrator sync): creates, updates and removes them in one commit, touching nothing else.
 */
import { ERROR_CODES, errors, isMeshError, type MeshError } from '../core/errors.js';
import type { Instance, RegistrationSource } from '../core/types.js';
import type { ApplyResponse } from '../protocol/api-types.js';
import type { ParsedRegistration } from '../protocol/registration.js';
import type { CatalogView } from './catalog-view.js';
import { retryCommit } from './commit-retry.js';
import { sameDefinition, type InstanceBuilder } from './instance-builder.js';
import type { RegistryMetrics } from './registry-metrics.js';
import type { CatalogStore, StoreOp } from './store/catalog-store.js';

/** What a {@link DeclarativeApply} reads, builds with and writes through. */
export interface DeclarativeApplyOptions {
  readonly view: CatalogView;
  readonly store: CatalogStore;
  readonly builder: InstanceBuilder;
  readonly metrics?: RegistryMetrics | undefined;
}

/** Declarative apply of instance sets (`Registry.apply`). */
export class DeclarativeApply {
  readonly #view: CatalogView;
  readonly #store: CatalogStore;
  readonly #builder: InstanceBuilder;
  readonly #metrics: RegistryMetrics | undefined;

  constructor(options: DeclarativeApplyOptions) {
    this.#view = options.view;
    this.#store = options.store;
    this.#builder = options.builder;
    this.#metrics = options.metrics;
  }

  /**
   * Makes the instances owned by `set` match `inputs`: creates and updates them, and removes
   * instances the set owned before that are no longer listed. Nothing outside the set is touched.
   */
  async apply(
    set: string,
    inputs: readonly ParsedRegistration[],
    source: RegistrationSource = 'config',
  ): Promise<ApplyResponse> {
    return retryCommit(() => this.#applyOnce(set, inputs, source));
  }

  /** One attempt of {@link apply}: undefined when its commit lost a compare (cluster mode). */
  async #applyOnce(
    set: string,
    inputs: readonly ParsedRegistration[],
    source: RegistrationSource,
  ): Promise<ApplyResponse | undefined> {
    const created: string[] = [];
    const updated: string[] = [];
    const unchanged: string[] = [];
    const ops: StoreOp[] = [];
    const listed = new Set<string>();
    inputs.forEach((input, i) => {
      let instance: Instance;
      try {
        instance = this.#builder.build(input, { source, managedBy: set });
      } catch (err) {
        const { field, reason } = (err as MeshError).details ?? {};
        if (isMeshError(err, ERROR_CODES.VALIDATION) && typeof reason === 'string') {
          throw errors.validation(`instances[${i}].${String(field)}`, reason);
        }
        throw err;
      }
      if (listed.has(instance.id))
        throw errors.validation(`instances[${i}].id`, `duplicate id "${instance.id}"`);
      listed.add(instance.id);
      const prev = this.#view.get(instance.id);
      if (prev === undefined) created.push(instance.id);
      else if (sameDefinition(prev, instance)) {
        unchanged.push(instance.id);
        return;
      } else updated.push(instance.id);
      ops.push({ op: 'put-instance', instance });
    });
    const deleted = this.#view
      .instancesWhere((i) => i.managedBy === set && !listed.has(i.id))
      .map((i) => i.id)
      .sort();
    for (const id of deleted) ops.push({ op: 'delete-instance', id });
    let index = this.#view.index;
    if (ops.length > 0) {
      const r = await this.#store.commit(ops);
      if (!r.ok) return undefined;
      index = r.index;
    }
    if (deleted.length > 0) this.#metrics?.deregistrations.inc({ reason: 'apply' }, deleted.length);
    if (created.length + updated.length > 0)
      this.#metrics?.registrations.inc({ source }, created.length + updated.length);
    return { index, set, created, updated, unchanged, deleted };
  }
}
