/**
 * @module Trace context parsers (issue 21): W3C traceparent/tracestate and B3, on the examples of
 * their specifications, and as properties: what is formatted parses back; anything else parses to
 * a valid context or to undefined, never throws.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  formatTraceparent,
  formatTraceState,
  parseB3Multi,
  parseB3Single,
  parseB3TraceId,
  parseTraceparent,
  parseTraceState,
  traceparentSampled,
  type TraceContext,
} from '../../../src/protocol/trace-context.js';

const SEED = 21;
const RUNS = { numRuns: 3000, seed: SEED };

const HEX = '0123456789abcdef';
const hexOf = (n: number) =>
  fc
    .array(fc.constantFrom(...HEX), { minLength: n, maxLength: n })
    .map((a) => a.join(''))
    .filter((s) => /[1-9a-f]/.test(s));
const traceIdArb = hexOf(32);
const spanIdArb = hexOf(16);

/** A context's ids are lowercase hex of the right length and not all zero. */
function assertValid(c: TraceContext): void {
  assert.match(c.traceId, /^[0-9a-f]{32}$/);
  assert.match(c.spanId, /^[0-9a-f]{16}$/);
  assert.ok(/[1-9a-f]/.test(c.traceId) && /[1-9a-f]/.test(c.spanId), 'not all zeros');
}

describe('parseTraceparent', () => {
  it('reads the example of the W3C specification', () => {
    assert.deepEqual(parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'), {
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      sampled: true,
    });
    assert.equal(
      parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00')?.sampled,
      false,
    );
    // Only bit 0 of the flags is the sampled flag.
    assert.equal(
      parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03')?.sampled,
      true,
    );
  });

  it('reads a later version by the fields of version 00 (§3.2.4)', () => {
    const v = '01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    assert.equal(parseTraceparent(v)?.spanId, '00f067aa0ba902b7');
    assert.equal(parseTraceparent(`${v}-what-comes-next`)?.sampled, true);
    assert.equal(parseTraceparent(`${v}x`), undefined);
  });

  it('refuses malformed values', () => {
    const good = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    for (const bad of [
      undefined,
      '',
      ['a'],
      42,
      good.slice(0, 54),
      `${good}-00`, // version 00 is exactly 55 characters
      good.toUpperCase(),
      good.replace('4bf9', '4BF9'),
      'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g',
      '00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      '0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      `${good}, ${good}`, // sent twice, joined by node
    ])
      assert.equal(parseTraceparent(bad), undefined, String(bad));
  });

  it('parses back what formatTraceparent wrote', () => {
    fc.assert(
      fc.property(traceIdArb, spanIdArb, fc.boolean(), (traceId, spanId, sampled) => {
        assert.deepEqual(parseTraceparent(formatTraceparent(traceId, spanId, sampled)), {
          traceId,
          spanId,
          sampled,
        });
      }),
      RUNS,
    );
  });

  it('never throws; answers a valid context or undefined for any string', () => {
    const near = fc
      .tuple(
        fc.stringMatching(/^[0-9a-fA-F]{2}$/),
        fc.stringMatching(/^[0-9a-fA-Z]{32}$/),
        fc.stringMatching(/^[0-9a-f]{16}$/),
        fc.stringMatching(/^[0-9a-f-]{2}$/),
        fc.string({ maxLength: 4 }),
      )
      .map(([v, t, s, f, tail]) => `${v}-${t}-${s}-${f}${tail}`);
    fc.assert(
      fc.property(fc.oneof(fc.string(), near), (s) => {
        const c = parseTraceparent(s);
        // The sampled flag alone, as a hop that passes an unsampled caller on reads it.
        assert.equal(traceparentSampled(s), c?.sampled);
        if (c !== undefined) {
          assertValid(c);
          assert.equal(s.slice(3, 35), c.traceId);
          assert.equal(c.sampled, (parseInt(s.slice(53, 55), 16) & 1) === 1);
          assert.ok(s.length === 55 || (!s.startsWith('00') && s[55] === '-'));
        }
      }),
      RUNS,
    );
  });
});

/** What both B3 forms of the specification's example parse to. */
const specExample = (form: 'single' | 'multi') => ({
  context: {
    traceId: '80f198ee56343ba864fe8b2a57d3eff7',
    spanId: 'e457b5a2e4d86bd1',
    sampled: true,
  },
  sampled: true,
  shortTraceId: false,
  form,
});

