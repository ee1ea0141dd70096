/** @module MaglevBalancer: consistent hashing with Maglev's lookup table (Eisenbud et al. 2016). */
import type { Balancer, Endpoint, PickContext } from './balancer.js';
import { hash53 } from './hash.js';
import { compareIds, walkToPickable } from './pick-helpers.js';
import type { RandomSource } from './random-source.js';

/**
 * Builds the lookup table of the Maglev paper (NSDI 2016, section 3.4): each endpoint has a
 * permutation of the table's slots, offset = h1(id) mod M and skip = h2(id) mod (M - 1) + 1
 * (M prime, so every skip walks all slots), and endpoints take turns claiming their next free
 * slot until the table is full. Weighted as Envoy does: an endpoint takes a turn only when
 * `turn * weight` has caught up with the turns it already took times the largest weight, so
 * slots are shared in proportion to weight. A pick is one hash and one array read; a rebuild is
 * O(M log M). Unlike the ring, a departure moves a few keys between the remaining endpoints too
 * (the paper's "minimal disruption" is best effort); a bigger table moves fewer.
 */
export class MaglevBalancer implements Balancer {
  readonly kind = 'maglev';
  readonly #random: RandomSource;
  readonly #tableSize: number;
  #endpoints: readonly Endpoint[] = [];
  /** table[slot]: index in #endpoints of the slot's endpoint. */
  #table = new Int32Array(0);

  constructor(tableSize: number, random: RandomSource) {
    this.#tableSize = tableSize;
    this.#random = random;
  }

  update(endpoints: readonly Endpoint[]): void {
    this.#endpoints = endpoints.slice();
    const n = endpoints.length;
    const size = this.#tableSize;
    if (n === 0) {
      this.#table = new Int32Array(0);
      return;
    }
    const table = new Int32Array(size).fill(-1);
    // Int32 slots and a subtraction instead of %: a float modulo per probe made a 65537-slot
    // build take 15-50 ms; there are about M ln M probes in all.
    const position = new Int32Array(n);
    const skip = new Int32Array(n);
    const taken = new Float64Array(n);
    let maxWeight = 0;
    for (let i = 0; i < n; i++) {
      const id = endpoints[i]!.id;
      position[i] = hash53(id, 0) % size;
      skip[i] = (hash53(id, 1) % (size - 1)) + 1;
      maxWeight = Math.max(maxWeight, endpoints[i]!.weight);
    }
    // Turns go in id order, not input order: every client then builds the same table.
    const order = Array.from({ length: n }, (_, i) => i);
    order.sort((a, b) => compareIds(endpoints[a]!.id, endpoints[b]!.id) || a - b);
    let filled = 0;
    for (let turn = 1; filled < size; turn++) {
      for (let k = 0; k < n && filled < size; k++) {
        const i = order[k]!;
        if (turn * endpoints[i]!.weight < taken[i]!) continue;
        taken[i]! += maxWeight;
        let slot = position[i]!;
        const step = skip[i]!;
        while (table[slot] !== -1) {
          slot += step;
          if (slot >= size) slot -= size;
        }
        table[slot] = i;
        slot += step;
        position[i] = slot >= size ? slot - size : slot;
        filled++;
      }
    }
    this.#table = table;
  }

  pick(ctx?: PickContext): Endpoint | undefined {
    const table = this.#table;
    if (table.length === 0) return undefined;
    const key = ctx?.hashKey;
    const slot = key === undefined ? this.#random.below(table.length) : hash53(key) % table.length;
    return walkToPickable(table, slot, this.#endpoints, ctx?.exclude);
  }

  started(): void {}

  finished(): void {}
}
