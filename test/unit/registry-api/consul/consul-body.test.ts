/** The Consul body normaliser: Go-style key matching, typed fields, and random input. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ERROR_CODES, isMeshError } from '../../../../src/core/errors.js';
import {
  CATALOG_REGISTER_SPEC,
  CHECK_SPEC,
  normaliseBody,
  normaliseKey,
  parseJsonBody,
  SERVICE_SPEC,
} from '../../../../src/registry-api/consul/consul-body.js';
import {
  checkDefinitions,
  checkFromConsul,
} from '../../../../src/registry-api/consul/consul-registration.js';

const SEED = 11;

describe('normaliseBody', () => {
  it('matches keys case-insensitively and without underscores, and types values', () => {
    const b = normaliseBody(
      {
        name: 'web',
        ID: 'web-1',
        PORT: 80,
        tags: ['a'],
        enable_tag_override: true,
        meta: { 'Keep-Case': 'v' },
        check: { http: 'http://x/', interval: '10s', DeregisterCriticalServiceAfter: '1m30s' },
        checks: [{ ttl: 30_000_000_000 }, { script_args: ['a'] }],
      },
      SERVICE_SPEC,
    );
    assert.deepEqual(b, {
      Name: 'web',
      ID: 'web-1',
      Port: 80,
      Tags: ['a'],
      EnableTagOverride: true,
      Meta: { 'Keep-Case': 'v' },
      Check: { HTTP: 'http://x/', Interval: 10_000, DeregisterCriticalServiceAfter: 90_000 },
      Checks: [{ TTL: 30_000 }, { Args: ['a'] }],
    });
  });

  it('ignores unknown fields and nulls, reads nested catalog definitions', () => {
    const b = normaliseBody(
      {
        Node: 'n',
        WriteRequest: { Token: 't' },
        Address: null,
        Service: { Service: 'web', Port: 1 },
        Check: { CheckID: 'c', Definition: { TTL: '5s' } },
      },
      CATALOG_REGISTER_SPEC,
    );
    assert.deepEqual(b, {
      Node: 'n',
      Service: { Service: 'web', Port: 1 },
      Check: { CheckID: 'c', Definition: { TTL: 5000 } },
    });
  });

  it('names the field and the problem when a value has the wrong type', () => {
    const cases: [unknown, RegExp][] = [
      [{ Port: '80' }, /^Port: must be a whole number$/],
      [{ Port: 1.5 }, /^Port: must be a whole number$/],
      [{ Tags: ['a', 1] }, /^Tags: must be a list of strings$/],
      [{ Meta: { a: 1 } }, /^Meta\.a: must be a string$/],
      [{ Check: { Interval: '10' } }, /^Check\.Interval: must be a duration/],
      [{ Check: { Interval: -1 } }, /^Check\.Interval: must be a non-negative duration$/],
      [{ Check: { Header: { a: 'b' } } }, /^Check\.Header\.a: must be a list of strings$/],
      [{ Checks: {} }, /^Checks: must be a list of objects$/],
      [{ Checks: [1] }, /^Checks\[0\]: must be a JSON object$/],
      [{ EnableTagOverride: 'yes' }, /^EnableTagOverride: must be true or false$/],
      ['text', /must be a JSON object/],
    ];
    for (const [input, message] of cases) {
      assert.throws(
        () => normaliseBody(input, SERVICE_SPEC),
        (err: unknown) => isMeshError(err, ERROR_CODES.VALIDATION) && message.test(err.message),
        JSON.stringify(input),
      );
    }
  });

  it('reads Go durations as strings or nanoseconds', () => {
    const d = (v: unknown) =>
      (normaliseBody({ TTL: v }, { fields: { TTL: 'duration' } }) as { TTL: number }).TTL;
    assert.equal(d('1m30s'), 90_000);
    assert.equal(d('250ms'), 250);
    assert.equal(d('0'), 0);
    assert.equal(d(''), 0);
    assert.equal(d(1_500_000_000), 1500);
  });

  it('normalises keys the Go way', () => {
    assert.equal(
      normaliseKey('Deregister_Critical_Service_After'),
      'deregistercriticalserviceafter',
    );
  });

  it('never throws anything but a validation error, whatever the JSON', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        try {
          normaliseBody(v, SERVICE_SPEC);
          normaliseBody(v, CATALOG_REGISTER_SPEC);
        } catch (err) {
          assert.ok(isMeshError(err, ERROR_CODES.VALIDATION), String(err));
        }
      }),
      { seed: SEED, numRuns: 2000 },
    );
  });

  it('never throws anything but a validation error for service-shaped objects with random values', () => {
    const field = fc.constantFrom(
      'name',
      'ID',
      'port',
      'Tags',
      'meta',
      'Check',
      'checks',
      'weights',
      'enable_tag_override',
    );
    const checkField = fc.constantFrom(
      'TTL',
      'http',
      'Interval',
      'timeout',
      'header',
      'status',
      'failures_before_critical',
    );
    // Values two levels deep: a wrong type at any field the spec reads, and nested objects and
    // lists where it expects scalars. Unbounded, fast-check spent ~10 ms making each body
    // (~5 KB of JSON) for ~0.01 ms of normaliseBody.
    const anyValue = fc.jsonValue({ maxDepth: 2 });
    const checkObj = fc.dictionary(checkField, anyValue);
    fc.assert(
      fc.property(
        fc.dictionary(field, fc.oneof(anyValue, checkObj, fc.array(checkObj, { maxLength: 3 }))),
        (v) => {
          try {
            normaliseBody(v, SERVICE_SPEC);
          } catch (err) {
            assert.ok(isMeshError(err, ERROR_CODES.VALIDATION), String(err));
          }
        },
      ),
      { seed: SEED, numRuns: 2000 },
    );
  });
});

describe('node-level check bodies (agent/check/register without ServiceID)', () => {
  /** Plausible values per field, with now and then any JSON at all. */
  const noisy = <T>(arb: fc.Arbitrary<T>) =>
    fc.oneof({ weight: 19, arbitrary: arb }, { weight: 1, arbitrary: fc.jsonValue() });
  /** Mostly valid values, sometimes invalid ones. */
  const mostly = <T>(valid: T[], invalid: T[]) =>
    fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom(...valid) },
      { weight: 1, arbitrary: fc.constantFrom(...invalid) },
    );
  const duration = mostly<unknown>(
    ['10s', '1m30s', '500ms', 5e9],
    ['0', '', 'soon', '-1s', '48h', 1e20],
  );
  const fields = {
    Name: fc.constantFrom('disk', 'mem', ''),
    CheckID: mostly(['disk-1', ''], ['bad id', 'x'.repeat(200)]),
    HTTP: mostly(['http://127.0.0.1:1/health', ''], ['ftp://x', 'not a url']),
    TCP: fc.constantFrom('127.0.0.1:80', ''),
    TTL: duration,
    Interval: duration,
    Timeout: duration,
    Status: mostly(['passing', 'warning', 'critical', ''], ['bad']),
    Notes: fc.string(),
    DeregisterCriticalServiceAfter: duration,
    FailuresBeforeCritical: fc.integer({ min: -1, max: 101 }),
    FailuresBeforeWarning: fc.integer({ min: -1, max: 101 }),
    GRPC: fc.constantFrom('127.0.0.1:9090'),
  };
  /** Spellings a client may use for a field: as is, lowercase, snake_case. */
  const spelled = (k: string) =>
    fc.constantFrom(k, k.toLowerCase(), k.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase());

  it('either gives one runnable check of the kind asked for, or a 400 naming the problem', () => {
    const names = Object.keys(fields) as (keyof typeof fields)[];
    const body = fc
      .tuple(
        // A kind to start from (so that many bodies are runnable), then any other fields.
        fc.constantFrom<(keyof typeof fields)[]>(
          ['TTL'],
          ['HTTP', 'Interval'],
          ['TCP', 'Interval'],
        ),
        fc.uniqueArray(fc.constantFrom(...names), { maxLength: 4 }),
      )
      .map(([kind, more]) => [...new Set([...kind, ...more])])
      .chain((keys) =>
        fc.tuple(...keys.map((k) => fc.tuple(spelled(k), noisy<unknown>(fields[k])))),
      )
      .map((pairs) => Object.fromEntries(pairs));
    let runnable = 0;
    fc.assert(
      fc.property(body, (raw) => {
        let b;
        try {
          b = normaliseBody(raw, CHECK_SPEC);
        } catch (err) {
          assert.ok(isMeshError(err, ERROR_CODES.VALIDATION), String(err));
          return;
        }
        const name = typeof b.Name === 'string' && b.Name !== '' ? b.Name : 'n';
        try {
          const input = checkFromConsul(
            { ...b, CheckID: (b.CheckID as string | undefined) || name },
            { serviceId: '', serviceName: '' },
          );
          const [def] = checkDefinitions([input]);
          const given = (['HTTP', 'TCP'] as const).filter((k) => b[k]);
          // One kind only, and the one the body named (TTL when it names no probe).
          assert.ok(given.length <= 1 && b.GRPC === undefined, JSON.stringify(raw));
          assert.equal(def?.kind, given.length === 0 ? 'ttl' : given[0]?.toLowerCase());
          runnable++;
        } catch (err) {
          assert.ok(isMeshError(err, ERROR_CODES.CONSUL_REQUEST), String(err));
          assert.equal((err as { details?: { status?: number } }).details?.status, 400);
          assert.match((err as Error).message, /^(Invalid check|Status for checks)/);
        }
      }),
      { seed: SEED, numRuns: 3000 },
    );
    assert.ok(runnable > 500, `only ${runnable} runnable checks generated`);
  });
});

describe('parseJsonBody', () => {
  it('answers EOF for an empty body and the parser message for bad JSON', () => {
    assert.throws(() => parseJsonBody(Buffer.alloc(0)), /EOF/);
    assert.throws(
      () => parseJsonBody(Buffer.from('{')),
      (e: unknown) => isMeshError(e, ERROR_CODES.VALIDATION),
    );
    assert.deepEqual(parseJsonBody(Buffer.alloc(0), {}), {});
    assert.deepEqual(parseJsonBody(Buffer.from('{"a":1}')), { a: 1 });
  });
});
