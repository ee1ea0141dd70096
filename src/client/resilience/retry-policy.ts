/**
 * @module RetryPolicy: decision-style retries (no I/O inside) with per-try and overall
 * deadlines, exponential backoff with full jitter, idempotency rules, a shared retry budget, and
 * the attempt/deadline headers that let stacked layers (app, sidecar, gateway) cooperate.
 */
import { z } from 'zod';
import { systemClock, type Clock } from '../../core/clock.js';
import { isMeshError } from '../../core/errors.js';
import { isConnectError, isNeverSentError } from './connect-errors.js';
import { resolveOptions } from './resolve-options.js';
import { RetryBudget } from './retry-budget.js';

/** Header carrying the 1-based attempt number of this logical request, across layers. */
export const ATTEMPT_HEADER = 'x-meshwork-attempt';
/** Header carrying the milliseconds left before the caller gives up (an integer). */
export const DEADLINE_HEADER = 'x-meshwork-deadline-ms';

export interface RetryPolicyOptions {
  /** Attempts per request, the first included (1 = no retries). */
  readonly maxAttempts: number;
  /** Timeout of each try; 0 = none. */
  readonly perTryTimeoutMs: number;
  /** Deadline of the whole request, retries and backoff included; 0 = none. */
  readonly overallTimeoutMs: number;
  /** Exponential backoff with full jitter: retry n waits random [0, min(maxMs, baseMs * 2^(n-1))). */
  readonly backoff: { readonly baseMs: number; readonly maxMs: number };
  /** Response statuses worth another try. */
  readonly retryOnStatuses: readonly number[];
  /** Retry refused, reset-before-response and connect-timeout failures. */
  readonly retryOnConnectErrors: boolean;
  /** Retry methods that are not idempotent (RFC 9110 9.2.2) too. */
  readonly retryNonIdempotent: boolean;
  /** The retry budget shared by every request through the policy. */
  readonly budget: {
    readonly ratio: number;
    readonly minRetriesPerSecond: number;
    readonly windowMs: number;
  };
}

const ms = (max: number) => z.number().int('must be a whole number of ms').min(0).max(max);

export const retryPolicyOptionsSchema = z
  .object({
    // gRPC caps attempts at 5; 10 leaves room while a typo like 100 fails loudly.
    maxAttempts: z.number().int().min(1).max(10),
    perTryTimeoutMs: ms(86_400_000),
    overallTimeoutMs: ms(86_400_000),
    backoff: z
      .object({ baseMs: ms(3_600_000), maxMs: ms(3_600_000) })
      .strict()
      .refine((b) => b.maxMs >= b.baseMs, { message: 'maxMs must be >= baseMs', path: ['maxMs'] }),
    // 4xx and 5xx only: retrying a 2xx or 3xx would repeat a request that worked.
    retryOnStatuses: z.array(z.number().int().min(400).max(599)).max(200),
    retryOnConnectErrors: z.boolean(),
    retryNonIdempotent: z.boolean(),
    budget: z
      .object({
        // Above 1 a budget no longer bounds load to less than twice the requests.
        ratio: z.number().min(0).max(1),
        minRetriesPerSecond: z.number().min(0).max(1_000_000),
        windowMs: z.number().int().min(100).max(3_600_000),
      })
      .strict(),
  })
  .strict();

export const DEFAULT_RETRY_POLICY_OPTIONS: Readonly<RetryPolicyOptions> = Object.freeze({
  maxAttempts: 3,
  perTryTimeoutMs: 0,
  overallTimeoutMs: 0,
  backoff: Object.freeze({ baseMs: 25, maxMs: 1000 }),
  retryOnStatuses: Object.freeze([502, 503, 504]),
  retryOnConnectErrors: true,
  retryNonIdempotent: false,
  budget: Object.freeze({ ratio: 0.2, minRetriesPerSecond: 10, windowMs: 10_000 }),
});

/** The result of one attempt, as the retry decision sees it. */
export type AttemptOutcome =
  | { readonly kind: 'response'; readonly status: number }
  | { readonly kind: 'error'; readonly error: unknown };

/** Why a decision was made; stable strings, fit for logs and metric labels. */
export type RetryReason =
  // retry: true
  | 'retryable-status'
  | 'connect-error'
  | 'retryable-error'
  // retry: false
  | 'response'
  | 'error-not-retryable'
  | 'max-attempts'
  | 'non-idempotent'
  | 'retried-upstream'
  | 'deadline'
  | 'budget-exhausted';

