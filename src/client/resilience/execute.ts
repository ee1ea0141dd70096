/** @module executeWithRetries: the I/O loop over a RetryPolicy's decisions, with per-try timeouts, backoff sleeps and a fallback. */
import type { Clock } from '../../core/clock.js';
import { errors } from '../../core/errors.js';
import type { AttemptOutcome, RetryPolicy, RetryState } from './retry-policy.js';

export interface ExecuteRequest {
  readonly method: string;
  readonly idempotent?: boolean;
  readonly inherited?: Readonly<Record<string, string | string[] | undefined>>;
  /** The caller's cancellation: aborting stops the request, its sleeps and its retries. */
  readonly signal?: AbortSignal;
}

export interface ExecuteOptions<T> {
  /** Replaces a final failure (a thrown error, after retries) with a value. Not used on abort. */
  readonly fallback?: (err: unknown) => T | Promise<T>;
  /** Waits between attempts; defaults to a timer on the policy's Clock. */
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

const NEVER_ABORTED = new AbortController().signal;

/** Resolves after `ms` on `clock`, or rejects with the signal's reason when it aborts first. */
function sleepOnClock(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clock.clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = clock.setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    timer.unref?.();
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * One try under its timeout: min(perTryTimeoutMs, the time left before the deadline). The
 * attempt gets a signal that aborts on that timeout or on the caller's abort, and SHOULD honour
 * it; if it does not, its late result is ignored, so the timeout holds either way.
 */
async function tryOnce<T>(
  policy: RetryPolicy,
  state: RetryState,
  caller: AbortSignal,
  attempt: (state: RetryState, signal: AbortSignal) => Promise<T>,
): Promise<{ readonly result: T } | { readonly error: unknown }> {
  const timeoutMs = state.tryTimeoutMs();
  const perTryMs = policy.options.perTryTimeoutMs;
  const scope = perTryMs > 0 && perTryMs <= state.remainingMs() ? 'try' : 'overall';
  if (timeoutMs <= 0) return { error: errors.clientTimeout(scope, 0) };
  const ac = new AbortController();
  const onCallerAbort = (): void => ac.abort(caller.reason);
  caller.addEventListener('abort', onCallerAbort, { once: true });
  const timer =
    timeoutMs === Infinity
      ? undefined
      : policy.clock.setTimeout(() => ac.abort(errors.clientTimeout(scope, timeoutMs)), timeoutMs);
  timer?.unref?.();
  const aborted = new Promise<never>((_, reject) => {
    ac.signal.addEventListener('abort', () => reject(ac.signal.reason), { once: true });
  });
  try {
    return { result: await Promise.race([attempt(state, ac.signal), aborted]) };
  } catch (err) {
    // The timeout is the cause of whatever the aborted attempt threw.
    return { error: ac.signal.aborted ? ac.signal.reason : err };
  } finally {
    if (timer !== undefined) policy.clock.clearTimeout(timer);
    caller.removeEventListener('abort', onCallerAbort);
  }
}

/**
 * Runs `attempt` under `policy`: each try gets the headers of `state.headers()` to send (the
 * attempt adds them) and a signal with its timeout; `classify` turns a result into an outcome;
 * the policy decides, this loop sleeps the backoff and tries again. A final response (even a
 * 503) is returned; a final error is thrown (MeshError CLIENT_RETRY_BUDGET_EXHAUSTED when the
 * budget refused the retry, the cause being the last error), or handed to `fallback`.
 * @example
 * const res = await executeWithRetries(
 *   policy,
 *   { method: 'GET' },
 *   (state, signal) => request(url, { headers: state.headers(), signal }),
 *   (res) => ({ kind: 'response', status: res.statusCode }),
 * );
 */
export async function executeWithRetries<T>(
  policy: RetryPolicy,
  request: ExecuteRequest,
  attempt: (state: RetryState, signal: AbortSignal) => Promise<T>,
  classify: (result: T) => AttemptOutcome,
  opts: ExecuteOptions<T> = {},
): Promise<T> {
  const caller = request.signal ?? NEVER_ABORTED;
  if (caller.aborted) throw caller.reason;
  const sleep = opts.sleep ?? ((ms, signal) => sleepOnClock(policy.clock, ms, signal));
  const state = policy.begin(request);
  try {
    for (;;) {
      const tried = await tryOnce(policy, state, caller, attempt);
      if (caller.aborted) throw caller.reason;
      const outcome: AttemptOutcome =
        'result' in tried ? classify(tried.result) : { kind: 'error', error: tried.error };
      const decision = state.decide(outcome);
      if (decision.retry) {
        await sleep(decision.delayMs, caller);
        continue;
      }
      if ('result' in tried) return tried.result;
      if (decision.reason === 'budget-exhausted')
        throw errors.retryBudgetExhausted(state.attempt, tried.error);
      throw tried.error;
    }
  } catch (err) {
    if (opts.fallback === undefined || caller.aborted) throw err;
    return opts.fallback(err);
  }
}
