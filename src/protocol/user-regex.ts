/** @module Every regular expression a user or client supplies, compiled by RE2 (re2js): RE2 syntax, linear-time matching. */
import { createRequire } from 'node:module';
import type { RE2JS } from 're2js';
import { z } from 'zod';
import { errors } from '../core/errors.js';

/**
 * re2js (257 KB of source, ~0.8 MB of heap once loaded), loaded with the first pattern: most
 * proxies and agents never see a regex. Its CommonJS build, so compiling stays synchronous.
 */
let re2js: typeof import('re2js') | undefined;

/**
 * Largest compiled program accepted, in RE2 instructions. RE2 matches in time linear in the
 * input, but the factor is the program's size: `(x|xy|yx|y){500}` (5,503 instructions) takes
 * 100-300 ms over a 512-character meta value in re2js, per value. Ordinary patterns are far
 * below this (`^/api/v[0-9]+/users/[^/]+$`: 21; a DNS-label pattern with `{0,61}`: 131;
 * `.{1,255}`: 511), so the cap only refuses large counted repetitions of groups. RE2 in
 * C++ has the same kind of limit (max_mem, "pattern too large").
 */
export const MAX_USER_REGEX_PROGRAM = 2048;

/**
 * A compiled user regex. Both methods run in time linear in the input and MUST NOT throw.
 */
export interface UserRegex {
  /** True when the pattern matches somewhere in `input` (Go's `regexp.MatchString`). */
  test(input: string): boolean;
  /** True when the pattern matches all of `input` (Envoy's `safe_regex`). */
  testExact(input: string): boolean;
}

/** The compiled pattern, or why RE2 refuses it. Never throws. */
function compile(pattern: string): RE2JS | string {
  let regex: RE2JS;
  try {
    re2js ??= createRequire(import.meta.url)('re2js') as typeof import('re2js');
    regex = re2js.RE2JS.compile(pattern);
  } catch (err) {
    // RE2JSSyntaxException says "error parsing regexp: <why>: `<where>`", as Go's regexp does.
    // Anything else thrown while compiling (no such error is known) refuses the pattern too:
    // a user's pattern is never worth an internal error.
    const message = err instanceof Error ? err.message : String(err);
    return `not an RE2 regular expression (${message})`;
  }
  // re2Input.prog is re2js's compiled program (typed `any` in its declarations);
  // test/unit/protocol/user-regex.test.ts fails if a new re2js version moves it.
  const size = (regex.re2Input.prog as { numInst(): number }).numInst();
  if (size > MAX_USER_REGEX_PROGRAM) {
    return `regular expression too large (${size} RE2 instructions, at most ${MAX_USER_REGEX_PROGRAM}: use fewer or smaller counted repetitions)`;
  }
  return regex;
}

/**
 * Compiles a regex a user or client supplied with RE2: linear-time matching, RE2 syntax (no
 * backreferences, no lookaround). Compile once, at config or request-parse time, and reuse.
 * @param field Names the pattern in the error (`routes[0].match.path.regex`, `filter`).
 * @throws A validation MeshError naming `field` and RE2's reason when RE2 refuses the pattern.
 * @example
 * const re = compileUserRegex('^/api/v[0-9]+/', 'match.path.regex');
 * re.test('/api/v2/users'); // true
 */
export function compileUserRegex(pattern: string, field: string): UserRegex {
  const r = compile(pattern);
  if (typeof r === 'string') throw errors.validation(field, r);
  return r;
}

/**
 * RE2's verdict on a pattern, without keeping it: the size of its compiled program in RE2
 * instructions (what compiling it cost, about 3 µs an instruction in re2js), or why RE2 refuses
 * it. For callers that bound the total compile work of a document. Never throws.
 */
export function userRegexSize(pattern: string): number | string {
  const r = compile(pattern);
  return typeof r === 'string' ? r : (r.re2Input.prog as { numInst(): number }).numInst();
}

/**
 * A schema for a regex field of a config or resource: a string of 1 to `maxLength` characters
 * that RE2 takes. The issue (and so the config error) names the field and RE2's reason.
 */
export function userRegexSchema(maxLength: number): z.ZodString {
  return z
    .string()
    .min(1)
    .max(maxLength)
    .superRefine((s, ctx) => {
      const r = compile(s);
      if (typeof r === 'string') ctx.addIssue({ code: 'custom', message: r });
    });
}