export interface RetryDecision {
  readonly retry: boolean;
  /** Backoff before the next attempt (0 when not retrying). */
  readonly delayMs: number;
  readonly reason: RetryReason;
}

/** Per request: created by RetryPolicy.begin(); tracks attempts and the deadline. */
export interface RetryState {
  /** 1-based, the attempt about to be sent / just sent. */
  readonly attempt: number;
  /** ms left before the overall deadline (min of overallTimeoutMs and an inherited x-meshwork-deadline-ms), Infinity if none. */
  remainingMs(): number;
  /**
   * Timeout for the next try: min(perTryTimeoutMs, remainingMs()) rounded up to a whole ms, or
   * Infinity.
   */
  tryTimeoutMs(): number;
  /** Headers to add to the next attempt: x-meshwork-attempt and, when a deadline exists, x-meshwork-deadline-ms. */
  headers(): Record<string, string>;
  /**
   * After an attempt: decide. MUST be called once per attempt; a `retry: true` moves `attempt`
   * on. Never throws. Refuses when the budget is spent, the deadline would pass during the
   * backoff, the method is not idempotent, maxAttempts is reached, or an upstream layer already
   * retries this request (inherited attempt > 1).
   */
  decide(outcome: AttemptOutcome): RetryDecision;
}

export interface RetryPolicyDeps {
  readonly clock?: Clock;
  /** A source of [0, 1) for the jitter (seed it in tests). */
  readonly random?: () => number;
}

/** RFC 9110 9.2.2: methods whose repetition has the same effect as one request. */
const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set([
  'GET',
  'HEAD',
  'OPTIONS',
  'PUT',
  'DELETE',
  'TRACE',
]);

type Inherited = Readonly<Record<string, string | string[] | undefined>>;

/** The first value of a header as a non-negative integer, or undefined. */
function headerInt(headers: Inherited | undefined, name: string): number | undefined {
  const raw = headers?.[name];
  const v = Array.isArray(raw) ? raw[0] : raw;
  if (v === undefined || !/^\s*\d{1,15}\s*$/.test(v)) return undefined;
  return Number(v);
}

/**
 * One retry policy, configured once and shared by the SDK, the gateway and the sidecar. The
 * per-request {@link RetryState} is cheap: one object of a few fields.
 * @example
 * const policy = createRetryPolicy({ perTryTimeoutMs: 500, overallTimeoutMs: 2000 });
 * const state = policy.begin({ method: 'GET' });
 * for (;;) {
 *   const res = await send({ headers: state.headers(), timeoutMs: state.tryTimeoutMs() });
 *   const d = state.decide({ kind: 'response', status: res.status });
 *   if (!d.retry) return res;
 *   await sleep(d.delayMs);
 * }
 */
export class RetryPolicy {
  readonly options: Readonly<RetryPolicyOptions>;
  /** The budget shared by all requests through this policy. */
  readonly budget: RetryBudget;
  /** The clock deadlines and backoff are measured on. */
  readonly clock: Clock;
  readonly #random: () => number;
  readonly #statuses: ReadonlySet<number>;

  constructor(options?: Partial<RetryPolicyOptions>, deps: RetryPolicyDeps = {}) {
    this.options = resolveOptions(
      'retry',
      retryPolicyOptionsSchema,
      DEFAULT_RETRY_POLICY_OPTIONS,
      options,
    );
    this.clock = deps.clock ?? systemClock;
    this.#random = deps.random ?? Math.random;
    this.#statuses = new Set(this.options.retryOnStatuses);
    this.budget = new RetryBudget(this.options.budget, this.clock);
  }

  /** The backoff cap before retry `n` (1-based): min(maxMs, baseMs * 2^(n-1)). */
  backoffCapMs(n: number): number {
    const { baseMs, maxMs } = this.options.backoff;
    return Math.min(maxMs, baseMs * 2 ** Math.min(n - 1, 52));
  }

  /**
   * Starts one logical request. `inherited` is the incoming request's headers when a proxy
   * forwards, so an upstream deadline and attempt number carry over.
   */
  begin(request: { method: string; idempotent?: boolean; inherited?: Inherited }): RetryState {
    this.budget.recordRequest();
    const { options } = this;
    const inheritedDeadline = headerInt(request.inherited, DEADLINE_HEADER);
    const own = options.overallTimeoutMs > 0 ? options.overallTimeoutMs : Infinity;
    const idempotent =
      request.idempotent === true ||
      options.retryNonIdempotent ||
      IDEMPOTENT_METHODS.has(request.method.toUpperCase());
    return new RequestRetryState(
      this,
      this.clock.monotonicMs() + Math.min(own, inheritedDeadline ?? Infinity),
      Math.max(1, headerInt(request.inherited, ATTEMPT_HEADER) ?? 1),
      idempotent,
    );
  }

