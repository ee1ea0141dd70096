/** @module Unit tests of the shared query helpers: the cache key of a filtered read. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { filterKey, type Query } from '../../../src/registry-api/query.js';

/** The definition: every parameter but index and wait, sorted by name, values in order. */
function reference(q: Query): string {
  const parts: string[] = [];
  for (const k of Object.keys(q).sort()) {
    if (k === 'index' || k === 'wait') continue;
    const v = q[k];
    for (const one of v === undefined ? [] : Array.isArray(v) ? v : [v]) parts.push(`${k}=${one}`);
  }
  return parts.join('&');
}

describe('filterKey', () => {
  it('ignores index and wait, and sorts the other parameters', () => {
    assert.equal(filterKey({ index: '5', wait: '10s' }), '');
    assert.equal(filterKey({ passing: '', index: '5' }), 'passing=');
    assert.equal(filterKey({ tag: ['b', 'a'], status: 'passing' }), 'status=passing&tag=b&tag=a');
  });

  it('matches the definition for any query', () => {
    const value = fc.oneof(fc.string(), fc.array(fc.string(), { maxLength: 3 }));
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.constantFrom('index', 'wait', 'tag', 'passing', 'filter', 'dc', 'zone'),
          value,
        ),
        (q) => filterKey(q) === reference(q),
      ),
    );
  });
});
