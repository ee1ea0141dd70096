import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createBalancer } from '../../../../src/client/balancers/index.js';
import { tally, testEndpoint } from '../../../contract/balancer.contract.js';
import { seededRandom } from '../../../helpers/seeded-random.js';

const ENDPOINTS = [
  testEndpoint('a', { weight: 60 }),
  testEndpoint('b', { weight: 25 }),
  testEndpoint('c', { weight: 10 }),
  testEndpoint('w', { weight: 5, status: 'warning' }),
];

describe('RandomBalancer', () => {
  it('splits 10,000 picks within 3% of the weights', () => {
    const balancer = createBalancer('random', { random: seededRandom(1) });
    balancer.update(ENDPOINTS);
    const seen = tally(balancer, 10_000);
    for (const e of ENDPOINTS) {
      const share = (seen.get(e.id) ?? 0) / 10_000;
      assert.ok(Math.abs(share - e.weight / 100) <= 0.03, `${e.id}: ${share}`);
    }
  });

  it('splits among the non-excluded endpoints by their weights', () => {
    const balancer = createBalancer('random', { random: seededRandom(2) });
    balancer.update(ENDPOINTS);
    const seen = tally(balancer, 10_000, new Set(['a']));
    assert.equal(seen.get('a'), undefined);
    for (const e of ENDPOINTS.slice(1)) {
      const share = (seen.get(e.id) ?? 0) / 10_000;
      assert.ok(Math.abs(share - e.weight / 40) <= 0.03, `${e.id}: ${share}`);
    }
  });

  it('takes any seed the random option answers, out of range or NaN', () => {
    for (const value of [1, NaN, -0.5, 7]) {
      const balancer = createBalancer('random', { random: () => value });
      balancer.update(ENDPOINTS);
      assert.ok(ENDPOINTS.includes(balancer.pick()!));
      assert.ok(ENDPOINTS.includes(balancer.pick({ exclude: new Set(['a', 'b']) })!));
    }
  });
});