  /** Whether a response status is one worth another try (retryOnStatuses); cheap, per response. */
  retriesOnStatus(status: number): boolean {
    return this.#statuses.has(status);
  }

  /** Whether an outcome is worth another try at all, and why (before limits and budget). */
  classify(outcome: AttemptOutcome): RetryReason {
    if (outcome.kind === 'response')
      return this.#statuses.has(outcome.status) ? 'retryable-status' : 'response';
    if (isConnectError(outcome.error))
      return this.options.retryOnConnectErrors ? 'connect-error' : 'error-not-retryable';
    return isMeshError(outcome.error) && outcome.error.retryable
      ? 'retryable-error'
      : 'error-not-retryable';
  }

  /** A full-jitter backoff before retry `n`. */
  backoffMs(n: number): number {
    return Math.floor(this.#random() * this.backoffCapMs(n));
  }
}

const RETRYABLE: ReadonlySet<RetryReason> = new Set([
  'retryable-status',
  'connect-error',
  'retryable-error',
]);

/** The per-request state: one small object, no closures (a proxy makes one per request). */
class RequestRetryState implements RetryState {
  readonly #policy: RetryPolicy;
  /** Monotonic ms of the deadline, Infinity for none. */
  readonly #deadlineAt: number;
  /** The attempt number the caller sent, 1 when we are the first layer. */
  readonly #inheritedAttempt: number;
  readonly #idempotent: boolean;
  #attempt = 1;

  constructor(
    policy: RetryPolicy,
    deadlineAt: number,
    inheritedAttempt: number,
    idempotent: boolean,
  ) {
    this.#policy = policy;
    this.#deadlineAt = deadlineAt;
    this.#inheritedAttempt = inheritedAttempt;
    this.#idempotent = idempotent;
  }

  get attempt(): number {
    return this.#attempt;
  }

  remainingMs(): number {
    if (this.#deadlineAt === Infinity) return Infinity;
    return Math.max(0, this.#deadlineAt - this.#policy.clock.monotonicMs());
  }

  tryTimeoutMs(): number {
    const perTryMs = this.#policy.options.perTryTimeoutMs;
    // Rounded up to whole ms: node truncates a timer's duration (14999.4 ms fires at 14999), so
    // a deadline's fractional remainder ended a try up to 1 ms early; and messages and errors
    // say whole ms.
    return Math.ceil(Math.min(perTryMs > 0 ? perTryMs : Infinity, this.remainingMs()));
  }

  headers(): Record<string, string> {
    // Our attempts continue the caller's numbering, so a layer below us sees a retry as one.
    const h: Record<string, string> = {
      [ATTEMPT_HEADER]: String(this.#inheritedAttempt - 1 + this.#attempt),
    };
    const left = this.remainingMs();
    if (left !== Infinity) h[DEADLINE_HEADER] = String(Math.floor(left));
    return h;
  }

  decide(outcome: AttemptOutcome): RetryDecision {
    const policy = this.#policy;
    const reason = policy.classify(outcome);
    if (!RETRYABLE.has(reason)) return refuse(reason);
    if (this.#attempt >= policy.options.maxAttempts) return refuse('max-attempts');
    // A request that never reached the upstream may be sent again whatever its method.
    const neverSent = outcome.kind === 'error' && isNeverSentError(outcome.error);
    if (!this.#idempotent && !neverSent) return refuse('non-idempotent');
    if (this.#inheritedAttempt > 1) return refuse('retried-upstream');
    const delayMs = policy.backoffMs(this.#attempt);
    // Strictly less: a retry needs some time left after its backoff to be of any use.
    if (delayMs >= this.remainingMs()) return refuse('deadline');
    // Last, so only retries that really happen take from the budget.
    if (!policy.budget.tryAcquireRetry()) return refuse('budget-exhausted');
    this.#attempt++;
    return { retry: true, delayMs, reason };
  }
}

function refuse(reason: RetryReason): RetryDecision {
  return { retry: false, delayMs: 0, reason };
}

/**
 * Validates `options` once (one CONFIG_INVALID MeshError listing every problem), deep-freezes
 * them and returns the policy.
 * @example const policy = createRetryPolicy({ maxAttempts: 2, retryOnStatuses: [503] });
 */
export function createRetryPolicy(
  options?: Partial<RetryPolicyOptions>,
  deps?: RetryPolicyDeps,
): RetryPolicy {
  return new RetryPolicy(options, deps);
}
