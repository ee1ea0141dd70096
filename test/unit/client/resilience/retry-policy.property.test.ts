/** Property tests: option validation (valid and frozen, or one error naming the fields) and the budget invariant. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isMeshError, ERROR_CODES } from '../../../../src/core/errors.js';
import { createRetryPolicy } from '../../../../src/client/resilience/retry-policy.js';
import { FakeClock } from '../../../../src/testing/fake-clock.js';

const SEED = 6;

/** Mostly `valid`, sometimes any shape at all: whole numbers out of range, NaN, wrong types. */
const mostly = <T>(valid: fc.Arbitrary<T>): fc.Arbitrary<unknown> =>
  fc.oneof(
    { arbitrary: valid, weight: 12 },
    {
      arbitrary: fc.oneof(
        fc.integer({ min: -5, max: 5_000_000_000 }),
        fc.double(),
        fc.constant(undefined),
        fc.string({ maxLength: 3 }),
        fc.boolean(),
        fc.constant(null),
      ),
      weight: 1,
    },
  );

const ms = (max: number) => fc.integer({ min: 0, max });

const optionsArb = fc
  .record(
    {
      maxAttempts: mostly(fc.integer({ min: 1, max: 10 })),
      perTryTimeoutMs: mostly(ms(86_400_000)),
      overallTimeoutMs: mostly(ms(86_400_000)),
      backoff: mostly(
        fc.record(
          { baseMs: mostly(ms(1000)), maxMs: mostly(fc.integer({ min: 1000, max: 3_600_000 })) },
          { requiredKeys: [] },
        ),
      ),
      retryOnStatuses: mostly(
        fc.array(mostly(fc.integer({ min: 400, max: 599 })), { maxLength: 4 }),
      ),
      retryOnConnectErrors: mostly(fc.boolean()),
      retryNonIdempotent: mostly(fc.boolean()),
      budget: mostly(
        fc.record(
          {
            ratio: mostly(fc.double({ min: 0, max: 1, noNaN: true })),
            minRetriesPerSecond: mostly(fc.integer({ min: 0, max: 1000 })),
            windowMs: mostly(fc.integer({ min: 100, max: 3_600_000 })),
          },
          { requiredKeys: [] },
        ),
      ),
    },
    { requiredKeys: [] },
  )
  .chain((o) =>
    fc.oneof(
      { arbitrary: fc.constant(o), weight: 9 },
      { arbitrary: fc.constant({ ...o, unknownKnob: 1 }), weight: 1 },
    ),
  );

/** The top-level option names a problem line is about ("retry.backoff.maxMs: ..." -> backoff). */
const fieldOf = (problem: string): string => /^retry\.([A-Za-z]+)/.exec(problem)?.[1] ?? '?';

describe('createRetryPolicy (properties)', () => {
  it('either returns deeply frozen options or throws one CONFIG_INVALID naming each bad field', () => {
    const outcomes = { runs: 0, rejected: 0 };
    fc.assert(
      fc.property(optionsArb, (input) => {
        let policy;
        outcomes.runs++;
        try {
          policy = createRetryPolicy(input as never);
        } catch (err) {
          assert.ok(isMeshError(err, ERROR_CODES.CONFIG_INVALID), String(err));
          const problems = err.details?.problems as string[];
          assert.ok(problems.length > 0);
          const named = new Set(problems.map(fieldOf));
          assert.ok(!named.has('?'), problems.join('; '));
          // Every named field was given, and is one the input got wrong.
          for (const f of named) assert.ok(f in input, `${f} not in input: ${problems.join('; ')}`);
          if ('unknownKnob' in input) assert.ok(named.has('unknownKnob'));
          outcomes.rejected++;
          return;
        }
        assert.ok(!('unknownKnob' in input), 'an unknown option is never accepted');
        const o = policy.options;
        assert.ok(Object.isFrozen(o) && Object.isFrozen(o.backoff) && Object.isFrozen(o.budget));
        assert.ok(Object.isFrozen(o.retryOnStatuses));
        assert.ok(Number.isInteger(o.maxAttempts) && o.maxAttempts >= 1 && o.maxAttempts <= 10);
        assert.ok(o.backoff.maxMs >= o.backoff.baseMs);
        assert.ok(o.budget.ratio >= 0 && o.budget.ratio <= 1);
        for (const [k, v] of Object.entries(input))
          if (typeof v !== 'object' && v !== undefined)
            assert.equal(o[k as keyof typeof o], v, `${k} kept as given`);
      }),
      { numRuns: 1500, seed: SEED },
    );
    // Both branches are exercised, or the property says nothing.
    const { runs, rejected } = outcomes;
    assert.ok(rejected > 300 && runs - rejected > 300, `${rejected} of ${runs} rejected`);
  });

  it('never lets retries exceed ratio * requests + the floor of each window passed, whatever the traffic', () => {
    fc.assert(
      fc.property(
        fc.record({
          ratio: fc.double({ min: 0, max: 1, noNaN: true }),
          minRetriesPerSecond: fc.integer({ min: 0, max: 20 }),
          windowMs: fc.integer({ min: 100, max: 5000 }),
          maxAttempts: fc.integer({ min: 1, max: 10 }),
          // Gaps between requests: bursts (0) and idle spells.
          gapsMs: fc.array(
            fc.oneof(
              fc.constant(0),
              fc.integer({ min: 0, max: 50 }),
              fc.integer({ min: 0, max: 8000 }),
            ),
            {
              minLength: 1,
              maxLength: 400,
            },
          ),
          failPercent: fc.integer({ min: 0, max: 100 }),
        }),
        ({ ratio, minRetriesPerSecond, windowMs, maxAttempts, gapsMs, failPercent }) => {
          const clock = new FakeClock();
          const policy = createRetryPolicy(
            { maxAttempts, budget: { ratio, minRetriesPerSecond, windowMs } },
            { clock, random: () => 0 },
          );
          let attempts = 0;
          let n = 0;
          for (const gap of gapsMs) {
            clock.advance(gap);
            const state = policy.begin({ method: 'GET' });
            for (;;) {
              attempts++;
              const status = (n++ * 37) % 100 < failPercent ? 503 : 200;
              if (!state.decide({ kind: 'response', status }).retry) break;
            }
          }
          const requests = gapsMs.length;
          const durationMs = gapsMs.reduce((a, b) => a + b, 0);
          const floorPerWindow = (minRetriesPerSecond * windowMs) / 1000;
          const windows = Math.floor(durationMs / windowMs) + 2;
          assert.ok(attempts - requests <= ratio * requests + floorPerWindow * windows + 1e-9);
          assert.ok(attempts <= requests * maxAttempts);
        },
      ),
      { numRuns: 400, seed: SEED },
    );
  });
});
