/** @module Resilience policies of the client SDK, reused by the gateway and the sidecar (docs/resilience.md). */
export {
  RetryPolicy,
  createRetryPolicy,
  DEFAULT_RETRY_POLICY_OPTIONS,
  retryPolicyOptionsSchema,
  ATTEMPT_HEADER,
  DEADLINE_HEADER,
} from './retry-policy.js';
export type {
  RetryPolicyOptions,
  RetryPolicyDeps,
  AttemptOutcome,
  RetryDecision,
  RetryReason,
  RetryState,
} from './retry-policy.js';
export { RetryBudget } from './retry-budget.js';
export type { RetryBudgetOptions, RetryBudgetStats } from './retry-budget.js';
export {
  OutlierDetector,
  DEFAULT_CIRCUIT_BREAKER_OPTIONS,
  circuitBreakerOptionsSchema,
  resolveCircuitBreakerOptions,
} from './circuit-breaker.js';
export type { CircuitBreakerOptions, CircuitState } from './circuit-breaker.js';
export {
  Bulkhead,
  DEFAULT_BULKHEAD_OPTIONS,
  bulkheadOptionsSchema,
  resolveBulkheadOptions,
} from './bulkhead.js';
export type { BulkheadOptions, BulkheadRelease } from './bulkhead.js';
export {
  TokenBucketRateLimiter,
  rateLimiterOptionsSchema,
  resolveRateLimiterOptions,
} from './rate-limiter.js';
export type { RateLimiterOptions } from './rate-limiter.js';
export { executeWithRetries } from './execute.js';
export type { ExecuteRequest, ExecuteOptions } from './execute.js';
export { isConnectError } from './connect-errors.js';
