/** @module A seeded uniform source for tests that need randomness but not luck. */
import { RandomSource } from '../../src/client/balancers/random-source.js';

/** Uniform numbers in [0, 1), the same sequence for the same seed (an integer). */
export function seededRandom(seed: number): () => number {
  const source = new RandomSource(() => (seed >>> 0) / 4294967296);
  return () => source.next();
}
