import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createBalancer } from '../../../../src/client/balancers/index.js';
import { seededRandom } from '../../../helpers/seeded-random.js';
import {
  assertConsistent,
  assertExcludeWalksOn,
  assertWeighted,
  departure,
} from './hash-consistency.js';

const make = () => createBalancer('maglev', { random: seededRandom(20) });

describe('MaglevBalancer', () => {
  it('sends the same key to the same endpoint, whatever the order of the set', () => {
    assertConsistent(make);
  });

  it('keeps 90%+ of keys in place when one of ten leaves', () => {
    for (const departed of [0, 3, 7]) {
      const { overall, ofOthers } = departure(make, departed);
      assert.ok(ofOthers >= 0.99, `e${departed}: ${ofOthers} of the others' keys stayed`);
      assert.ok(overall >= 0.88, `e${departed}: ${overall} of all keys stayed`);
    }
  });

  it('moves more keys with a small table, still keeping 90% of the others', () => {
    const small = () => createBalancer({ type: 'maglev', tableSize: 251 });
    const { ofOthers } = departure(small, 3);
    assert.ok(ofOthers >= 0.9 && ofOthers < 0.99, `${ofOthers}`);
  });

  it('walks to the next distinct endpoint when the owner is excluded', () => {
    assertExcludeWalksOn(make);
  });

  it('shares table slots in proportion to weight', () => {
    assertWeighted(make, 0.03);
  });
});
