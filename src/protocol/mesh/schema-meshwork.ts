/**
 * @module The meshwork.dev/v1 spec schemas, for what Istio has no first-class field for:
 * LocalRateLimit (a token bucket), ResponseCache and RetryBudget. Defaults are filled in.
 */
import { z } from 'zod';
import { count, duration, host, int, unlessFailed, workloadSelector } from './schema-common.js';
import type { LocalRateLimitSpec, ResponseCacheSpec, RetryBudgetSpec } from './specs.js';

/** Defaults and bounds of the meshwork.dev kinds (docs/mesh.md gives the reasons). */
export const MESHWORK_KIND_DEFAULTS = Object.freeze({
  /** Envoy's local_ratelimit refuses a fill interval below 50 ms. */
  minFillIntervalMs: 50,
  maxCacheEntries: 100_000,
  defaultCacheEntries: 1000,
  maxCacheBodyBytes: 16 * 1024 * 1024,
  defaultCacheBodyBytes: 1024 * 1024,
  defaultBudgetPercent: 20,
  defaultMinRetriesPerSecond: 10,
  maxMinRetriesPerSecond: 10_000,
  defaultBudgetTtl: '10s',
  /** Linkerd's retry budget TTL is 1 s to 60 s. */
  minBudgetTtlMs: 1000,
  maxBudgetTtlMs: 60_000,
});

const D = MESHWORK_KIND_DEFAULTS;

/** LocalRateLimit `spec`: exactly one of selector (inbound) and host (outbound). */
export const localRateLimitSpecSchema = z
  .strictObject({
    selector: workloadSelector.optional(),
    host: host.optional(),
    tokenBucket: z
      .strictObject({
        maxTokens: count,
        tokensPerFill: count,
        fillInterval: duration(D.minFillIntervalMs),
      })
      .superRefine(
        (b, ctx) => {
          if (b.maxTokens >= 1 && b.tokensPerFill > b.maxTokens) {
            ctx.addIssue({
              code: 'custom',
              path: ['tokensPerFill'],
              message: `must be at most maxTokens (${b.maxTokens})`,
            });
          }
        },
        unlessFailed('maxTokens', 'tokensPerFill'),
      ),
  })
  .superRefine((l, ctx) => {
    if ((l.selector === undefined) === (l.host === undefined)) {
      ctx.addIssue({
        code: 'custom',
        message:
          'must set exactly one of selector (limit the inbound side of these workloads) and host (limit the calls to that host)',
      });
    }
  }, unlessFailed()) satisfies z.ZodType<LocalRateLimitSpec>;

/** ResponseCache `spec`. */
export const responseCacheSpecSchema = z.strictObject({
  host,
  maxEntries: int(1, D.maxCacheEntries).default(D.defaultCacheEntries),
  maxBodyBytes: int(1, D.maxCacheBodyBytes).default(D.defaultCacheBodyBytes),
  defaultTtl: duration().optional(),
}) satisfies z.ZodType<ResponseCacheSpec>;

/** RetryBudget `spec`. */
export const retryBudgetSpecSchema = z.strictObject({
  host,
  budgetPercent: z
    .number()
    .refine((n) => n >= 0 && n <= 100, 'must be 0..100')
    .default(D.defaultBudgetPercent),
  minRetriesPerSecond: int(0, D.maxMinRetriesPerSecond).default(D.defaultMinRetriesPerSecond),
  ttl: duration(D.minBudgetTtlMs, D.maxBudgetTtlMs).default(D.defaultBudgetTtl),
}) satisfies z.ZodType<RetryBudgetSpec>;
