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

/**
 * An apply worked out against the view, not committed: the ops to commit and the answer without
 * its index. Commit `ops` (alone or with other ops, in one commit), then hand the plan and the
 * commit's index to {@link DeclarativeApply.committed}.
 */
export interface ApplyPlan {
  readonly ops: readonly StoreOp[];
  readonly response: Omit<ApplyResponse, 'index'>;
  readonly source: RegistrationSource;
}

/** Declarative apply of instance sets (`Registry.apply`, and the instances of `applyMesh`). */
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
    return retryCommit(async () => {
      const plan = this.plan(set, inputs, source);
      let index = this.#view.index;
      if (plan.ops.length > 0) {
        const r = await this.#store.commit(plan.ops);
        // Lost a compare (cluster mode): plan again against the updated view.
        if (!r.ok) return undefined;
        index = r.index;
      }
      return this.committed(plan, index);
    });
  }

  /**
   * Works out {@link apply} against the view now, committing nothing. Throws a validation error
   * naming `instances[i].<field>` for an input that does not build.
   */
  plan(set: string, inputs: readonly ParsedRegistration[], source: RegistrationSource): ApplyPlan {
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
    return { ops, response: { set, created, updated, unchanged, deleted }, source };
  }

  /** The answer of a plan whose ops were committed at `index`; counts it in the metrics. */
  committed(plan: ApplyPlan, index: number): ApplyResponse {
    const { created, updated, deleted } = plan.response;
    if (deleted.length > 0) this.#metrics?.deregistrations.inc({ reason: 'apply' }, deleted.length);
    if (created.length + updated.length > 0)
      this.#metrics?.registrations.inc({ source: plan.source }, created.length + updated.length);
    return { index, ...plan.response };
  }
}