describe('parseB3Single', () => {
  it('reads the forms of the B3 specification', () => {
    assert.deepEqual(
      parseB3Single('80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90'),
      specExample('single'),
    );
    const short = parseB3Single('64fe8b2a57d3eff7-e457b5a2e4d86bd1');
    assert.equal(short?.context?.traceId, '000000000000000064fe8b2a57d3eff7');
    assert.equal(short?.shortTraceId, true);
    assert.equal(short?.sampled, undefined, 'no sampling state: deferred');
    assert.equal(parseB3Single('64fe8b2a57d3eff7-e457b5a2e4d86bd1-d')?.sampled, true);
    assert.equal(parseB3Single('64fe8b2a57d3eff7-e457b5a2e4d86bd1-0')?.sampled, false);
    assert.deepEqual(parseB3Single('0'), {
      context: undefined,
      sampled: false,
      shortTraceId: false,
      form: 'single',
    });
    assert.equal(parseB3Single('1')?.sampled, true);
    assert.equal(parseB3Single('d')?.sampled, true);
  });

  it('refuses malformed values', () => {
    for (const bad of [
      undefined,
      '',
      'x',
      '2',
      '64fe8b2a57d3eff7',
      '64fe8b2a57d3eff7-',
      '64fe8b2a57d3eff7-e457b5a2e4d86bd1-2',
      '64fe8b2a57d3eff7-e457b5a2e4d86bd1-1-',
      '64fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90-1',
      '64fe8b2a57d3eff-e457b5a2e4d86bd1',
      '0000000000000000-e457b5a2e4d86bd1',
      '64fe8b2a57d3eff7-E457B5A2E4D86BD1',
    ])
      assert.equal(parseB3Single(bad), undefined, String(bad));
  });

  it('never throws; ids, when it answers some, are valid', () => {
    const near = fc
      .tuple(
        fc.oneof(hexOf(16), hexOf(32), fc.string({ maxLength: 33 })),
        fc.oneof(spanIdArb, fc.string({ maxLength: 17 })),
        fc.constantFrom('', '-0', '-1', '-d', '-x'),
        fc.oneof(
          fc.constant(''),
          spanIdArb.map((p) => `-${p}`),
          fc.string(),
        ),
      )
      .map(([t, s, f, p]) => `${t}-${s}${f}${p}`);
    fc.assert(
      fc.property(fc.oneof(fc.string(), near), (s) => {
        const b3 = parseB3Single(s);
        if (b3?.context !== undefined) {
          assertValid(b3.context);
          assert.equal(b3.sampled, b3.context.sampled);
        }
      }),
      RUNS,
    );
  });
});

describe('parseB3TraceId', () => {
  it('reads 16 or 32 lowercase hex digits, not all zeros, as 32', () => {
    const long = '80f198ee56343ba864fe8b2a57d3eff7';
    assert.equal(parseB3TraceId(long), long);
    assert.equal(parseB3TraceId('64fe8b2a57d3eff7'), '000000000000000064fe8b2a57d3eff7');
    for (const bad of [
      undefined,
      ['64fe8b2a57d3eff7'],
      '',
      '64fe8b2a57d3eff',
      '64fe8b2a57d3eff7a',
      '64FE8B2A57D3EFF7',
      '0'.repeat(16),
      '0'.repeat(32),
      '64fe8b2a57d3eff7-e457b5a2e4d86bd1',
    ])
      assert.equal(parseB3TraceId(bad), undefined, String(bad));
  });
});

