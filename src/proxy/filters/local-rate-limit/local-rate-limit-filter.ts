/**
 * @module Local rate limit (a DestinationRule's `rateLimit` for a proxy's outbound requests to
 * it, a sidecar's `inbound.rateLimit` for the requests to its service): a token bucket of
 * `maxTokens`, `tokensPerFill` added every `fillIntervalMs` (refilled continuously, at the same
 * rate, by the SDK's TokenBucketRateLimiter on the injected clock). A request finding it empty
 * is answered 429 with `retry-after` (whole seconds, rounded up) and a JSON error body
 * (MESHWORK_ERR_PROXY_RATE_LIMITED). One filter object per bucket: share it to share the bucket.
 */
import { TokenBucketRateLimiter } from '../../../client/resilience/index.js';
import type { Clock } from '../../../core/clock.js';
import { errors } from '../../../core/errors.js';
import type { Filter, FilterStatus } from '../../filter.js';

export interface LocalRateLimitOptions {
  readonly maxTokens: number;
  readonly tokensPerFill: number;
  readonly fillIntervalMs: number;
}

/** The problems of rate limit options, each naming its field under `field`. */
export function localRateLimitProblems(o: LocalRateLimitOptions, field: string): string[] {
  const problems: string[] = [];
  const whole = (v: number, f: string, max: number): void => {
    if (!(Number.isInteger(v) && v >= 1 && v <= max))
      problems.push(`${f}: must be a whole number 1..${max}`);
  };
  whole(o.maxTokens, `${field}.maxTokens`, 1e9);
  whole(o.tokensPerFill, `${field}.tokensPerFill`, 1e9);
  whole(o.fillIntervalMs, `${field}.fillIntervalMs`, 86_400_000);
  if (problems.length === 0 && (o.tokensPerFill * 1000) / o.fillIntervalMs > 1e9)
    problems.push(`${field}.tokensPerFill: more than 1e9 tokens per second`);
  return problems;
}

/** Counts what the filter did (the proxy's metrics read them). */
export interface RateLimitCounts {
  rateLimited: number;
}

/** A local rate limit filter. `options` MUST have passed localRateLimitProblems. */
export function createLocalRateLimitFilter(
  options: LocalRateLimitOptions,
  clock?: Clock,
  counts?: RateLimitCounts,
): Filter {
  const limiter = new TokenBucketRateLimiter(
    (options.tokensPerFill * 1000) / options.fillIntervalMs,
    options.maxTokens,
    clock,
  );
  return {
    name: 'local-rate-limit',
    onRequest(): FilterStatus {
      if (limiter.tryAcquire()) return 'continue';
      if (counts !== undefined) counts.rateLimited++;
      const retryAfterMs = limiter.retryAfterMs();
      const err = errors.proxyRateLimited(retryAfterMs);
      return {
        status: 429,
        headers: { 'retry-after': String(Math.max(1, Math.ceil(retryAfterMs / 1000))) },
        body: { error: { code: err.code, message: err.message, ...err.details } },
      };
    },
  };
}
