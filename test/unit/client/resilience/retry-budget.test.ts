/** RetryBudget: retries stay within ratio * requests + floor over a sliding window of the Clock. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RetryBudget } from '../../../../src/client/resilience/retry-budget.js';
import { createRetryPolicy } from '../../../../src/client/resilience/retry-policy.js';
import { FakeClock } from '../../../../src/testing/fake-clock.js';
import { seededRandom } from '../../../helpers/seeded-random.js';

describe('RetryBudget', () => {
  it('allows the floor with no traffic, then ratio * requests on top', () => {
    const clock = new FakeClock();
    const b = new RetryBudget({ ratio: 0.2, minRetriesPerSecond: 1, windowMs: 3000 }, clock);
    let granted = 0;
    while (b.tryAcquireRetry()) granted++;
    assert.equal(granted, 3, 'floor: 1 per second over a 3 s window');
    for (let i = 0; i < 10; i++) b.recordRequest();
    assert.equal(b.tryAcquireRetry(), true);
    assert.equal(b.tryAcquireRetry(), true);
    assert.equal(b.tryAcquireRetry(), false, '3 + 0.2 * 10 = 5 retries');
    assert.deepEqual(b.stats, { requests: 10, retries: 5, refused: 2 });
  });

  it('forgets requests and retries that slid out of the window', () => {
    const clock = new FakeClock();
    const b = new RetryBudget({ ratio: 1, minRetriesPerSecond: 0, windowMs: 1000 }, clock);
    for (let i = 0; i < 4; i++) b.recordRequest();
    for (let i = 0; i < 4; i++) assert.equal(b.tryAcquireRetry(), true);
    assert.equal(b.tryAcquireRetry(), false);
    clock.advance(500);
    b.recordRequest();
    assert.equal(b.available(), 1);
    clock.advance(550);
    // The first four requests and their four retries left the window together.
    assert.equal(b.available(), 1);
    clock.advance(1000);
    assert.equal(b.available(), 0);
    assert.equal(b.tryAcquireRetry(), false);
    clock.advance(60_000);
    b.recordRequest();
    assert.equal(b.available(), 1, 'after a long idle gap only the new request counts');
  });

  // Issue 6: "upstream answers 503 to everything: upstream attempts stay at most 1.25x the
  // requests plus the floor".
  it('keeps attempts under a 100% failing upstream near 1.2x the requests, at most 1.25x plus the floor', () => {
    const clock = new FakeClock();
    const policy = createRetryPolicy({ maxAttempts: 3 }, { clock, random: seededRandom(42) });
    const requests = 10_000;
    const intervalMs = 1; // 1000 requests per second for 10 s
    let attempts = 0;
    for (let i = 0; i < requests; i++) {
      const state = policy.begin({ method: 'GET' });
      for (;;) {
        attempts++;
        if (!state.decide({ kind: 'response', status: 503 }).retry) break;
      }
      clock.advance(intervalMs);
    }
    const { minRetriesPerSecond, windowMs } = policy.options.budget;
    const durationMs = requests * intervalMs;
    const floor = (minRetriesPerSecond * (durationMs + windowMs)) / 1000;
    assert.ok(attempts <= 1.25 * requests + floor, `${attempts} attempts`);
    // Without the budget every request would make 3 attempts (30,000).
    assert.ok(attempts >= 1.18 * requests, `${attempts} attempts: the budget is used, not starved`);
    assert.equal(policy.budget.stats.requests, requests);
    assert.equal(policy.budget.stats.retries, attempts - requests);
  });
});
