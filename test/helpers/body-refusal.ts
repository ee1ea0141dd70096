/** Property-test helper for body and query parsers: a value, or a refusal naming its field. */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ERROR_CODES, isMeshError } from '../../src/core/errors.js';

const REFUSALS: readonly string[] = [
  ERROR_CODES.VALIDATION,
  ERROR_CODES.MALFORMED_BODY,
  ERROR_CODES.UNSUPPORTED_MEDIA_TYPE,
];

/** Runs `fn`; a throw must be a MeshError refusal (naming a field when it is a validation). */
export function refusalOrValue<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    assert.ok(isMeshError(err), `not a MeshError: ${String(err)}`);
    assert.ok(REFUSALS.includes(err.code), err.code);
    if (err.code === ERROR_CODES.VALIDATION) assert.equal(typeof err.details?.field, 'string');
    return undefined;
  }
}

/** Any text a client may send as a JSON body: strings, JSON values, and `objects` encoded. */
export function bodyTexts(objects: fc.Arbitrary<object>): fc.Arbitrary<string> {
  return fc.oneof(
    fc.string(),
    fc.json(),
    objects.map((o) => JSON.stringify(o)),
  );
}
