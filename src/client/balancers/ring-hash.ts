/** @module RingHashBalancer: consistent hashing on a ring of virtual nodes (Envoy's ring_hash). */
import type { Balancer, Endpoint, PickContext } from './balancer.js';
import { HASH_SPACE, hash53 } from './hash.js';
import { walkToPickable } from './pick-helpers.js';
import type { RandomSource } from './random-source.js';

/**
 * Each endpoint owns virtual nodes on a ring of 53-bit hashes, as many as its weight times a
 * scale; a key goes to the first virtual node at or after its hash (binary search), wrapping.
 * Without `hashKey` a random point is used (Envoy does the same).
 *
 * Unlike Envoy, the scale (virtual nodes per unit of weight) is a power of two: the smallest
 * one that gives at least `minRingSize` nodes. Envoy recomputes it from the set's total weight,
 * so one endpoint of ten leaving gives the other nine a few more nodes each (103 -> 114 at the
 * default size) and moves 6-7% of the keys that stayed on them; a power of two changes only
 * when the total weight crosses a factor of two, so a departure moves only the departed
 * endpoint's keys. The ring holds between `minRingSize` and twice that many nodes (at least
 * one per endpoint), at most `maxRingSize`.
 * Virtual node v of endpoint `id` sits at hash53(id, v): ids, not addresses, so an instance
 * that moves keeps its keys.
 */
export class RingHashBalancer implements Balancer {
  readonly kind = 'ring-hash';
  readonly #random: RandomSource;
  readonly #minRingSize: number;
  readonly #maxRingSize: number;
  #endpoints: readonly Endpoint[] = [];
  /** Sorted hashes of the virtual nodes. */
  #hashes = new Float64Array(0);
  /** owners[k]: index in #endpoints of the endpoint that owns #hashes[k]. */
  #owners = new Int32Array(0);

  constructor(minRingSize: number, maxRingSize: number, random: RandomSource) {
    this.#minRingSize = minRingSize;
    this.#maxRingSize = maxRingSize;
    this.#random = random;
  }

  /** Number of virtual nodes on the ring (for tests and metrics). */
  get ringSize(): number {
    return this.#hashes.length;
  }

  update(endpoints: readonly Endpoint[]): void {
    this.#endpoints = endpoints.slice();
    let totalWeight = 0;
    let maxWeight = 0;
    for (const e of endpoints) {
      totalWeight += e.weight;
      maxWeight = Math.max(maxWeight, e.weight);
    }
    let perWeight = 2 ** Math.ceil(Math.log2(this.#minRingSize / Math.max(totalWeight, 1)));
    const nodesOf = (weight: number): number => Math.max(1, Math.round(weight * perWeight));
    const ringSizeAt = (): number => endpoints.reduce((sum, e) => sum + nodesOf(e.weight), 0);
    let size = ringSizeAt();
    while (size > this.#maxRingSize && maxWeight * perWeight > 1) {
      perWeight /= 2;
      size = ringSizeAt();
    }
    const unsorted = new Float64Array(size);
    const unsortedOwners = new Int32Array(size);
    let k = 0;
    for (let i = 0; i < endpoints.length; i++) {
      const e = endpoints[i]!;
      for (let v = nodesOf(e.weight) - 1; v >= 0; v--) {
        unsorted[k] = hash53(e.id, v);
        unsortedOwners[k++] = i;
      }
    }
    const order = Array.from({ length: size }, (_, j) => j);
    order.sort((a, b) => unsorted[a]! - unsorted[b]! || unsortedOwners[a]! - unsortedOwners[b]!);
    this.#hashes = new Float64Array(size);
    this.#owners = new Int32Array(size);
    for (let j = 0; j < size; j++) {
      this.#hashes[j] = unsorted[order[j]!]!;
      this.#owners[j] = unsortedOwners[order[j]!]!;
    }
  }

  pick(ctx?: PickContext): Endpoint | undefined {
    const hashes = this.#hashes;
    const n = hashes.length;
    if (n === 0) return undefined;
    const key = ctx?.hashKey;
    const h = key === undefined ? this.#random.next() * HASH_SPACE : hash53(key);
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (hashes[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    return walkToPickable(this.#owners, lo === n ? 0 : lo, this.#endpoints, ctx?.exclude);
  }

  started(): void {}

  finished(): void {}
}
