/** Property tests of the pure parsers: durations, registrations, check normalisation. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseDurationMs } from '../../../src/core/duration.js';
import { isMeshError } from '../../../src/core/errors.js';
import {
  checkInputSchema,
  CheckShapeError,
  normalizeChecks,
  registrationInputSchema,
  type ParsedCheck,
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

// Issue 16: `interval: 1` probed a URL 800 times a second, `interval: 0` was taken and never ran,
// and `ttl: 5` meant 5 ms. Each floored duration is refused below its floor, naming its field and
// saying the unit.
describe('normalizeChecks floors', () => {
  const FIELDS = [
    ['interval', 'intervalMs', { http: 'http://127.0.0.1/h' }, false],
    ['intervalMs', 'intervalMs', { tcp: '127.0.0.1:80' }, false],
    ['timeout', 'timeoutMs', { http: 'http://127.0.0.1/h', interval: 86_400_000 }, false],
    ['ttl', 'ttlMs', {}, false],
    ['ttlMs', 'ttlMs', {}, false],
    ['deregisterCriticalAfter', 'deregisterCriticalAfterMs', { ttl: 86_400_000 }, true],
  ] as const;
  const floorsArb = fc.record({
    intervalMs: fc.integer({ min: 1, max: 100_000 }),
    timeoutMs: fc.integer({ min: 1, max: 100_000 }),
    ttlMs: fc.integer({ min: 1, max: 100_000 }),
    deregisterCriticalAfterMs: fc.integer({ min: 1, max: 100_000 }),
  });

  it('refuses a duration below its floor naming the field and the unit, and takes one at or above', () => {
    fc.assert(
      fc.property(
        floorsArb,
        fc.constantFrom(...FIELDS),
        fc.integer({ min: 0, max: 200_000 }),
        (floors, [field, floorKey, base, zeroIsNever], v) => {
          const floor = floors[floorKey];
          const input = { ...base, [field]: v } as ParsedCheck;
          const refused = v < floor && !(zeroIsNever && v === 0);
          try {
            normalizeChecks([input], floors);
            assert.ok(!refused, `${field}: ${v} taken below the floor ${floor}`);
          } catch (err) {
            assert.ok(err instanceof CheckShapeError, String(err));
            assert.ok(
              refused,
              `${field}: ${v} refused at or above the floor ${floor}: ${err.reason}`,
            );
            assert.equal(err.field, `checks[0].${field}`);
            assert.match(err.reason, new RegExp(`at least ${floor} ms .*got ${v} ms`));
            if (v > 0 && v * 1000 >= floor) assert.match(err.reason, new RegExp(`write "${v}s"`));
          }
        },
      ),
      { numRuns: 2000, seed: SEED },
    );
  });

  it('refuses interval 0 and a bare ttl meant as seconds by default', () => {
    const reason = (c: ParsedCheck): string => {
      try {
        normalizeChecks([c]);
      } catch (err) {
        assert.ok(err instanceof CheckShapeError);
        return `${err.field}: ${err.reason}`;
      }
      return 'taken';
    };
    assert.equal(
      reason({ http: 'http://x/', interval: 0 }),
      'checks[0].interval: must be at least 1000 ms ("1s"), got 0 ms',
    );
    assert.equal(
      reason({ ttl: 5 }),
      'checks[0].ttl: must be at least 1000 ms ("1s"), got 5 ms: a bare number is milliseconds, write "5s" for 5 seconds',
    );
    assert.equal(reason({ ttl: 1000 }), 'taken');
  });
});

describe('parseDurationMs then the floors (config files and the CLI write strings)', () => {
  it('refuses every string duration under the floor and takes every one at or above', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 5000 }),
        fc.constantFrom('ms', 'us', 's'),
        (n, unit) => {
          const text = `${n}${unit}`;
          const parsed = parseOrThrow(checkInputSchema, { http: 'http://x/', interval: text });
          const ms = parseDurationMs(text) as number;
          let taken = true;
          try {
            normalizeChecks([parsed]);
          } catch (err) {
            assert.ok(err instanceof CheckShapeError);
            taken = false;
          }
          assert.equal(taken, ms >= 1000, `${text} = ${ms} ms`);
        },
      ),
      { numRuns: 1000, seed: SEED },
    );
  });
});
