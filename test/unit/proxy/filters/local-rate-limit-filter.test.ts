import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { FilterExchange, LocalReply } from '../../../../src/proxy/filter.js';
import {
  createLocalRateLimitFilter,
  localRateLimitProblems,
} from '../../../../src/proxy/filters/local-rate-limit/local-rate-limit-filter.js';
import { FakeClock } from '../../../../src/testing/fake-clock.js';

const ex = {} as FilterExchange;

describe('local rate limit filter', () => {
  it('lets maxTokens through, then answers 429 with retry-after in whole seconds, and refills', () => {
    const clock = new FakeClock();
    const counts = { rateLimited: 0 };
    const f = createLocalRateLimitFilter(
      { maxTokens: 3, tokensPerFill: 1, fillIntervalMs: 2500 },
      clock,
      counts,
    );
    for (let i = 0; i < 3; i++) assert.equal(f.onRequest?.(ex), 'continue');
    const reply = f.onRequest?.(ex) as LocalReply;
    assert.equal(reply.status, 429);
    assert.deepEqual(reply.headers, { 'retry-after': '3' }); // 2.5 s rounded up
    assert.deepEqual(reply.body, {
      error: {
        code: 'MESHWORK_ERR_PROXY_RATE_LIMITED',
        message: 'rate limited: retry after 2500 ms',
        retryAfterMs: 2500,
      },
    });
    assert.equal(counts.rateLimited, 1);
    clock.advance(1000);
    assert.deepEqual((f.onRequest?.(ex) as LocalReply).headers, { 'retry-after': '2' });
    clock.advance(1500);
    assert.equal(f.onRequest?.(ex), 'continue');
    assert.notEqual(f.onRequest?.(ex), 'continue');
  });

  it('never answers a retry-after below 1 s', () => {
    const clock = new FakeClock();
    const f = createLocalRateLimitFilter(
      { maxTokens: 1, tokensPerFill: 10, fillIntervalMs: 10 },
      clock,
    );
    f.onRequest?.(ex);
    assert.deepEqual((f.onRequest?.(ex) as LocalReply).headers, { 'retry-after': '1' });
  });

  it('names each bad field, and builds every option it accepts (property)', () => {
    assert.deepEqual(
      localRateLimitProblems({ maxTokens: 0, tokensPerFill: 1.5, fillIntervalMs: 1 }, 'r'),
      [
        'r.maxTokens: must be a whole number 1..1000000000',
        'r.tokensPerFill: must be a whole number 1..1000000000',
      ],
    );
    fc.assert(
      fc.property(
        fc.integer({ min: -2, max: 2e9 }),
        fc.integer({ min: -2, max: 2e9 }),
        fc.integer({ min: -2, max: 1e8 }),
        (maxTokens, tokensPerFill, fillIntervalMs) => {
          const o = { maxTokens, tokensPerFill, fillIntervalMs };
          if (localRateLimitProblems(o, 'r').length === 0)
            createLocalRateLimitFilter(o, new FakeClock()).onRequest?.(ex);
        },
      ),
    );
  });
});
