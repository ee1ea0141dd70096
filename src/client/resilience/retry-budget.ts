/** @module RetryBudget: retries may be at most a ratio of recent requests plus a small floor (Linkerd, Finagle). */
import type { Clock } from '../../core/clock.js';

/** The budget's knobs, as in {@link RetryPolicyOptions.budget}. */
export interface RetryBudgetOptions {
  /** Retries allowed per request in the window (0.2: at most one retry per five requests). */
  readonly ratio: number;
  /** Retries allowed regardless of traffic, so a quiet client can still retry. */
  readonly minRetriesPerSecond: number;
  /** Length of the sliding window the ratio is computed over. */
  readonly windowMs: number;
}

/** Lifetime counters of a budget. */
export interface RetryBudgetStats {
  readonly requests: number;
  readonly retries: number;
  readonly refused: number;
}

/** The window is kept as this many buckets: it slides in steps of windowMs / BUCKETS. */
const BUCKETS = 10;

/**
 * A retry budget shared by every request through one policy. Within any window of `windowMs`,
 * retries stay at most `ratio * requests + minRetriesPerSecond * windowMs / 1000`, so a failing
 * upstream sees at most (1 + ratio) times the original load plus the floor, however many
 * attempts each request may make. Time comes from the injected Clock.
 *
 * Contract: call `recordRequest()` once per original request (not per retry) and
 * `tryAcquireRetry()` before each retry; both are O(1) and never throw.
 * @example
 * const budget = new RetryBudget({ ratio: 0.2, minRetriesPerSecond: 10, windowMs: 10_000 }, clock);
 * budget.recordRequest();
 * if (budget.tryAcquireRetry()) retry();
 */
export class RetryBudget {
  readonly #ratio: number;
  readonly #floor: number;
  readonly #bucketMs: number;
  readonly #clock: Clock;
  /** Per bucket: requests and retries; the bucket's absolute number in #epoch. */
  readonly #requests = new Float64Array(BUCKETS);
  readonly #retries = new Float64Array(BUCKETS);
  readonly #epoch = new Float64Array(BUCKETS).fill(-1);
  #windowRequests = 0;
  #windowRetries = 0;
  #stats = { requests: 0, retries: 0, refused: 0 };

  constructor(options: RetryBudgetOptions, clock: Clock) {
    this.#ratio = options.ratio;
    this.#floor = (options.minRetriesPerSecond * options.windowMs) / 1000;
    this.#bucketMs = options.windowMs / BUCKETS;
    this.#clock = clock;
  }

  /** Counts one original request. */
  recordRequest(): void {
    const i = this.#slide();
    this.#requests[i] = (this.#requests[i] as number) + 1;
    this.#windowRequests++;
    this.#stats.requests++;
  }

  /** Takes one retry from the budget; false (and counted as refused) when it is spent. */
  tryAcquireRetry(): boolean {
    const i = this.#slide();
    if (this.#windowRetries + 1 > this.#ratio * this.#windowRequests + this.#floor) {
      this.#stats.refused++;
      return false;
    }
    this.#retries[i] = (this.#retries[i] as number) + 1;
    this.#windowRetries++;
    this.#stats.retries++;
    return true;
  }

  /** Retries the window allows right now (may be fractional; a retry needs a whole one). */
  available(): number {
    this.#slide();
    return Math.max(0, this.#ratio * this.#windowRequests + this.#floor - this.#windowRetries);
  }

  /** Lifetime counts of requests, retries granted and retries refused. */
  get stats(): RetryBudgetStats {
    return { ...this.#stats };
  }

  /** Drops buckets that left the window; returns the current bucket's index. */
  #slide(): number {
    const epoch = Math.floor(this.#clock.monotonicMs() / this.#bucketMs);
    const i = epoch % BUCKETS;
    if (this.#epoch[i] !== epoch) {
      // Every bucket older than the window is cleared; after a long idle gap that is all of them.
      for (let k = 0; k < BUCKETS; k++) {
        const e = this.#epoch[k] as number;
        if (e !== -1 && e <= epoch - BUCKETS) this.#clear(k);
      }
      this.#clear(i);
      this.#epoch[i] = epoch;
    }
    return i;
  }

  #clear(k: number): void {
    this.#windowRequests -= this.#requests[k] as number;
    this.#windowRetries -= this.#retries[k] as number;
    this.#requests[k] = 0;
    this.#retries[k] = 0;
    this.#epoch[k] = -1;
  }
}
