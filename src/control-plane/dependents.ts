/**
 * @module Dependents: who read what. Each compiled proxy identity is filed under the services and
 * resource keys its last compile read, so a change finds the identities to recompile without
 * looking at the others.
 */
import type { SnapshotDeps } from './mesh-deps.js';

/** Items (compiled identities) filed by their deps. */
export class Dependents<T> {
  readonly #byService = new Map<string, Set<T>>();
  readonly #byResource = new Map<string, Set<T>>();
  readonly #allServices = new Set<T>();

  /** Files `item` under `deps`. */
  add(item: T, deps: SnapshotDeps): void {
    if (deps.allServices) this.#allServices.add(item);
    else for (const s of deps.services) file(this.#byService, s, item);
    for (const key of deps.resources) file(this.#byResource, key, item);
  }

  /** Takes `item` out from under `deps` (those it was added with). */
  remove(item: T, deps: SnapshotDeps): void {
    if (deps.allServices) this.#allServices.delete(item);
    else for (const s of deps.services) unfile(this.#byService, s, item);
    for (const key of deps.resources) unfile(this.#byResource, key, item);
  }

  /** Adds to `into` the items that read `service` (or every service). */
  ofService(service: string, into: Set<T>): void {
    this.#byService.get(service)?.forEach((i) => into.add(i));
    this.#allServices.forEach((i) => into.add(i));
  }

  /** Adds to `into` the items that read the resource key `key` (mesh-deps.ts). */
  ofResource(key: string, into: Set<T>): void {
    this.#byResource.get(key)?.forEach((i) => into.add(i));
  }

  clear(): void {
    this.#byService.clear();
    this.#byResource.clear();
    this.#allServices.clear();
  }
}

function file<T>(map: Map<string, Set<T>>, key: string, item: T): void {
  let set = map.get(key);
  if (set === undefined) map.set(key, (set = new Set()));
  set.add(item);
}

function unfile<T>(map: Map<string, Set<T>>, key: string, item: T): void {
  const set = map.get(key);
  if (set === undefined) return;
  set.delete(item);
  if (set.size === 0) map.delete(key);
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}

/** True when two compiles read the same things (the common case: nothing to refile). */
export function sameDeps(a: SnapshotDeps, b: SnapshotDeps): boolean {
  return (
    a.allServices === b.allServices &&
    sameSet(a.services, b.services) &&
    sameSet(a.resources, b.resources)
  );
}
