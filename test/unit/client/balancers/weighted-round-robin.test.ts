import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createBalancer } from '../../../../src/client/balancers/index.js';
import { tally, testEndpoint } from '../../../contract/balancer.contract.js';

describe('WeightedRoundRobinBalancer', () => {
  it('picks in nginx smooth weighted order for weights 5, 1, 1', () => {
    const balancer = createBalancer('weighted-round-robin');
    balancer.update([
      testEndpoint('a', { weight: 5 }),
      testEndpoint('b', { weight: 1 }),
      testEndpoint('c', { weight: 1 }),
    ]);
    const picks = Array.from({ length: 14 }, () => balancer.pick()!.id).join(' ');
    assert.equal(picks, 'a a b a c a a a a b a c a a');
  });

  it('splits 10,000 picks within 3% of the weights, warning weights included', () => {
    const balancer = createBalancer('weighted-round-robin');
    balancer.update([
      testEndpoint('a', { weight: 50 }),
      testEndpoint('b', { weight: 30 }),
      testEndpoint('c', { weight: 17 }),
      testEndpoint('w', { weight: 3, status: 'warning' }),
    ]);
    const seen = tally(balancer, 10_000);
    for (const [id, weight] of [
      ['a', 50],
      ['b', 30],
      ['c', 17],
      ['w', 3],
    ] as const) {
      const share = (seen.get(id) ?? 0) / 10_000;
      assert.ok(Math.abs(share - weight / 100) <= 0.03, `${id}: ${share}`);
    }
  });

  it('leaves excluded endpoints out of the turn, as nginx skips peers already tried', () => {
    const balancer = createBalancer('weighted-round-robin');
    balancer.update([
      testEndpoint('a', { weight: 5 }),
      testEndpoint('b', { weight: 2 }),
      testEndpoint('c', { weight: 1 }),
    ]);
    const exclude = new Set(['a']);
    const picks = Array.from({ length: 6 }, () => balancer.pick({ exclude })!.id).join(' ');
    assert.equal(picks, 'b c b b c b');
  });
});
