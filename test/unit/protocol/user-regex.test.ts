/** User regexes through RE2 (issue 16): search and whole-input matching, refusals, random patterns. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ERROR_CODES, isMeshError } from '../../../src/core/errors.js';
import {
  compileUserRegex,
  MAX_USER_REGEX_PROGRAM,
  userRegexSchema,
  userRegexSize,
} from '../../../src/protocol/user-regex.js';

const SEED = 16;

/** Asserts `fn` throws a validation error naming `field` whose reason matches `reason`. */
function assertRefused(fn: () => unknown, field: string, reason: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isMeshError(err, ERROR_CODES.VALIDATION), String(err));
    assert.equal(err.details?.field, field);
    assert.match(String(err.details?.reason), reason);
    assert.ok(err.message.startsWith(`${field}: `), err.message);
    return true;
  });
}

describe('compileUserRegex', () => {
  it('searches with test and matches the whole input with testExact', () => {
    const re = compileUserRegex('v[0-9]+', 'f');
    assert.equal(re.test('api-v2-blue'), true);
    assert.equal(re.testExact('api-v2-blue'), false);
    assert.equal(re.testExact('v2'), true);
    assert.equal(compileUserRegex('^st', 'f').test('staging'), true);
    assert.equal(compileUserRegex('^st', 'f').test('test'), false);
    // RE2 syntax JavaScript lacks: named groups in Go's spelling, flags groups, \z, classes.
    assert.equal(compileUserRegex('(?P<v>[0-9]+)\\z', 'f').test('a12'), true);
    assert.equal(compileUserRegex('(?i)^prod$', 'f').test('PROD'), true);
    assert.equal(compileUserRegex('[[:alpha:]]+\\pN', 'f').testExact('abc7'), true);
  });

  // Issue 16: `^(a+)+$` over a 30-character value took 4.6 s with RegExp, doubling per character.
  it('matches a catastrophic-backtracking pattern over a long input', () => {
    const re = compileUserRegex('^(a+)+$', 'f');
    const long = `${'a'.repeat(100_000)}!`;
    assert.equal(re.test(long), false);
    assert.equal(re.testExact(long), false);
    assert.equal(re.test('a'.repeat(100_000)), true);
  });

  it('refuses what RE2 does not take, naming the field and the reason', () => {
    const field = 'routes[0].match.path.regex';
    assertRefused(() => compileUserRegex('(a)\\1', field), field, /invalid escape sequence/);
    assertRefused(() => compileUserRegex('(?=a)', field), field, /unsupported Perl syntax/);
    assertRefused(() => compileUserRegex('(?!a)b', field), field, /unsupported Perl syntax/);
    assertRefused(() => compileUserRegex('(?<=a)b', field), field, /not an RE2 regular expr/);
    assertRefused(() => compileUserRegex('a++', field), field, /nested repetition/);
    assertRefused(() => compileUserRegex('([', field), field, /missing closing/);
    assertRefused(() => compileUserRegex('a{1001}', field), field, /invalid repeat count/);
  });

  it('refuses a program over the size cap, and takes ordinary counted repetitions', () => {
    // Also fails if a new re2js moves the compiled program the size is read from.
    assertRefused(
      () => compileUserRegex('(x|xy|yx|y){500}', 'f'),
      'f',
      new RegExp(`too large \\(\\d+ RE2 instructions, at most ${MAX_USER_REGEX_PROGRAM}`),
    );
    for (const ok of [
      '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$',
      '.{1,255}',
      '[0-9a-f]{8}(-[0-9a-f]{4}){3}',
    ])
      assert.equal(typeof compileUserRegex(ok, 'f').test('x'), 'boolean', ok);
  });

  it('never throws anything but a validation error, and a compiled pattern never throws', () => {
    const piece = fc.constantFrom(
      ...'ab.|*+?()[]{}^$\\-,:=!<>P1'.split(''),
      '(?:',
      '(?=',
      '(?P<n>',
      '\\1',
      '\\d',
      '\\pL',
      '\\b',
      '[[:alpha:]]',
      '{2,3}',
      '{1000}',
    );
    const pattern = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.array(piece, { maxLength: 30 }).map((ps) => ps.join('')),
    );
    const input = fc.oneof(fc.string({ maxLength: 40 }), fc.constant(`${'a'.repeat(5000)}!`));
    fc.assert(
      fc.property(pattern, input, (p, s) => {
        let re;
        try {
          re = compileUserRegex(p, 'f');
        } catch (err) {
          assert.ok(isMeshError(err, ERROR_CODES.VALIDATION), String(err));
          assert.equal(err.details?.field, 'f');
          return;
        }
        assert.equal(typeof re.test(s), 'boolean');
        assert.equal(typeof re.testExact(s), 'boolean');
      }),
      { seed: SEED, numRuns: 2000 },
    );
  });
});

describe('userRegexSchema', () => {
  it('takes an RE2 pattern and gives RE2 reason as the issue', () => {
    const schema = userRegexSchema(20);
    assert.equal(schema.parse('^/u/[0-9]+$'), '^/u/[0-9]+$');
    const r = schema.safeParse('(?=x)');
    assert.equal(r.success, false);
    assert.match(
      r.error?.issues[0]?.message ?? '',
      /^not an RE2 regular expression \(.*`\(\?=`\)$/,
    );
    assert.equal(schema.safeParse('x'.repeat(21)).success, false);
    assert.equal(schema.safeParse('').success, false);
  });
});

describe('userRegexSize', () => {
  it('gives the compiled size of a pattern RE2 takes, and the reason of one it refuses', () => {
    const small = userRegexSize('^/u/[0-9]+$');
    assert.ok(typeof small === 'number' && small > 0 && small < 50, String(small));
    const large = userRegexSize('a{0,900}');
    assert.ok(typeof large === 'number' && large > 900 && large <= MAX_USER_REGEX_PROGRAM);
    assert.match(String(userRegexSize('(?=x)')), /^not an RE2 regular expression/);
    assert.match(String(userRegexSize('(x|xy|yx|y){500}')), /^regular expression too large/);
  });
});
