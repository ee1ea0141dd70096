/** isConnectError / isNeverSentError: which transport failures count, through causes and AggregateErrors. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { errors } from '../../../../src/core/errors.js';
import {
  isConnectError,
  isNeverSentError,
} from '../../../../src/client/resilience/connect-errors.js';

const withCode = (code: string): Error => Object.assign(new Error(code), { code });

describe('isConnectError', () => {
  it('recognises Node and undici connect failures', () => {
    for (const code of [
      'ECONNREFUSED',
      'ECONNRESET',
      'EHOSTUNREACH',
      'ENETUNREACH',
      'ETIMEDOUT',
      'EPIPE',
      'UND_ERR_CONNECT_TIMEOUT',
      'UND_ERR_SOCKET',
    ])
      assert.equal(isConnectError(withCode(code)), true, code);
  });

  it('rejects other errors and non-errors', () => {
    for (const e of [
      withCode('UND_ERR_HEADERS_TIMEOUT'),
      withCode('ERR_INVALID_ARG_TYPE'),
      new Error('boom'),
      null,
      undefined,
      'ECONNREFUSED',
      { code: 42 },
    ])
      assert.equal(isConnectError(e), false, String(e));
  });

  it('looks through cause chains (fetch wraps undici errors) and AggregateErrors (happy eyeballs)', () => {
    assert.equal(
      isConnectError(new TypeError('fetch failed', { cause: withCode('ECONNREFUSED') })),
      true,
    );
    const agg = new AggregateError([withCode('ECONNREFUSED'), withCode('ECONNREFUSED')], 'x');
    assert.equal(isConnectError(agg), true);
    let deep: Error = withCode('ECONNREFUSED');
    for (let i = 0; i < 10; i++) deep = new Error('wrap', { cause: deep });
    assert.equal(isConnectError(deep), false, 'gives up past a bounded depth');
  });

  it('does not look inside MeshErrors, which carry their own retryable', () => {
    assert.equal(isConnectError(errors.retryBudgetExhausted(3, withCode('ECONNREFUSED'))), false);
  });
});

describe('isNeverSentError', () => {
  it('is true only when the connection was never made', () => {
    assert.equal(isNeverSentError(withCode('ECONNREFUSED')), true);
    assert.equal(isNeverSentError(withCode('UND_ERR_CONNECT_TIMEOUT')), true);
    assert.equal(isNeverSentError(withCode('ENOTFOUND')), true);
    assert.equal(isNeverSentError(withCode('ECONNRESET')), false);
    assert.equal(isNeverSentError(withCode('UND_ERR_SOCKET')), false);
  });
});
