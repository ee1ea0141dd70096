/** @module Small helpers that several balancers share, allocation-free where `pick` uses them. */
import type { Endpoint } from './balancer.js';

/** True when some endpoint is not in `exclude`. */
export function anyPickable(endpoints: readonly Endpoint[], exclude: ReadonlySet<string>): boolean {
  for (let i = 0; i < endpoints.length; i++) if (!exclude.has(endpoints[i]!.id)) return true;
  return false;
}

/**
 * Hash balancers' answer when the owner of a key is excluded: walk the table (ring or maglev
 * lookup table) from `start` to the first slot whose endpoint is not excluded, so the key goes
 * to the next distinct endpoint, the same one on every try.
 */
export function walkToPickable(
  owners: Int32Array,
  start: number,
  endpoints: readonly Endpoint[],
  exclude: ReadonlySet<string> | undefined,
): Endpoint | undefined {
  const first = endpoints[owners[start]!]!;
  if (exclude === undefined || exclude.size === 0 || !exclude.has(first.id)) return first;
  // Check once that a walk can end: without it, all excluded would walk the whole table.
  if (!anyPickable(endpoints, exclude)) return undefined;
  for (let k = 1; k < owners.length; k++) {
    const e = endpoints[owners[(start + k) % owners.length]!]!;
    if (!exclude.has(e.id)) return e;
  }
  return undefined;
}

/** Code-unit order of ids, the order toEndpoints and maglev's table build use. */
export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Counts in-flight requests per endpoint id, kept across `update` for ids that stay. */
export class InFlightCounter {
  #index = new Map<string, number>();
  #counts = new Int32Array(0);

  /** Re-indexes on a new endpoint set; counts of ids still present carry over. */
  update(endpoints: readonly Endpoint[]): void {
    const index = new Map<string, number>();
    const counts = new Int32Array(endpoints.length);
    for (let i = 0; i < endpoints.length; i++) {
      const id = endpoints[i]!.id;
      const old = this.#index.get(id);
      if (old !== undefined) counts[i] = this.#counts[old]!;
      index.set(id, i);
    }
    this.#index = index;
    this.#counts = counts;
  }

  /** The in-flight count of the endpoint at `i` in the last `update`. */
  at(i: number): number {
    return this.#counts[i]!;
  }

  /** Counts a request start; answers the endpoint's index, or -1 for an unknown id. */
  started(id: string): number {
    const i = this.#index.get(id);
    if (i === undefined) return -1;
    this.#counts[i]!++;
    return i;
  }

  /** Counts a request end; answers the index, or -1 for an unknown id or a count already 0. */
  finished(id: string): number {
    const i = this.#index.get(id);
    // A request started before an update that dropped (or re-added) its endpoint: nothing to undo.
    if (i === undefined || this.#counts[i] === 0) return -1;
    this.#counts[i]!--;
    return i;
  }
}
