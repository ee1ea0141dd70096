/** requestToken: the token a request carries, from any header and query values, never a throw. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { requestToken } from '../../../../src/registry/acl/acl-contract.js';

describe('requestToken', () => {
  it('takes X-Consul-Token, then Authorization: Bearer, then ?token=', () => {
    assert.equal(
      requestToken({ 'x-consul-token': 'h', authorization: 'Bearer b' }, { token: 'q' }),
      'h',
    );
    assert.equal(requestToken({ authorization: 'Bearer b' }, { token: 'q' }), 'b');
    assert.equal(requestToken({ authorization: 'bearer   b  ' }), 'b');
    assert.equal(requestToken({ authorization: 'Basic eDp5' }, { token: 'q' }), 'q');
    assert.equal(requestToken({ 'x-consul-token': '' }, {}), undefined);
    assert.equal(requestToken({}, { token: ['a', 'b'] }), undefined);
    assert.equal(requestToken({ 'x-consul-token': ['a', 'b'] }), 'a');
  });

  it('answers a non-empty string or undefined for any headers and query, never throwing', () => {
    const value = fc.oneof(
      fc.string(),
      fc.array(fc.string(), { maxLength: 3 }),
      fc.constant(undefined),
    );
    fc.assert(
      fc.property(
        fc.record(
          { 'x-consul-token': value, authorization: value, other: value },
          { requiredKeys: [] },
        ),
        fc.dictionary(fc.string(), fc.oneof(value, fc.integer(), fc.object())),
        (headers, query) => {
          const t = requestToken(headers, query);
          assert.ok(t === undefined || (typeof t === 'string' && t !== ''));
          if (
            t !== undefined &&
            headers.authorization === undefined &&
            headers['x-consul-token'] === undefined
          )
            assert.equal(t, query.token);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
