/** executeWithRetries end to end with fake attempts on the fake clock: retries, timeouts, budget, abort, fallback. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isMeshError, ERROR_CODES, type MeshError } from '../../../../src/core/errors.js';
import { executeWithRetries } from '../../../../src/client/resilience/execute.js';
import {
  createRetryPolicy,
  type RetryPolicyOptions,
  type RetryState,
} from '../../../../src/client/resilience/retry-policy.js';
import { FakeClock } from '../../../../src/testing/fake-clock.js';
import { seededRandom } from '../../../helpers/seeded-random.js';

interface FakeResponse {
  readonly status: number;
}
const classify = (r: FakeResponse) => ({ kind: 'response' as const, status: r.status });
const refused = () => Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });

function setup(options: Partial<RetryPolicyOptions> = {}) {
  const clock = new FakeClock();
  const policy = createRetryPolicy(
    { budget: { ratio: 1, minRetriesPerSecond: 1000, windowMs: 10_000 }, ...options },
    { clock, random: seededRandom(3) },
  );
  const slept: number[] = [];
  // Sleeping moves fake time on, as a real backoff would.
  const sleep = async (ms: number): Promise<void> => {
    slept.push(ms);
    clock.advance(ms);
  };
  return { clock, policy, slept, sleep };
}

/** An upstream whose connections are always refused, counting the attempts. */
function alwaysRefused(): { calls: number; attempt: () => Promise<FakeResponse> } {
  const upstream = {
    calls: 0,
    attempt: async (): Promise<FakeResponse> => {
      upstream.calls++;
      throw refused();
    },
  };
  return upstream;
}

/** An attempt that hangs until its signal aborts (an upstream that never answers). */
const hang = (_s: RetryState, signal: AbortSignal): Promise<FakeResponse> =>
  new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));