describe('parseB3Multi', () => {
  it('reads the x-b3-* headers', () => {
    assert.deepEqual(
      parseB3Multi({
        'x-b3-traceid': '80f198ee56343ba864fe8b2a57d3eff7',
        'x-b3-spanid': 'e457b5a2e4d86bd1',
        'x-b3-parentspanid': '05e3ac9a4f6e3b90',
        'x-b3-sampled': '1',
      }),
      specExample('multi'),
    );
    assert.equal(
      parseB3Multi({ 'x-b3-traceid': '64fe8b2a57d3eff7', 'x-b3-spanid': 'e457b5a2e4d86bd1' })
        ?.sampled,
      undefined,
    );
    assert.equal(
      parseB3Multi({
        'x-b3-traceid': '64fe8b2a57d3eff7',
        'x-b3-spanid': 'e457b5a2e4d86bd1',
        'x-b3-sampled': '0',
        'x-b3-flags': '1',
      })?.sampled,
      true,
      'debug means sampled',
    );
    assert.equal(parseB3Multi({ 'x-b3-sampled': 'false' })?.sampled, false);
    assert.equal(parseB3Multi({ 'x-b3-sampled': 'true' })?.context, undefined);
  });

  it('refuses malformed or partial headers', () => {
    for (const bad of [
      {},
      { 'x-b3-traceid': '64fe8b2a57d3eff7' },
      { 'x-b3-spanid': 'e457b5a2e4d86bd1' },
      { 'x-b3-traceid': '64fe8b2a57d3eff7', 'x-b3-spanid': 'zz57b5a2e4d86bd1' },
      {
        'x-b3-traceid': '64fe8b2a57d3eff7',
        'x-b3-spanid': 'e457b5a2e4d86bd1',
        'x-b3-sampled': '2',
      },
      { 'x-b3-traceid': ['64fe8b2a57d3eff7'], 'x-b3-spanid': 'e457b5a2e4d86bd1' },
    ])
      assert.equal(parseB3Multi(bad), undefined, JSON.stringify(bad));
  });

  it('never throws; ids, when it answers some, are valid', () => {
    const value = fc.option(fc.oneof(hexOf(16), hexOf(32), fc.string({ maxLength: 33 })), {
      nil: undefined,
    });
    fc.assert(
      fc.property(
        value,
        fc.option(fc.oneof(spanIdArb, fc.string()), { nil: undefined }),
        fc.option(fc.constantFrom('0', '1', 'true', 'false', 'x'), { nil: undefined }),
        fc.option(fc.constantFrom('0', '1'), { nil: undefined }),
        (t, s, sampled, flags) => {
          const b3 = parseB3Multi({
            'x-b3-traceid': t,
            'x-b3-spanid': s,
            'x-b3-sampled': sampled,
            'x-b3-flags': flags,
          });
          if (b3?.context !== undefined) assertValid(b3.context);
          if (flags === '1' && b3 !== undefined) assert.equal(b3.sampled, true);
        },
      ),
      RUNS,
    );
  });
});

describe('parseTraceState', () => {
  it('reads list members in order, with spaces and empty members', () => {
    assert.deepEqual(parseTraceState('rojo=00f067aa0ba902b7,congo=t61rcWkgMzE'), [
      ['rojo', '00f067aa0ba902b7'],
      ['congo', 't61rcWkgMzE'],
    ]);
    assert.deepEqual(parseTraceState(' a=1 ,\t, tenant@sys=x y '), [
      ['a', '1'],
      ['tenant@sys', 'x y'],
    ]);
    assert.deepEqual(parseTraceState(''), []);
  });

  it('refuses malformed lists', () => {
    const many = Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(',');
    for (const bad of [
      undefined,
      'a',
      '=1',
      'A=1',
      'a=1,a=2',
      'a=',
      'a=b=c',
      'a=b,c',
      `a=${'x'.repeat(257)}`,
      `${'a'.repeat(257)}=1`,
      'tenant@Sys=1',
      'tenant@system-that-is-long=1',
      many,
    ])
      assert.equal(parseTraceState(bad), undefined, String(bad));
    assert.equal(parseTraceState(many.split(',').slice(0, 32).join(','))?.length, 32);
  });

  const keyArb = fc.stringMatching(/^[a-z][a-z0-9_\-*/]{0,20}$/);
  const valueArb = fc.stringMatching(/^[\x21-\x2b\x2d-\x3c\x3e-\x7e]{1,30}$/);

  it('parses back what formatTraceState wrote', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(keyArb, valueArb), {
          selector: ([k]) => k,
          minLength: 0,
          maxLength: 32,
        }),
        (members) => {
          assert.deepEqual(parseTraceState(formatTraceState(members)), members);
        },
      ),
      RUNS,
    );
  });

  it('never throws; what it answers formats to a list it reads the same', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        const members = parseTraceState(s);
        if (members !== undefined) {
          assert.ok(members.length <= 32);
          assert.deepEqual(parseTraceState(formatTraceState(members)), members);
        }
      }),
      RUNS,
    );
  });
});
