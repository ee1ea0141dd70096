import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createBalancer } from '../../../../src/client/balancers/index.js';
import { testEndpoint, testEndpoints } from '../../../contract/balancer.contract.js';
import { seededRandom } from '../../../helpers/seeded-random.js';

describe('RoundRobinBalancer', () => {
  it('picks each endpoint once per round, whatever the weights', () => {
    const balancer = createBalancer('round-robin', { random: seededRandom(3) });
    balancer.update([testEndpoint('a', { weight: 100 }), testEndpoint('b'), testEndpoint('c')]);
    for (let round = 0; round < 3; round++) {
      const ids = [balancer.pick()!.id, balancer.pick()!.id, balancer.pick()!.id];
      assert.deepEqual(ids.sort(), ['a', 'b', 'c']);
    }
  });

  it('skips an excluded endpoint to the next in turn', () => {
    const balancer = createBalancer('round-robin', { random: seededRandom(4) });
    balancer.update(testEndpoints(3));
    const exclude = new Set(['e1']);
    const ids = Array.from({ length: 6 }, () => balancer.pick({ exclude })!.id);
    assert.equal(ids.filter((id) => id === 'e0').length, 3);
    assert.equal(ids.filter((id) => id === 'e2').length, 3);
  });

  it('starts at a random place, so clients that start together spread their first requests', () => {
    const first = new Set<string>();
    for (let seed = 0; seed < 20; seed++) {
      const balancer = createBalancer('round-robin', { random: seededRandom(seed) });
      balancer.update(testEndpoints(4));
      first.add(balancer.pick()!.id);
    }
    assert.ok(first.size >= 3, `first picks: ${[...first].join(', ')}`);
  });
});