describe('executeWithRetries', () => {
  it('retries 503s with backoff and sends the attempt headers, until a success', async () => {
    const { policy, slept, sleep } = setup({ overallTimeoutMs: 5000 });
    const sent: Record<string, string>[] = [];
    const statuses = [503, 502, 200];
    const res = await executeWithRetries(
      policy,
      { method: 'GET' },
      async (state) => {
        sent.push(state.headers());
        return { status: statuses[state.attempt - 1] as number };
      },
      classify,
      { sleep },
    );
    assert.equal(res.status, 200);
    assert.deepEqual(
      sent.map((h) => h['x-meshwork-attempt']),
      ['1', '2', '3'],
    );
    assert.equal(sent[0]?.['x-meshwork-deadline-ms'], '5000');
    assert.equal(
      Number(sent[2]?.['x-meshwork-deadline-ms']),
      5000 - (slept[0] ?? 0) - (slept[1] ?? 0),
    );
    assert.equal(slept.length, 2);
    assert.ok((slept[0] as number) < 25 && (slept[1] as number) < 50);
  });

  it('returns the last response when attempts run out, and does not retry a 404', async () => {
    const { policy, sleep } = setup();
    let calls = 0;
    const attempt = async () => (calls++, { status: 503 });
    assert.equal(
      (await executeWithRetries(policy, { method: 'GET' }, attempt, classify, { sleep })).status,
      503,
    );
    assert.equal(calls, 3);
    calls = 0;
    const notFound = async () => (calls++, { status: 404 });
    assert.equal(
      (await executeWithRetries(policy, { method: 'GET' }, notFound, classify, { sleep })).status,
      404,
    );
    assert.equal(calls, 1);
  });

  it('throws the last error when every attempt fails, or returns the fallback', async () => {
    const { policy, sleep } = setup();
    const upstream = alwaysRefused();
    const attempt = upstream.attempt;
    await assert.rejects(
      executeWithRetries(policy, { method: 'GET' }, attempt, classify, { sleep }),
      /ECONNREFUSED/,
    );
    assert.equal(upstream.calls, 3);
    const seen: unknown[] = [];
    const res = await executeWithRetries(policy, { method: 'POST' }, attempt, classify, {
      sleep,
      fallback: (err) => (seen.push(err), { status: 299 }),
    });
    assert.equal(res.status, 299);
    assert.equal(upstream.calls, 6, 'a refused POST was never sent, so it is retried too');
    assert.match(String(seen[0]), /ECONNREFUSED/);
    const bug = new Error('not retryable');
    await assert.rejects(
      executeWithRetries(
        policy,
        { method: 'GET' },
        (): Promise<FakeResponse> => Promise.reject(bug),
        classify,
        { sleep },
      ),
      bug,
    );
  });

  it('throws RETRY_BUDGET_EXHAUSTED, with the last error as cause, when the budget refuses', async () => {
    const { policy, sleep } = setup({
      budget: { ratio: 0, minRetriesPerSecond: 0.1, windowMs: 10_000 },
    });
    const upstream = alwaysRefused();
    await assert.rejects(
      executeWithRetries(policy, { method: 'GET' }, upstream.attempt, classify, { sleep }),
      (err: MeshError) => {
        assert.ok(isMeshError(err, ERROR_CODES.CLIENT_RETRY_BUDGET_EXHAUSTED));
        assert.equal(err.retryable, false, 'an outer layer must not retry it either');
        assert.match(String((err.cause as Error).message), /ECONNREFUSED/);
        assert.equal(err.details?.attempts, 2);
        return true;
      },
    );
    assert.equal(upstream.calls, 2, 'one retry: the floor of 0.1/s over 10 s');
  });

  it('times each try out on the clock and retries it; an attempt that ignores its signal is cut off too', async () => {
    for (const attempt of [hang, () => new Promise<FakeResponse>(() => undefined)]) {
      const { clock, policy } = setup({
        perTryTimeoutMs: 100,
        maxAttempts: 2,
        backoff: { baseMs: 0, maxMs: 0 },
      });
      const p = executeWithRetries(policy, { method: 'GET' }, attempt, classify);
      const result = p.then(
        () => 'resolved',
        (err: MeshError) => err,
      );
      await clock.advanceAsync(99, 1);
      await clock.advanceAsync(150, 10);
      const err = (await result) as MeshError;
      assert.ok(isMeshError(err, ERROR_CODES.CLIENT_TIMEOUT), String(err));
      assert.equal(err.details?.scope, 'try');
      assert.equal(clock.monotonicMs(), 249);
      assert.equal(policy.budget.stats.retries, 1);
      assert.equal(clock.pendingTimers, 0, 'no timer left behind');
    }
  });

  it('stops at the overall deadline, which also cuts the last try short', async () => {
    const { clock, policy } = setup({
      perTryTimeoutMs: 100,
      overallTimeoutMs: 150,
      backoff: { baseMs: 0, maxMs: 0 },
    });
    const started: number[] = [];
    const p = executeWithRetries(
      policy,
      { method: 'GET' },
      (s, signal) => (started.push(clock.monotonicMs()), hang(s, signal)),
      classify,
    ).catch((e: MeshError) => e);
    await clock.advanceAsync(300, 1);
    const err = (await p) as MeshError;
    assert.ok(isMeshError(err, ERROR_CODES.CLIENT_TIMEOUT));
    assert.equal(err.details?.scope, 'overall');
    assert.equal(err.retryable, false);
    assert.deepEqual(started, [0, 100]);
  });

  it('does not even try when an inherited deadline has already passed', async () => {
    const { policy, sleep } = setup();
    let calls = 0;
    const err = await executeWithRetries(
      policy,
      { method: 'GET', inherited: { 'x-meshwork-deadline-ms': '0' } },
      async () => (calls++, { status: 200 }),
      classify,
      { sleep },
    ).catch((e: MeshError) => e);
    assert.ok(isMeshError(err, ERROR_CODES.CLIENT_TIMEOUT));
    assert.equal(calls, 0);
  });

  it('sleeps the backoff on the policy clock by default', async () => {
    const { clock, policy } = setup({ backoff: { baseMs: 1000, maxMs: 1000 } });
    const at: number[] = [];
    const p = executeWithRetries(
      policy,
      { method: 'GET' },
      async (s) => (at.push(clock.monotonicMs()), { status: s.attempt < 2 ? 503 : 200 }),
      classify,
    );
    await clock.advanceAsync(1000, 50);
    assert.equal((await p).status, 200);
    assert.equal(at.length, 2);
    assert.ok((at[1] as number) > 0 && (at[1] as number) <= 1000, String(at));
  });

  it('gives up at once, without fallback, when the caller aborts during an attempt or a backoff', async () => {
    const { clock, policy } = setup({ backoff: { baseMs: 1000, maxMs: 1000 } });
    const ac = new AbortController();
    const fallback = () => ({ status: 0 });
    const during = executeWithRetries(
      policy,
      { method: 'GET', signal: ac.signal },
      hang,
      classify,
      { fallback },
    );
    ac.abort(new Error('caller gone'));
    await assert.rejects(during, /caller gone/);

    const ac2 = new AbortController();
    let calls = 0;
    const sleeping = executeWithRetries(
      policy,
      { method: 'GET', signal: ac2.signal },
      async () => (calls++, { status: 503 }),
      classify,
      { fallback },
    );
    await clock.advanceAsync(1, 1);
    ac2.abort(new Error('bye'));
    await assert.rejects(sleeping, /bye/);
    assert.equal(calls, 1);
    assert.equal(clock.pendingTimers, 0);
    await assert.rejects(
      executeWithRetries(policy, { method: 'GET', signal: ac2.signal }, hang, classify),
      /bye/,
      'an already aborted signal: nothing is tried',
    );
  });
});
