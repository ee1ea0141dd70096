import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HASH_SPACE, hash53 } from '../../../../src/client/balancers/hash.js';

// Taken from this implementation when the balancers first shipped (not from another library):
// the test exists to catch a change, since ring and maglev tables follow these values.
const PINNED = [300264024576004, 2912677781562182, 2490958358841850, 3906784573705657];
const PINNED_SALTED = 4851136516756873;

describe('hash53', () => {
  it('answers the same values in every version: changing them moves every sticky session', () => {
    assert.deepEqual(
      ['', 'a', 'user-42', 'é'].map((text) => hash53(text)),
      PINNED,
    );
    assert.equal(hash53('web-1', 7), PINNED_SALTED);
  });

  it('stays within 53 bits and tells (text, salt) pairs apart', () => {
    const seen = new Set<number>();
    for (const id of ['a', 'b', 'ab', 'a\u0001', 'web-1', 'web-10']) {
      for (let salt = 0; salt < 64; salt++) {
        const h = hash53(id, salt);
        assert.ok(Number.isInteger(h) && h >= 0 && h < HASH_SPACE);
        seen.add(h);
      }
    }
    assert.equal(seen.size, 6 * 64);
  });

  it('spreads consecutive keys evenly over the space', () => {
    const buckets = new Array<number>(16).fill(0);
    for (let i = 0; i < 16_000; i++) buckets[Math.floor((hash53(`key-${i}`) / HASH_SPACE) * 16)]!++;
    for (const count of buckets) assert.ok(count > 850 && count < 1150, `${buckets.join(' ')}`);
  });
});
