/** @module RandomSource: the balancers' own small generator, so a pick allocates no number. */

/**
 * mulberry32 (Tommy Ettinger, public domain) on one int32 of state. Each balancer level keeps
 * one, seeded once from BalancerOptions.random: calling that function per pick would box every
 * double it returns (16 bytes a call, as the benchmark showed), while this method is small
 * enough for V8 to inline and its state lives in a typed array.
 */
export class RandomSource {
  readonly #state = new Int32Array(1);

  /** `random` is called once; any value it answers (NaN included) makes a valid seed. */
  constructor(random: () => number) {
    this.#state[0] = Math.floor(random() * 4294967296) | 0;
  }

  /** A uniform number in [0, 1). */
  next(): number {
    const state = (this.#state[0]! + 0x6d2b79f5) | 0;
    this.#state[0] = state;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** A uniform integer in [0, n) for n >= 1. */
  below(n: number): number {
    return Math.floor(this.next() * n);
  }
}
