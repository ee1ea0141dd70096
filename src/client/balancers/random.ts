/** @module RandomBalancer: weighted random choice. */
import type { Balancer, Endpoint, PickContext } from './balancer.js';
import type { RandomSource } from './random-source.js';

/** Draws tried before the exact fallback when the drawn endpoints are excluded. */
const REJECTION_DRAWS = 3;

/**
 * Picks an endpoint with probability weight / total weight: one draw and a binary search over
 * the cumulative weights. With `exclude`, a drawn endpoint that is excluded is drawn again a
 * few times, then the draw is made over the non-excluded weights only; both are exact
 * (conditioning on "not excluded" is the same distribution).
 */
export class RandomBalancer implements Balancer {
  readonly kind = 'random';
  readonly #random: RandomSource;
  #endpoints: readonly Endpoint[] = [];
  /** cumulative[i] = sum of weights of endpoints 0..i. */
  #cumulative = new Float64Array(0);

  constructor(random: RandomSource) {
    this.#random = random;
  }

  update(endpoints: readonly Endpoint[]): void {
    this.#endpoints = endpoints.slice();
    this.#cumulative = new Float64Array(endpoints.length);
    let sum = 0;
    for (let i = 0; i < endpoints.length; i++) {
      sum += endpoints[i]!.weight;
      this.#cumulative[i] = sum;
    }
  }

  pick(ctx?: PickContext): Endpoint | undefined {
    const endpoints = this.#endpoints;
    const n = endpoints.length;
    if (n === 0) return undefined;
    const exclude = ctx?.exclude;
    if (exclude === undefined || exclude.size === 0) return endpoints[this.#draw()];
    for (let k = 0; k < REJECTION_DRAWS; k++) {
      const e = endpoints[this.#draw()]!;
      if (!exclude.has(e.id)) return e;
    }
    let total = 0;
    for (let i = 0; i < n; i++) if (!exclude.has(endpoints[i]!.id)) total += endpoints[i]!.weight;
    if (total === 0) return undefined;
    let target = this.#random.next() * total;
    let last: Endpoint | undefined;
    for (let i = 0; i < n; i++) {
      const e = endpoints[i]!;
      if (exclude.has(e.id)) continue;
      last = e;
      target -= e.weight;
      if (target < 0) return e;
    }
    return last;
  }

  started(): void {}

  finished(): void {}

  /** Index of the first cumulative weight above a uniform draw over the total. */
  #draw(): number {
    const cumulative = this.#cumulative;
    const n = cumulative.length;
    const target = this.#random.next() * cumulative[n - 1]!;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cumulative[mid]! > target) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}
