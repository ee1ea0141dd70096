/** @module LeastRequestBalancer: power of `choices` random choices on in-flight requests. */
import type { Balancer, Endpoint, PickContext } from './balancer.js';
import { InFlightCounter } from './pick-helpers.js';
import type { RandomSource } from './random-source.js';

/**
 * Envoy's least-request with power of two choices: draw `choices` endpoints uniformly (with
 * replacement, as Envoy does) and keep the one with the highest `weight / (inFlight + 1)`:
 * Envoy's weighted effective weight with active_request_bias 1. With equal weights this is
 * "fewest in-flight requests wins"; on a tie the first drawn wins. Drawn endpoints that are
 * excluded do not count; when every draw is excluded, the best non-excluded endpoint is found
 * by a scan from a random place (rare: retries and ejections only).
 */
export class LeastRequestBalancer implements Balancer {
  readonly kind = 'least-request';
  readonly #random: RandomSource;
  readonly #choices: number;
  readonly #inFlight = new InFlightCounter();
  #endpoints: readonly Endpoint[] = [];

  constructor(choices: number, random: RandomSource) {
    this.#choices = choices;
    this.#random = random;
  }

  update(endpoints: readonly Endpoint[]): void {
    this.#endpoints = endpoints.slice();
    this.#inFlight.update(endpoints);
  }

  pick(ctx?: PickContext): Endpoint | undefined {
    const endpoints = this.#endpoints;
    const n = endpoints.length;
    if (n === 0) return undefined;
    const exclude = ctx?.exclude;
    let best = -1;
    let bestScore = -1;
    for (let k = 0; k < this.#choices; k++) {
      const i = this.#random.below(n);
      if (exclude !== undefined && exclude.has(endpoints[i]!.id)) continue;
      const score = this.#score(i);
      if (score > bestScore) {
        best = i;
        bestScore = score;
      }
    }
    if (best !== -1) return endpoints[best];
    if (exclude === undefined) return undefined;
    const start = this.#random.below(n);
    for (let k = 0; k < n; k++) {
      const i = (start + k) % n;
      if (exclude.has(endpoints[i]!.id)) continue;
      const score = this.#score(i);
      if (score > bestScore) {
        best = i;
        bestScore = score;
      }
    }
    return best === -1 ? undefined : endpoints[best];
  }

  started(id: string): void {
    this.#inFlight.started(id);
  }

  finished(id: string): void {
    this.#inFlight.finished(id);
  }

  #score(i: number): number {
    return this.#endpoints[i]!.weight / (this.#inFlight.at(i) + 1);
  }
}
