/** TokenBucketRateLimiter: burst, sustained rate and retry-after on the fake clock. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isMeshError, ERROR_CODES } from '../../../../src/core/errors.js';
import { TokenBucketRateLimiter } from '../../../../src/client/resilience/rate-limiter.js';
import { FakeClock } from '../../../../src/testing/fake-clock.js';

describe('TokenBucketRateLimiter', () => {
  it('allows a full burst, then the sustained rate', () => {
    const clock = new FakeClock();
    const l = new TokenBucketRateLimiter(100, 5, clock);
    let granted = 0;
    while (l.tryAcquire()) granted++;
    assert.equal(granted, 5);
    clock.advance(9);
    assert.equal(l.tryAcquire(), false, 'a token every 10 ms');
    clock.advance(1);
    assert.equal(l.tryAcquire(), true);
    // Ten seconds at one call per millisecond: about 100 per second get through.
    let passed = 0;
    for (let t = 0; t < 10_000; t++) {
      clock.advance(1);
      if (l.tryAcquire()) passed++;
    }
    assert.ok(passed >= 999 && passed <= 1001, `${passed}`);
  });

  it('never holds more than the burst after a quiet spell', () => {
    const clock = new FakeClock();
    const l = new TokenBucketRateLimiter(1000, 3, clock);
    clock.advance(60_000);
    assert.equal(l.tryAcquire(3), true);
    assert.equal(l.tryAcquire(), false);
  });

  it('says when the next tokens come', () => {
    const clock = new FakeClock();
    const l = new TokenBucketRateLimiter(10, 2, clock);
    assert.equal(l.retryAfterMs(), 0);
    l.tryAcquire(2);
    assert.equal(l.retryAfterMs(), 100);
    assert.equal(l.retryAfterMs(2), 200);
    assert.equal(l.retryAfterMs(3), Infinity, 'more than the burst never comes');
    clock.advance(50);
    assert.equal(l.retryAfterMs(), 50);
  });

  it('execute() runs when a token is free and rejects with RATE_LIMITED when not', async () => {
    const clock = new FakeClock();
    const l = new TokenBucketRateLimiter(1, 1, clock);
    assert.equal(await l.execute(async () => 'ran'), 'ran');
    await assert.rejects(
      l.execute(async () => 'ran'),
      (err) =>
        isMeshError(err, ERROR_CODES.CLIENT_RATE_LIMITED) && err.details?.retryAfterMs === 1000,
    );
  });

  it('validates rate and burst', () => {
    assert.throws(
      () => new TokenBucketRateLimiter(0, 0),
      /rateLimiter\.ratePerSecond[\s\S]*rateLimiter\.burst/,
    );
  });
});
