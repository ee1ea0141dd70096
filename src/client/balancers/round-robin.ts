/** @module RoundRobinBalancer: each endpoint in turn, weights ignored. */
import type { Balancer, Endpoint, PickContext } from './balancer.js';
import type { RandomSource } from './random-source.js';

/** Plain round-robin over one priority level. Use weighted-round-robin when weights matter. */
export class RoundRobinBalancer implements Balancer {
  readonly kind = 'round-robin';
  #endpoints: readonly Endpoint[] = [];
  #next: number;

  constructor(random: RandomSource) {
    // Start at a random place so a fleet of clients that start together does not send its
    // first requests to the same endpoint (Envoy does the same).
    this.#next = random.below(1 << 30);
  }

  update(endpoints: readonly Endpoint[]): void {
    this.#endpoints = endpoints.slice();
  }

  pick(ctx?: PickContext): Endpoint | undefined {
    const endpoints = this.#endpoints;
    const n = endpoints.length;
    const exclude = ctx?.exclude;
    for (let k = 0; k < n; k++) {
      const e = endpoints[this.#next++ % n]!;
      if (this.#next >= 1 << 30) this.#next = 0;
      if (exclude === undefined || !exclude.has(e.id)) return e;
    }
    return undefined;
  }

  started(): void {}

  finished(): void {}
}
