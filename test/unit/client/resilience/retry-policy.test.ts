/** RetryPolicy decisions: backoff, idempotency, statuses, errors, maxAttempts, deadlines, headers, layering. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { errors, isMeshError, ERROR_CODES } from '../../../../src/core/errors.js';
import {
  createRetryPolicy,
  DEFAULT_RETRY_POLICY_OPTIONS,
  RetryPolicy,
  type AttemptOutcome,
  type RetryPolicyOptions,
} from '../../../../src/client/resilience/retry-policy.js';
import { FakeClock } from '../../../../src/testing/fake-clock.js';
import { seededRandom } from '../../../helpers/seeded-random.js';

const S503: AttemptOutcome = { kind: 'response', status: 503 };
const refused: AttemptOutcome = {
  kind: 'error',
  error: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
};
const reset: AttemptOutcome = {
  kind: 'error',
  error: Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }),
};

/** A policy whose budget never gets in the way, unless a test is about it. */
function policy(
  options: Partial<RetryPolicyOptions> = {},
  clock = new FakeClock(),
  random = seededRandom(1),
): RetryPolicy {
  return createRetryPolicy(
    { budget: { ratio: 1, minRetriesPerSecond: 1e6, windowMs: 10_000 }, ...options },
    { clock, random },
  );
}

