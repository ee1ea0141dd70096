/** Unit tests of the /v1/session/create body: LockDelay, TTL, Behavior, checks (issue 22). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ERROR_CODES, isMeshError } from '../../../../src/core/errors.js';
import { normaliseBody } from '../../../../src/registry-api/consul/consul-body.js';
import {
  DEFAULT_LOCK_DELAY_MS,
  MAX_LOCK_DELAY_MS,
  parseLockDelay,
  parseSessionCreate,
  parseSessionTtl,
  SESSION_CREATE_SPEC,
  SESSION_TTL_MAX_MS,
  SESSION_TTL_MIN_MS,
} from '../../../../src/registry-api/consul/consul-session-body.js';

/** A Consul refusal (400) whose message matches. */
const refused = (message: RegExp) => (err: unknown) => {
  assert.ok(isMeshError(err, ERROR_CODES.CONSUL_REQUEST), String(err));
  assert.equal(err.details?.status, 400);
  assert.match(err.message, message);
  return true;
};

describe('parseLockDelay', () => {
  it('defaults to 15 s, reads strings, seconds below 1000 and nanoseconds above', () => {
    assert.equal(parseLockDelay(undefined), DEFAULT_LOCK_DELAY_MS);
    assert.equal(parseLockDelay('1m'), MAX_LOCK_DELAY_MS);
    assert.equal(parseLockDelay('2s'), 2000);
    assert.equal(parseLockDelay(''), 0);
    assert.equal(parseLockDelay(15), 15_000);
    assert.equal(parseLockDelay(999), MAX_LOCK_DELAY_MS);
    assert.equal(parseLockDelay(1000), 1, '1000 ns rounds up to 1 ms');
    assert.equal(parseLockDelay(5e9), 5000);
  });

  it('answers whole ms within [0, 60 s] for every duration string and number', () => {
    const units = fc.constantFrom('ns', 'us', 'ms', 's', 'm', 'h');
    const durationText = fc
      .array(fc.tuple(fc.nat(100_000), units), { minLength: 1, maxLength: 3 })
      .map((parts) => parts.map(([n, u]) => `${n}${u}`).join(''));
    fc.assert(
      fc.property(fc.oneof(durationText, fc.double({ min: 0, max: 1e15, noNaN: true })), (v) => {
        const ms = parseLockDelay(v);
        assert.ok(Number.isSafeInteger(ms) && ms >= 0 && ms <= MAX_LOCK_DELAY_MS, `${v} -> ${ms}`);
      }),
    );
  });

  it('refuses anything else with a 400 naming LockDelay', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.constantFrom<unknown>(-1, '10', 'soon', true, [], {}, Number.NaN, '5 s', '0 ', ' 5s'),
          fc.string().filter((s) => s !== '' && !/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(s)),
        ),
        (v) => {
          assert.throws(() => parseLockDelay(v), refused(/LockDelay/));
        },
      ),
    );
  });
});

describe('parseSessionTtl', () => {
  it('reads no TTL, the bounds, and refuses outside them with Consul message', () => {
    assert.equal(parseSessionTtl(''), 0);
    assert.equal(parseSessionTtl('0s'), 0);
    assert.equal(parseSessionTtl('10s'), SESSION_TTL_MIN_MS);
    assert.equal(parseSessionTtl('86400s'), SESSION_TTL_MAX_MS);
    assert.throws(
      () => parseSessionTtl('9s'),
      refused(/^Invalid Session TTL '9000000000', must be between \[10s=24h0m0s\]$/),
    );
    assert.throws(() => parseSessionTtl('10'), refused(/^Session TTL '10' invalid/));
  });

  it('accepts exactly the durations within [10 s, 24 h]', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 * SESSION_TTL_MAX_MS }), (ms) => {
        const text = `${ms}ms`;
        if (ms >= SESSION_TTL_MIN_MS && ms <= SESSION_TTL_MAX_MS)
          assert.equal(parseSessionTtl(text), ms);
        else assert.throws(() => parseSessionTtl(text), refused(/^Invalid Session TTL/));
      }),
    );
  });
});

describe('parseSessionCreate', () => {
  const parse = (body: unknown) => parseSessionCreate(normaliseBody(body, SESSION_CREATE_SPEC));

  it('takes defaults from an empty body: release, 15 s, no TTL, checks left to the route', () => {
    assert.deepEqual(parse({}), {
      name: '',
      node: undefined,
      lockDelayMs: DEFAULT_LOCK_DELAY_MS,
      behavior: 'release',
      ttlMs: 0,
      nodeChecks: undefined,
      serviceChecks: [],
    });
  });

  it('reads python-consul lowercase keys and merges Checks with NodeChecks', () => {
    assert.deepEqual(
      parse({
        name: 'n',
        node: 'a',
        checks: ['serfHealth'],
        NodeChecks: ['serfHealth', 'disk'],
        ServiceChecks: [{ ID: 'service:web-1' }],
        lockdelay: '3s',
        behavior: 'delete',
        ttl: '30s',
      }),
      {
        name: 'n',
        node: 'a',
        lockDelayMs: 3000,
        behavior: 'delete',
        ttlMs: 30_000,
        nodeChecks: ['serfHealth', 'disk'],
        serviceChecks: ['service:web-1'],
      },
    );
    assert.deepEqual(parse({ Checks: [] }).nodeChecks, [], 'an empty list binds no check');
  });

  it('refuses an unknown Behavior and a ServiceCheck without ID', () => {
    assert.throws(() => parse({ Behavior: 'Release' }), refused(/^Invalid Behavior setting/));
    assert.throws(() => parse({ ServiceChecks: [{}] }), refused(/ServiceChecks\[0\]\.ID/));
  });
});
