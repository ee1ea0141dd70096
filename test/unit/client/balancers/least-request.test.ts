import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createBalancer } from '../../../../src/client/balancers/index.js';
import { tally, testEndpoint, testEndpoints } from '../../../contract/balancer.contract.js';
import { seededRandom } from '../../../helpers/seeded-random.js';

const share = (seen: Map<string, number>, id: string, picks: number): number =>
  (seen.get(id) ?? 0) / picks;

describe('LeastRequestBalancer', () => {
  it('prefers the endpoint with fewer requests in flight', () => {
    const balancer = createBalancer('least-request', { random: seededRandom(5) });
    balancer.update(testEndpoints(2));
    for (let i = 0; i < 5; i++) balancer.started('e0');
    // Two uniform draws out of two: the busy one wins only when drawn twice (1 in 4).
    const busy = share(tally(balancer, 10_000), 'e0', 10_000);
    assert.ok(Math.abs(busy - 0.25) <= 0.03, `busy share ${busy}`);
    for (let i = 0; i < 5; i++) balancer.finished('e0');
    const even = share(tally(balancer, 10_000), 'e0', 10_000);
    assert.ok(Math.abs(even - 0.5) <= 0.03, `share once idle again ${even}`);
  });

  it('sends more to an idle endpoint among busy ones than a uniform pick would', () => {
    const balancer = createBalancer('least-request', { random: seededRandom(6) });
    balancer.update(testEndpoints(10));
    for (let i = 1; i < 10; i++) for (let k = 0; k < 3; k++) balancer.started(`e${i}`);
    // e0 wins whenever it is one of the two draws: 1 - (9/10)^2 = 19%, not 10%.
    const idle = share(tally(balancer, 10_000), 'e0', 10_000);
    assert.ok(Math.abs(idle - 0.19) <= 0.03, `idle share ${idle}`);
  });

  it('weighs in-flight counts by weight (weight / (in flight + 1))', () => {
    const balancer = createBalancer('least-request', { random: seededRandom(7) });
    balancer.update([testEndpoint('big', { weight: 3 }), testEndpoint('small', { weight: 1 })]);
    // Idle: big wins whenever drawn, 3 in 4.
    assert.ok(Math.abs(share(tally(balancer, 10_000), 'big', 10_000) - 0.75) <= 0.03);
    // 3 in flight on big: 3 / 4 < 1 / 1, so small wins whenever drawn.
    for (let i = 0; i < 3; i++) balancer.started('big');
    assert.ok(Math.abs(share(tally(balancer, 10_000), 'big', 10_000) - 0.25) <= 0.03);
  });

  it('keeps in-flight counts across an update for endpoints that stay', () => {
    const balancer = createBalancer('least-request', { random: seededRandom(8) });
    balancer.update(testEndpoints(2));
    for (let i = 0; i < 4; i++) balancer.started('e0');
    balancer.update(testEndpoints(2));
    const busy = share(tally(balancer, 10_000), 'e0', 10_000);
    assert.ok(Math.abs(busy - 0.25) <= 0.03, `busy share after update ${busy}`);
  });

  it('draws as many candidates as `choices`', () => {
    const balancer = createBalancer(
      { type: 'least-request', choices: 3 },
      { random: seededRandom(9) },
    );
    balancer.update(testEndpoints(2));
    balancer.started('e0');
    // Three draws: the busy one wins only when drawn three times (1 in 8).
    const busy = share(tally(balancer, 10_000), 'e0', 10_000);
    assert.ok(Math.abs(busy - 0.125) <= 0.03, `busy share ${busy}`);
  });
});
