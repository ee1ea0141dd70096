/** @module TokenBucketRateLimiter: a client-side cap on request rate with bursts, on the injected Clock. */
import { z } from 'zod';
import { systemClock, type Clock } from '../../core/clock.js';
import { errors } from '../../core/errors.js';
import { resolveOptions } from './resolve-options.js';

export interface RateLimiterOptions {
  /** Tokens added per second (the sustained rate). */
  readonly ratePerSecond: number;
  /** Bucket size: the burst allowed after a quiet spell. The bucket starts full. */
  readonly burst: number;
}

export const rateLimiterOptionsSchema = z
  .object({
    ratePerSecond: z.number().gt(0).max(1e9),
    burst: z.number().int().min(1).max(1e9),
  })
  .strict();

/**
 * Validates a rate limiter's options without building one: one CONFIG_INVALID MeshError lists
 * every problem. The constructor runs the same check.
 */
export function resolveRateLimiterOptions(
  ratePerSecond: number,
  burst: number,
): Readonly<RateLimiterOptions> {
  return resolveOptions('rateLimiter', rateLimiterOptionsSchema, {}, { ratePerSecond, burst });
}

/**
 * A token bucket refilled lazily from the Clock (no timers): each call costs one token (or
 * `tokens`). O(1), never throws except `execute`.
 * @example
 * const limiter = new TokenBucketRateLimiter(100, 20, clock);
 * if (!limiter.tryAcquire()) return reply(429, { retryAfterMs: limiter.retryAfterMs() });
 */
export class TokenBucketRateLimiter {
  readonly options: Readonly<RateLimiterOptions>;
  readonly #clock: Clock;
  readonly #perMs: number;
  #tokens: number;
  #lastMs: number;

  constructor(ratePerSecond: number, burst: number, clock: Clock = systemClock) {
    this.options = resolveRateLimiterOptions(ratePerSecond, burst);
    this.#clock = clock;
    this.#perMs = this.options.ratePerSecond / 1000;
    this.#tokens = this.options.burst;
    this.#lastMs = clock.monotonicMs();
  }

  /** Takes `tokens` if the bucket holds them; false (taking nothing) otherwise. */
  tryAcquire(tokens = 1): boolean {
    this.#refill();
    if (this.#tokens < tokens) return false;
    this.#tokens -= tokens;
    return true;
  }

  /** Milliseconds until `tokens` are available (0 if they are now; Infinity above the burst). */
  retryAfterMs(tokens = 1): number {
    if (tokens > this.options.burst) return Infinity;
    this.#refill();
    return Math.max(0, Math.ceil((tokens - this.#tokens) / this.#perMs));
  }

  /**
   * Runs `fn` if a token is available.
   * @throws MeshError CLIENT_RATE_LIMITED (with details.retryAfterMs) when none is.
   */
  async execute<T>(fn: () => Promise<T>): Promise<T> {
    if (!this.tryAcquire()) throw errors.rateLimited(this.retryAfterMs());
    return fn();
  }

  #refill(): void {
    const now = this.#clock.monotonicMs();
    this.#tokens = Math.min(this.options.burst, this.#tokens + (now - this.#lastMs) * this.#perMs);
    this.#lastMs = now;
  }
}
