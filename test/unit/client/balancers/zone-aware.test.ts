import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Endpoint } from '../../../../src/client/balancers/balancer.js';
import { createBalancer } from '../../../../src/client/balancers/index.js';
import { ZoneAwareBalancer } from '../../../../src/client/balancers/zone-aware.js';
import { tally, testEndpoint } from '../../../contract/balancer.contract.js';
import { seededRandom } from '../../../helpers/seeded-random.js';

/** Ten endpoints in zone a (a0..a9) and five in zone b (b0..b4). */
function twoZones(): Endpoint[] {
  return [
    ...Array.from({ length: 10 }, (_, i) => testEndpoint(`a${i}`, { zone: 'a' })),
    ...Array.from({ length: 5 }, (_, i) => testEndpoint(`b${i}`, { zone: 'b' })),
  ];
}

const zonesOf = (seen: Map<string, number>): string[] =>
  [...new Set([...seen.keys()].map((id) => id[0]!))].sort();

const make = (options: { overloadInFlight?: number; minHealthyPercent?: number } = {}) => {
  const balancer = createBalancer(
    { type: 'zone-aware', localZone: 'a', inner: 'round-robin', ...options },
    { random: seededRandom(30) },
  );
  balancer.update(twoZones());
  return balancer;
};

describe('ZoneAwareBalancer', () => {
  it('picks only in the local zone while it is healthy', () => {
    const seen = tally(make(), 1_000);
    assert.deepEqual(zonesOf(seen), ['a']);
    assert.equal(seen.size, 10, 'over all local endpoints');
  });

  it('stays local while 70% of the local endpoints are available, spills over below', () => {
    const balancer = make();
    const three = new Set(['a0', 'a1', 'a2']);
    assert.deepEqual(zonesOf(tally(balancer, 500, three)), ['a'], '7 of 10 available');
    const four = new Set(['a0', 'a1', 'a2', 'a3']);
    const spilled = tally(balancer, 1_500, four);
    assert.deepEqual(zonesOf(spilled), ['a', 'b'], '6 of 10: all zones');
    assert.equal(spilled.size, 11, 'the 6 local and 5 remote endpoints share the load');
  });

  it('spills over when the local zone is overloaded, and comes back when it is not', () => {
    const balancer = make({ overloadInFlight: 2 });
    for (let i = 0; i < 4; i++) for (let k = 0; k < 2; k++) balancer.started(`a${i}`);
    assert.deepEqual(zonesOf(tally(balancer, 1_000)), ['a', 'b'], '4 of 10 local overloaded');
    balancer.finished('a0');
    assert.deepEqual(zonesOf(tally(balancer, 1_000)), ['a'], 'back to 3 of 10');
  });

  it('does not count an overloaded endpoint twice when it is also excluded', () => {
    const balancer = make({ overloadInFlight: 1 });
    for (const id of ['a0', 'a1', 'a2']) balancer.started(id);
    assert.deepEqual(zonesOf(tally(balancer, 500, new Set(['a0', 'a1', 'a2']))), ['a']);
  });

  it('spills over when the local zone is empty, or its pick finds nothing', () => {
    const balancer = make({ minHealthyPercent: 0 });
    balancer.update(twoZones().filter((e) => e.zone === 'b'));
    assert.deepEqual(zonesOf(tally(balancer, 200)), ['b']);
    balancer.update(twoZones());
    const allLocal = new Set(Array.from({ length: 10 }, (_, i) => `a${i}`));
    assert.deepEqual(zonesOf(tally(balancer, 200, allLocal)), ['b']);
  });

  it('keeps overload counts across updates for the endpoints that stay', () => {
    const zoneAware = new ZoneAwareBalancer(
      { localZone: 'a', minHealthyPercent: 70, overloadInFlight: 1 },
      () => createBalancer('round-robin'),
    );
    zoneAware.update(twoZones());
    for (let i = 0; i < 3; i++) zoneAware.started(`a${i}`);
    assert.equal(zoneAware.localZoneHealthy(), true, '3 of 10 overloaded');
    zoneAware.update(twoZones().filter((e) => e.id !== 'a9'));
    assert.equal(zoneAware.localZoneHealthy(), false, 'still 3 overloaded, now of 9');
    zoneAware.finished('a0');
    assert.equal(zoneAware.localZoneHealthy(), true, '2 of 9 overloaded');
    zoneAware.finished('a0');
    zoneAware.finished('gone');
    assert.equal(zoneAware.localZoneHealthy(), true);
  });

  it('hands started and finished to the inner balancers (least-request inside)', () => {
    const balancer = createBalancer(
      { type: 'zone-aware', localZone: 'a', inner: 'least-request' },
      { random: seededRandom(31) },
    );
    balancer.update([testEndpoint('a0', { zone: 'a' }), testEndpoint('a1', { zone: 'a' })]);
    for (let i = 0; i < 10; i++) balancer.started('a0');
    const seen = tally(balancer, 4_000);
    const busy = (seen.get('a0') ?? 0) / 4_000;
    assert.ok(Math.abs(busy - 0.25) <= 0.03, `busy share ${busy}`);
  });
});
