import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createBalancer } from '../../../../src/client/balancers/index.js';
import { RandomSource } from '../../../../src/client/balancers/random-source.js';
import { RingHashBalancer } from '../../../../src/client/balancers/ring-hash.js';
import { testEndpoint, testEndpoints } from '../../../contract/balancer.contract.js';
import { seededRandom } from '../../../helpers/seeded-random.js';
import {
  assertConsistent,
  assertExcludeWalksOn,
  assertWeighted,
  departure,
} from './hash-consistency.js';

const make = () => createBalancer('ring-hash', { random: seededRandom(10) });

describe('RingHashBalancer', () => {
  it('sends the same key to the same endpoint, whatever the order of the set', () => {
    assertConsistent(make);
  });

  it("keeps 90%+ of keys in place when one of ten leaves: only the departed one's keys move", () => {
    for (const departed of [0, 3, 7]) {
      const { overall, ofOthers } = departure(make, departed);
      assert.equal(ofOthers, 1, `e${departed}: keys of the nine others stay`);
      // The departed endpoint held about a tenth of the keys; those had to move.
      assert.ok(overall >= 0.88, `e${departed}: ${overall} of all keys stayed`);
    }
  });

  it('moves keys only to a joining endpoint', () => {
    const balancer = make();
    balancer.update(testEndpoints(10));
    const keys = Array.from({ length: 5_000 }, (_, i) => `k${i}`);
    const before = keys.map((hashKey) => balancer.pick({ hashKey })!.id);
    balancer.update([...testEndpoints(10), testEndpoint('new')]);
    let moved = 0;
    keys.forEach((hashKey, i) => {
      const now = balancer.pick({ hashKey })!.id;
      if (now !== before[i]) {
        moved++;
        assert.equal(now, 'new');
      }
    });
    assert.ok(moved > 0 && moved < keys.length * 0.15, `${moved} keys moved`);
  });

  it('walks to the next distinct endpoint when the owner is excluded', () => {
    assertExcludeWalksOn(make);
  });

  it('gives endpoints virtual nodes in proportion to weight', () => {
    assertWeighted(make, 0.05);
  });

  it('sizes the ring between minRingSize and twice that, at most maxRingSize', () => {
    const ring = new RingHashBalancer(1024, 8_388_608, new RandomSource(seededRandom(11)));
    ring.update(testEndpoints(10));
    assert.equal(ring.ringSize, 1280, '128 virtual nodes each: the power of two above 102.4');
    ring.update(testEndpoints(9));
    assert.equal(ring.ringSize, 9 * 128, 'a departure does not rescale the others');
    ring.update(testEndpoints(1000, { weight: 100 }));
    assert.ok(ring.ringSize >= 1024 && ring.ringSize <= 2048, `${ring.ringSize}`);
    const capped = new RingHashBalancer(1000, 1000, new RandomSource(seededRandom(12)));
    capped.update(testEndpoints(10));
    assert.equal(capped.ringSize, 640, '128 each would make 1,280: halved to stay under the cap');
    const tiny = new RingHashBalancer(4, 8, new RandomSource(seededRandom(13)));
    tiny.update(testEndpoints(20));
    assert.equal(tiny.ringSize, 20, 'every endpoint keeps one virtual node');
  });
});
