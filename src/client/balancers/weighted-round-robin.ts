/** @module WeightedRoundRobinBalancer: nginx's smooth weighted round-robin. */
import type { Balancer, Endpoint, PickContext } from './balancer.js';

/**
 * Smooth weighted round-robin exactly as nginx's ngx_http_upstream_get_peer: on each pick every
 * candidate's current weight grows by its weight, the largest current weight wins (the first on
 * a tie), and the winner's current weight drops by the candidates' total. Weights {5, 1, 1}
 * give a a b a c a a: the heavy endpoint's turns are spread out, not sent in a burst.
 * Excluded endpoints sit the pick out, as nginx skips peers already tried.
 */
export class WeightedRoundRobinBalancer implements Balancer {
  readonly kind = 'weighted-round-robin';
  #endpoints: readonly Endpoint[] = [];
  #current = new Float64Array(0);

  update(endpoints: readonly Endpoint[]): void {
    this.#endpoints = endpoints.slice();
    this.#current = new Float64Array(endpoints.length);
  }

  pick(ctx?: PickContext): Endpoint | undefined {
    const endpoints = this.#endpoints;
    const current = this.#current;
    const exclude = ctx?.exclude;
    let best = -1;
    let total = 0;
    for (let i = 0; i < endpoints.length; i++) {
      const e = endpoints[i]!;
      if (exclude !== undefined && exclude.has(e.id)) continue;
      current[i]! += e.weight;
      total += e.weight;
      if (best === -1 || current[i]! > current[best]!) best = i;
    }
    if (best === -1) return undefined;
    current[best]! -= total;
    return endpoints[best];
  }

  started(): void {}

  finished(): void {}
}
