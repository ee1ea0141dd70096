/** docs/errors.md and core/errors.ts list the same codes, in both directions. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ERROR_CODES, errors, isMeshError, MeshError } from '../../../src/core/errors.js';

describe('errors', () => {
  it('documents every code in docs/errors.md, and documents no other code', () => {
    const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
    const documented = new Set([...doc.matchAll(/`(MESHWORK_ERR_[A-Z_]+)`/g)].map((m) => m[1]));
    const defined = new Set(Object.values(ERROR_CODES));
    assert.deepEqual(
      [...defined].filter((c) => !documented.has(c)),
      [],
    );
    assert.deepEqual(
      [...documented].filter((c) => !defined.has(c as never)),
      [],
    );
  });

  it('recognises MeshErrors by brand and code, not by instanceof', () => {
    const e = errors.instanceNotFound('x');
    assert.ok(isMeshError(e));
    assert.ok(isMeshError(e, ERROR_CODES.INSTANCE_NOT_FOUND));
    assert.ok(!isMeshError(e, ERROR_CODES.VALIDATION));
    assert.ok(!isMeshError(new Error('x')));
    const copy = Object.assign(Object.create(null), e) as unknown;
    assert.ok(isMeshError(copy), 'an error from another copy of the package still counts');
  });

  it('marks store unavailability and timeouts retryable, validation not', () => {
    assert.equal(errors.storeUnavailable('down').retryable, true);
    assert.equal(errors.timeout('probe', 10).retryable, true);
    assert.equal(errors.validation('port', 'bad').retryable, false);
    assert.ok(errors.validation('port', 'bad') instanceof MeshError);
    assert.equal(errors.validation('port', 'bad').details?.field, 'port');
  });
});