describe('RetryPolicy', () => {
  it('has frozen defaults: 3 attempts, 25/1000 ms backoff, 502/503/504, budget 0.2/10/10s', () => {
    const p = createRetryPolicy();
    assert.deepEqual(p.options, DEFAULT_RETRY_POLICY_OPTIONS);
    assert.equal(p.options.maxAttempts, 3);
    assert.deepEqual(p.options.retryOnStatuses, [502, 503, 504]);
    assert.ok(Object.isFrozen(p.options) && Object.isFrozen(p.options.backoff));
    assert.ok(Object.isFrozen(DEFAULT_RETRY_POLICY_OPTIONS.budget));
    assert.throws(() => (p.options.retryOnStatuses as number[]).push(500), TypeError);
  });

  it('merges nested options over the defaults', () => {
    const p = createRetryPolicy({ backoff: { maxMs: 50 } as RetryPolicyOptions['backoff'] });
    assert.deepEqual(p.options.backoff, { baseMs: 25, maxMs: 50 });
  });

  it('rejects bad options with one CONFIG_INVALID error naming every field', () => {
    assert.throws(
      () =>
        createRetryPolicy({
          maxAttempts: 0,
          backoff: { baseMs: 100, maxMs: 10 },
          retryOnStatuses: [200],
          budget: { ratio: 2, minRetriesPerSecond: 10, windowMs: 10_000 },
        }),
      (err: unknown) => {
        assert.ok(isMeshError(err, ERROR_CODES.CONFIG_INVALID));
        const problems = err.details?.problems as string[];
        assert.equal(problems.length, 4, problems.join('\n'));
        for (const field of [
          'retry.maxAttempts',
          'retry.backoff.maxMs',
          'retry.retryOnStatuses[0]',
          'retry.budget.ratio',
        ])
          assert.ok(
            problems.some((p) => p.startsWith(`${field}:`)),
            `${field} in ${problems.join('; ')}`,
          );
        return true;
      },
    );
    assert.throws(
      () => createRetryPolicy({ maxAtempts: 2 } as never),
      /retry\.maxAtempts: unknown option/,
    );
  });

  describe('backoff', () => {
    it('waits a full-jitter delay in [0, min(maxMs, baseMs * 2^(n-1)))', () => {
      const p = policy({ maxAttempts: 10, backoff: { baseMs: 10, maxMs: 200 } });
      const caps = [10, 20, 40, 80, 160, 200, 200, 200, 200];
      const seen = caps.map(() => [Infinity, -Infinity] as [number, number]);
      for (let r = 0; r < 500; r++) {
        const s = p.begin({ method: 'GET' });
        for (let n = 1; n < 10; n++) {
          const d = s.decide(S503);
          assert.equal(d.retry, true);
          assert.ok(
            d.delayMs >= 0 && d.delayMs < (caps[n - 1] as number),
            `retry ${n}: ${d.delayMs}`,
          );
          assert.ok(Number.isInteger(d.delayMs));
          const b = seen[n - 1] as [number, number];
          b[0] = Math.min(b[0], d.delayMs);
          b[1] = Math.max(b[1], d.delayMs);
        }
      }
      // Full jitter: the whole range is used, not just its upper half.
      for (const [n, [lo, hi]] of seen.entries()) {
        assert.ok(lo <= (caps[n] as number) * 0.05, `retry ${n + 1} min ${lo}`);
        assert.ok(hi >= (caps[n] as number) * 0.9, `retry ${n + 1} max ${hi}`);
      }
    });

    it('uses the injected random', () => {
      const zero = policy({}, new FakeClock(), () => 0);
      assert.equal(zero.begin({ method: 'GET' }).decide(S503).delayMs, 0);
      const high = policy({}, new FakeClock(), () => 0.999);
      const s = high.begin({ method: 'GET' });
      assert.equal(s.decide(S503).delayMs, 24);
      assert.equal(s.decide(S503).delayMs, 49);
    });
  });

  describe('what is retried', () => {
    it('retries 502, 503, 504 and configured statuses, and returns any other response', () => {
      const p = policy();
      for (const status of [502, 503, 504])
        assert.deepEqual(
          p.begin({ method: 'GET' }).decide({ kind: 'response', status }).reason,
          'retryable-status',
        );
      for (const status of [200, 404, 429, 500])
        assert.deepEqual(p.begin({ method: 'GET' }).decide({ kind: 'response', status }), {
          retry: false,
          delayMs: 0,
          reason: 'response',
        });
      const q = policy({ retryOnStatuses: [429] });
      assert.equal(
        q.begin({ method: 'GET' }).decide({ kind: 'response', status: 429 }).retry,
        true,
      );
      assert.equal(q.begin({ method: 'GET' }).decide(S503).retry, false);
    });

    it('retries connect errors unless disabled, and retryable MeshErrors, but not other errors', () => {
      const p = policy();
      assert.equal(p.begin({ method: 'GET' }).decide(refused).reason, 'connect-error');
      assert.equal(p.begin({ method: 'GET' }).decide(reset).reason, 'connect-error');
      const timeout: AttemptOutcome = { kind: 'error', error: errors.clientTimeout('try', 100) };
      assert.equal(p.begin({ method: 'GET' }).decide(timeout).reason, 'retryable-error');
      for (const error of [
        new Error('bug'),
        errors.validation('x', 'bad'),
        errors.clientTimeout('overall', 5),
      ])
        assert.equal(
          p.begin({ method: 'GET' }).decide({ kind: 'error', error }).reason,
          'error-not-retryable',
        );
      const off = policy({ retryOnConnectErrors: false });
      assert.equal(off.begin({ method: 'GET' }).decide(refused).retry, false);
    });

    it('retries only idempotent methods (RFC 9110 9.2.2), or requests marked idempotent', () => {
      const p = policy();
      for (const method of ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE', 'get'])
        assert.equal(p.begin({ method }).decide(S503).retry, true, method);
      for (const method of ['POST', 'PATCH', 'CONNECT'])
        assert.deepEqual(p.begin({ method }).decide(S503).reason, 'non-idempotent', method);
      assert.equal(p.begin({ method: 'POST', idempotent: true }).decide(S503).retry, true);
      assert.equal(
        policy({ retryNonIdempotent: true }).begin({ method: 'POST' }).decide(S503).retry,
        true,
      );
    });

    it('retries a non-idempotent request whose connection was refused: it was never sent', () => {
      const p = policy();
      assert.equal(p.begin({ method: 'POST' }).decide(refused).retry, true);
      assert.equal(p.begin({ method: 'POST' }).decide(reset).reason, 'non-idempotent');
    });

    it('stops at maxAttempts', () => {
      const p = policy({ maxAttempts: 3 });
      const s = p.begin({ method: 'GET' });
      assert.equal(s.attempt, 1);
      assert.equal(s.decide(S503).retry, true);
      assert.equal(s.attempt, 2);
      assert.equal(s.decide(S503).retry, true);
      assert.equal(s.attempt, 3);
      assert.deepEqual(s.decide(S503), { retry: false, delayMs: 0, reason: 'max-attempts' });
      assert.equal(s.attempt, 3);
      assert.equal(
        policy({ maxAttempts: 1 }).begin({ method: 'GET' }).decide(S503).reason,
        'max-attempts',
      );
    });
  });

  describe('deadlines and headers', () => {
    it('has no deadline by default: Infinity, and no deadline header', () => {
      const s = policy().begin({ method: 'GET' });
      assert.equal(s.remainingMs(), Infinity);
      assert.equal(s.tryTimeoutMs(), Infinity);
      assert.deepEqual(s.headers(), { 'x-meshwork-attempt': '1' });
    });

    it('counts the overall deadline down on the clock and caps the try timeout with it', () => {
      const clock = new FakeClock();
      const s = policy({ overallTimeoutMs: 1000, perTryTimeoutMs: 300 }, clock).begin({
        method: 'GET',
      });
      assert.equal(s.tryTimeoutMs(), 300);
      clock.advance(800);
      assert.equal(s.remainingMs(), 200);
      assert.equal(s.tryTimeoutMs(), 200);
      assert.deepEqual(s.headers(), { 'x-meshwork-attempt': '1', 'x-meshwork-deadline-ms': '200' });
      clock.advance(0.6);
      assert.equal(s.headers()['x-meshwork-deadline-ms'], '199', 'an integer, rounded down');
      // A try's timeout in whole ms, rounded up: node truncates a timer's duration, which
      // would end the try before its deadline.
      assert.equal(s.tryTimeoutMs(), 200, 'rounded up: 199.4 ms left');
      clock.advance(500);
      assert.equal(s.remainingMs(), 0);
      assert.equal(s.decide(S503).reason, 'deadline');
    });

    it('refuses a retry whose backoff would reach the deadline', () => {
      const clock = new FakeClock();
      // random 0.5 with base 100: the first backoff is 50 ms.
      const p = policy(
        { overallTimeoutMs: 1000, backoff: { baseMs: 100, maxMs: 100 } },
        clock,
        () => 0.5,
      );
      const late = p.begin({ method: 'GET' });
      clock.advance(950);
      assert.deepEqual(late.decide(S503), { retry: false, delayMs: 0, reason: 'deadline' });
      const early = p.begin({ method: 'GET' });
      clock.advance(949);
      assert.deepEqual(early.decide(S503), {
        retry: true,
        delayMs: 50,
        reason: 'retryable-status',
      });
      assert.deepEqual(early.headers(), {
        'x-meshwork-attempt': '2',
        'x-meshwork-deadline-ms': '51',
      });
    });

    it('takes a shorter inherited deadline over its own, and ignores garbage', () => {
      const clock = new FakeClock();
      const p = policy({ overallTimeoutMs: 1000 }, clock);
      assert.equal(
        p.begin({ method: 'GET', inherited: { 'x-meshwork-deadline-ms': '250' } }).remainingMs(),
        250,
      );
      assert.equal(
        p.begin({ method: 'GET', inherited: { 'x-meshwork-deadline-ms': '5000' } }).remainingMs(),
        1000,
      );
      assert.equal(
        p
          .begin({ method: 'GET', inherited: { 'x-meshwork-deadline-ms': ['300', '10'] } })
          .remainingMs(),
        300,
      );
      for (const bad of ['-5', 'soon', '', '1e3', '12.5'])
        assert.equal(
          p.begin({ method: 'GET', inherited: { 'x-meshwork-deadline-ms': bad } }).remainingMs(),
          1000,
          bad,
        );
      const none = policy({}, clock).begin({
        method: 'GET',
        inherited: { 'x-meshwork-deadline-ms': '40' },
      });
      assert.equal(none.remainingMs(), 40, 'an inherited deadline applies without one of our own');
      assert.equal(none.headers()['x-meshwork-deadline-ms'], '40', 'and is passed on');
    });

    it('does not retry what an upstream layer already retries (inherited attempt > 1), and continues its numbering', () => {
      const p = policy();
      const first = p.begin({ method: 'GET', inherited: { 'x-meshwork-attempt': '1' } });
      assert.equal(first.decide(S503).retry, true, 'attempt 1 of the caller: we may retry');
      assert.equal(first.headers()['x-meshwork-attempt'], '2');
      const retried = p.begin({ method: 'GET', inherited: { 'x-meshwork-attempt': '2' } });
      assert.equal(retried.headers()['x-meshwork-attempt'], '2', 'forwarded as the retry it is');
      assert.deepEqual(retried.decide(S503), {
        retry: false,
        delayMs: 0,
        reason: 'retried-upstream',
      });
      assert.equal(retried.decide(refused).reason, 'retried-upstream');
    });
  });

  describe('budget', () => {
    it('refuses retries once the shared budget is spent, and takes from it only for real retries', () => {
      const clock = new FakeClock();
      const p = createRetryPolicy(
        { maxAttempts: 5, budget: { ratio: 0.5, minRetriesPerSecond: 0, windowMs: 10_000 } },
        { clock, random: () => 0 },
      );
      const a = p.begin({ method: 'GET' });
      const b = p.begin({ method: 'GET' });
      // Two requests at ratio 0.5: one retry in the window.
      assert.equal(p.begin({ method: 'POST' }).decide(S503).reason, 'non-idempotent');
      assert.equal(a.decide(S503).retry, true);
      assert.deepEqual(b.decide(S503), { retry: false, delayMs: 0, reason: 'budget-exhausted' });
      assert.deepEqual(p.budget.stats, { requests: 3, retries: 1, refused: 1 });
    });
  });

  it('constructs with new as with createRetryPolicy, on the system clock by default', () => {
    const p = new RetryPolicy({ maxAttempts: 2 });
    assert.equal(p.options.maxAttempts, 2);
    assert.equal(p.begin({ method: 'GET' }).remainingMs(), Infinity);
  });
});
