/** Property tests of the pure parsers: durations, registrations, check normalisation. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseDurationMs } from '../../../src/core/duration.js';
import { isMeshError } from '../../../src/core/errors.js';
import {
  CheckShapeError,
  normalizeChecks,
  registrationInputSchema,
} from '../../../src/protocol/registration.js';
import { parseOrThrow } from '../../../src/protocol/validation.js';

const SEED = 7;

describe('parseDurationMs', () => {
  it('parses Go-style durations', () => {
    assert.equal(parseDurationMs('10s'), 10_000);
    assert.equal(parseDurationMs('1m30s'), 90_000);
    assert.equal(parseDurationMs('250ms'), 250);
    assert.equal(parseDurationMs('1.5h'), 5_400_000);
    assert.equal(parseDurationMs('1us'), 1);
    assert.equal(parseDurationMs('1500'), 1500);
    assert.equal(parseDurationMs('0'), 0);
    for (const bad of [
      '',
      's',
      '-1s',
      '1d',
      '1s2',
      'soon',
      '9'.repeat(400),
      `${'9'.repeat(400)}h`,
    ]) {
      assert.equal(parseDurationMs(bad), undefined, bad);
    }
  });

  it('never throws and yields a non-negative whole number or undefined for any string', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        const ms = parseDurationMs(s);
        assert.ok(ms === undefined || (Number.isSafeInteger(ms) && ms >= 0), `${s} -> ${ms}`);
      }),
      { numRuns: 2000, seed: SEED },
    );
  });

  it('round-trips sums of units', () => {
    fc.assert(
      fc.property(fc.nat(100), fc.nat(59), fc.nat(59), fc.nat(999), (h, m, s, ms) => {
        assert.equal(
          parseDurationMs(`${h}h${m}m${s}s${ms}ms`),
          ((h * 60 + m) * 60 + s) * 1000 + ms,
        );
      }),
      { seed: SEED },
    );
  });
});

describe('registration schema', () => {
  it('either parses into a registration with a DNS-safe service or throws a validation error naming a field', () => {
    fc.assert(
      fc.property(fc.anything(), (value) => {
        try {
          const r = parseOrThrow(registrationInputSchema, value);
          assert.match(r.service, /^[a-z0-9-]{1,63}$/);
        } catch (err) {
          assert.ok(isMeshError(err), String(err));
          assert.equal(typeof err.details?.field, 'string');
        }
      }),
      { numRuns: 2000, seed: SEED },
    );
  });

  it('normalises any parsed check list or names the offending check field', () => {
    const check = fc.record(
      {
        http: fc.constantFrom('http://127.0.0.1/h', 'https://a.b/'),
        tcp: fc.constantFrom('127.0.0.1:80', '[::1]:1', 'host'),
        ttlMs: fc.nat(100_000),
        kind: fc.constantFrom('http', 'tcp', 'ttl'),
        id: fc.constantFrom('a', 'b', 'ttl'),
        failuresBeforeWarning: fc.integer({ min: 1, max: 5 }),
        failuresBeforeCritical: fc.integer({ min: 1, max: 5 }),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.array(check, { maxLength: 5 }), (checks) => {
        try {
          const defs = normalizeChecks(checks);
          assert.equal(new Set(defs.map((d) => d.id)).size, defs.length, 'ids are unique');
          for (const d of defs) {
            assert.ok(d.timeoutMs <= Math.max(d.intervalMs, 1));
            assert.ok(d.failuresBeforeWarning <= d.failuresBeforeCritical);
            if (d.kind === 'ttl') assert.ok((d.ttlMs ?? 0) >= 1);
          }
        } catch (err) {
          assert.ok(err instanceof CheckShapeError, String(err));
          assert.match(err.field, /^checks\[\d+\]\.\w+$/);
        }
      }),
      { numRuns: 1000, seed: SEED },
    );
  });
});
