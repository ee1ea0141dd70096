/**
 * @module MeshWriter: writes of mesh resources (`Registry.applyMesh`, `deleteMeshResource`):
 * the resulting set's references checked before anything is stored, resources and instance sets
 * in one commit, dry runs that commit nothing.
 */
import { isDeepStrictEqual } from 'node:util';
import { errors, type MeshError } from '../core/errors.js';
import { checkReferences, type SetProblem } from '../protocol/mesh/references.js';
import {
  meshResourceKey,
  type MeshResource,
  type MeshResourceKey,
} from '../protocol/mesh/resource.js';
import type { CatalogView } from './catalog-view.js';
import { retryCommit } from './commit-retry.js';
import type { ApplyPlan, DeclarativeApply } from './declarative-apply.js';
import type {
  MeshApplyRequest,
  MeshApplyResult,
  MeshCatalogWriter,
  MeshResourceChange,
} from './mesh-catalog.js';
import type { CatalogStore, StoreOp } from './store/catalog-store.js';

/** What a {@link MeshWriter} reads, plans instances with and writes through. */
export interface MeshWriterOptions {
  readonly view: CatalogView;
  readonly store: CatalogStore;
  /** Plans the instance sets of a request (committed with the resources). */
  readonly applier: DeclarativeApply;
}

/**
 * Mesh writes, one at a time on this agent: each checks the set the view holds once the
 * previous one is applied. Across agents (etcd) the store fails a mesh commit made against a
 * stale set, and the write is planned and checked again ({@link retryCommit}).
 */
export class MeshWriter implements MeshCatalogWriter {
  readonly #view: CatalogView;
  readonly #store: CatalogStore;
  readonly #applier: DeclarativeApply;
  /** The last write queued: the next one starts when it has settled. */
  #tail: Promise<unknown> = Promise.resolve();

  constructor(options: MeshWriterOptions) {
    this.#view = options.view;
    this.#store = options.store;
    this.#applier = options.applier;
  }

  applyMesh(request: MeshApplyRequest): Promise<MeshApplyResult> {
    return this.#serial(() => retryCommit(() => this.#applyOnce(request)));
  }

  deleteMeshResource(key: MeshResourceKey): Promise<{ index: number; deleted: boolean }> {
    return this.#serial(() => retryCommit(() => this.#deleteOnce(key)));
  }

  #serial<T>(write: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(write);
    this.#tail = run.catch(() => undefined);
    return run;
  }

  /** One attempt of {@link applyMesh}: undefined when its commit lost a compare (cluster mode). */
  async #applyOnce(request: MeshApplyRequest): Promise<MeshApplyResult | undefined> {
    const mesh = this.#view.mesh;
    const before = mesh.resourceMap();
    const after = mesh.resourceMap();
    const resources: MeshResourceChange[] = [];
    const ops: StoreOp[] = [];
    const positions = new Map<MeshResourceKey, number>();
    request.resources.forEach((resource, i) => {
      const key = meshResourceKey(resource);
      const first = positions.get(key);
      if (first !== undefined)
        throw errors.validation(`resources[${i}]`, `${key} is given twice (resources[${first}])`);
      positions.set(key, i);
      const prev = before.get(key);
      const action =
        prev === undefined
          ? 'created'
          : isDeepStrictEqual(prev, resource)
            ? 'unchanged'
            : 'configured';
      resources.push({
        key,
        action,
        ...(prev === undefined ? {} : { before: prev }),
        after: resource,
      });
      if (action !== 'unchanged') ops.push({ op: 'put-mesh-resource', resource });
      after.set(key, resource);
    });
    const problems = newProblems(before, after);
    if (problems.length > 0) throw referenceError(problems, (p) => p.reason);

    const instances = request.instances;
    const plan: ApplyPlan | undefined =
      instances === undefined
        ? undefined
        : this.#applier.plan(instances.set, instances.inputs, instances.source ?? 'config');
    const dryRun = request.dryRun === true;
    let index = this.#view.index;
    if (dryRun) {
      return {
        index,
        dryRun,
        resources,
        ...(plan === undefined ? {} : { instances: { index, ...plan.response } }),
      };
    }
    const all = [...(plan?.ops ?? []), ...ops];
    if (all.length > 0) {
      const r = await this.#store.commit(all);
      if (!r.ok) return undefined;
      index = r.index;
    }
    return {
      index,
      dryRun,
      resources,
      ...(plan === undefined ? {} : { instances: this.#applier.committed(plan, index) }),
    };
  }

  async #deleteOnce(
    key: MeshResourceKey,
  ): Promise<{ index: number; deleted: boolean } | undefined> {
    const before = this.#view.mesh.resourceMap();
    if (!before.has(key)) return { index: this.#view.index, deleted: false };
    const after = new Map(before);
    after.delete(key);
    const problems = newProblems(before, after);
    if (problems.length > 0) {
      throw referenceError(
        problems,
        (p) => `refers to ${key}, which is being deleted: ${p.reason}`,
      );
    }
    const r = await this.#store.commit([{ op: 'delete-mesh-resource', key }]);
    if (!r.ok) return undefined;
    return { index: r.index, deleted: true };
  }
}

/**
 * The reference problems of `after` that `before` does not have. The stored set has none when
 * every write went through here; counting only new ones keeps a set damaged some other way from
 * refusing every later write.
 */
function newProblems(
  before: ReadonlyMap<MeshResourceKey, MeshResource>,
  after: ReadonlyMap<MeshResourceKey, MeshResource>,
): SetProblem[] {
  const id = (p: SetProblem): string => `${p.resource}\0${p.path}\0${p.reason}`;
  const old = new Set(checkReferences([...before.values()]).map(id));
  return checkReferences([...after.values()]).filter((p) => !old.has(id(p)));
}

/**
 * A validation error naming the first problem's resource and path
 * (`VirtualService/default/web: spec.http[0].route[0].destination.subset`), every problem in
 * `details.problems`.
 */
function referenceError(
  problems: readonly SetProblem[],
  reasonOf: (p: SetProblem) => string,
): MeshError {
  const listed = problems.map((p) => ({
    field: `${p.resource}: ${p.path}`,
    resource: p.resource,
    path: p.path,
    reason: reasonOf(p),
  }));
  const first = listed[0] as (typeof listed)[number];
  const more = listed.length > 1 ? ` (and ${listed.length - 1} more problems)` : '';
  return errors.validation(first.field, first.reason + more, {
    problems: listed,
  });
}
