/** @module The Balancer contract suite: every balancer kind passes a factory to it. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { Balancer, Endpoint } from '../../src/client/balancers/balancer.js';
import { seededRandom } from '../helpers/seeded-random.js';

/** A pickable endpoint with every field set; `overrides` replaces any of them. */
export function testEndpoint(id: string, overrides: Partial<Endpoint> = {}): Endpoint {
  return {
    id,
    address: '10.0.0.7',
    port: 8080,
    weight: 1,
    status: 'passing',
    zone: 'eu-west-1a',
    priority: 0,
    tags: ['blue'],
    meta: { zone: 'eu-west-1a' },
    ...overrides,
  };
}

/** Endpoints e0..e{n-1}, each with `overrides`. */
export function testEndpoints(n: number, overrides: Partial<Endpoint> = {}): Endpoint[] {
  return Array.from({ length: n }, (_, i) => testEndpoint(`e${i}`, overrides));
}

/** Makes a fresh balancer whose randomness comes from `random`. */
export type BalancerFactory = (random: () => number) => Balancer;

const SEED = 42;
const PICKS = 2_000;

/** Picks `count` times, with a different hash key each time; answers the ids seen, with counts. */
export function tally(
  balancer: Balancer,
  count: number,
  exclude?: ReadonlySet<string>,
): Map<string, number> {
  const seen = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    const e = balancer.pick({
      hashKey: `user-${i}`,
      ...(exclude === undefined ? {} : { exclude }),
    });
    const id = e === undefined ? '(none)' : e.id;
    seen.set(id, (seen.get(id) ?? 0) + 1);
  }
  return seen;
}

export function runBalancerContract(name: string, factory: BalancerFactory): void {
  const make = (endpoints?: readonly Endpoint[]): Balancer => {
    const balancer = factory(seededRandom(SEED));
    if (endpoints !== undefined) balancer.update(endpoints);
    return balancer;
  };

  describe(`Balancer contract: ${name}`, () => {
    it('answers undefined before any update and for an empty set', () => {
      const balancer = make();
      assert.equal(balancer.pick(), undefined);
      assert.equal(balancer.pick({ hashKey: 'k' }), undefined);
      balancer.update(testEndpoints(3));
      balancer.update([]);
      assert.equal(balancer.pick(), undefined);
      assert.equal(balancer.pick({ hashKey: 'k', exclude: new Set(['e0']) }), undefined);
    });

    it('never picks outside the set, with or without a hash key', () => {
      const endpoints = testEndpoints(7);
      const balancer = make(endpoints);
      for (let i = 0; i < PICKS; i++) {
        const e = balancer.pick(i % 2 === 0 ? { hashKey: `k${i}` } : undefined);
        assert.ok(e !== undefined && endpoints.includes(e), `pick ${i} answered ${e?.id}`);
      }
    });

    it('spreads picks over every endpoint', () => {
      const balancer = make(testEndpoints(5));
      const seen = tally(balancer, PICKS);
      assert.deepEqual([...seen.keys()].sort(), ['e0', 'e1', 'e2', 'e3', 'e4']);
      for (const [id, count] of seen) assert.ok(count > PICKS / 5 / 2, `${id}: ${count} picks`);
      const unkeyed = new Set<string>();
      for (let i = 0; i < PICKS; i++) unkeyed.add(balancer.pick()!.id);
      assert.equal(unkeyed.size, 5, 'picks without a hash key spread too');
    });

    it('never picks an excluded endpoint', () => {
      const balancer = make(testEndpoints(4));
      const exclude = new Set(['e1', 'e3']);
      const seen = tally(balancer, PICKS, exclude);
      assert.deepEqual([...seen.keys()].sort(), ['e0', 'e2']);
    });

    it('answers undefined when every endpoint is excluded', () => {
      const balancer = make(testEndpoints(3));
      const exclude = new Set(['e0', 'e1', 'e2', 'not-in-set']);
      for (let i = 0; i < 50; i++) {
        assert.equal(balancer.pick({ exclude, hashKey: `k${i}` }), undefined);
        assert.equal(balancer.pick({ exclude }), undefined);
      }
    });

    it('replaces the set on update', () => {
      const balancer = make(testEndpoints(3));
      balancer.pick();
      balancer.update([testEndpoint('x'), testEndpoint('y')]);
      const seen = tally(balancer, PICKS);
      assert.deepEqual([...seen.keys()].sort(), ['x', 'y']);
    });

    it('picks warning endpoints too', () => {
      const balancer = make([testEndpoint('w', { status: 'warning' })]);
      assert.equal(balancer.pick()?.id, 'w');
    });

    it('shrugs off started and finished for unknown ids, and extra finished calls', () => {
      const balancer = make(testEndpoints(2));
      balancer.started('e0');
      balancer.update([testEndpoint('e1')]);
      balancer.finished('e0');
      balancer.finished('ghost');
      balancer.started('ghost');
      balancer.finished('e1');
      balancer.finished('e1');
      assert.equal(balancer.pick()?.id, 'e1');
    });

    it('picks only among the best priority until all of it is excluded', () => {
      const balancer = make([
        testEndpoint('p2', { priority: 2 }),
        testEndpoint('a0', { priority: 0 }),
        testEndpoint('b0', { priority: 0 }),
        testEndpoint('c1', { priority: 1 }),
      ]);
      assert.deepEqual([...tally(balancer, PICKS).keys()].sort(), ['a0', 'b0']);
      assert.deepEqual([...tally(balancer, 200, new Set(['a0'])).keys()], ['b0']);
      assert.deepEqual([...tally(balancer, 200, new Set(['a0', 'b0'])).keys()], ['c1']);
      assert.deepEqual([...tally(balancer, 200, new Set(['a0', 'b0', 'c1'])).keys()], ['p2']);
      balancer.update([testEndpoint('c1', { priority: 1 }), testEndpoint('p2', { priority: 2 })]);
      assert.deepEqual([...tally(balancer, 200).keys()], ['c1']);
    });

    it('never throws and answers a member or undefined, whatever the set, weights and context', () => {
      const endpointArb = fc.record({
        id: fc.string({ maxLength: 6 }),
        weight: fc.integer({ min: 1, max: 65535 }),
        priority: fc.integer({ min: 0, max: 3 }),
        status: fc.constantFrom('passing' as const, 'warning' as const),
        zone: fc.option(fc.constantFrom('eu-west-1a', 'eu-west-1b', ''), { nil: undefined }),
      });
      const pickArb = fc.record(
        {
          hashKey: fc.string({ maxLength: 12 }),
          exclude: fc.array(fc.string({ maxLength: 6 }), { maxLength: 6 }),
          calls: fc.constantFrom('none', 'started', 'finished'),
        },
        { requiredKeys: [] },
      );
      fc.assert(
        fc.property(
          fc.array(fc.array(endpointArb, { maxLength: 12 }), { minLength: 1, maxLength: 3 }),
          fc.array(pickArb, { maxLength: 20 }),
          fc.integer(),
          (sets, picks, seed) => {
            const balancer = factory(seededRandom(seed));
            for (const set of sets) {
              const endpoints = set.map((e) => testEndpoint(e.id, e));
              balancer.update(endpoints);
              for (const p of picks) {
                const exclude = p.exclude === undefined ? undefined : new Set(p.exclude);
                const e = balancer.pick({
                  ...(p.hashKey === undefined ? {} : { hashKey: p.hashKey }),
                  ...(exclude === undefined ? {} : { exclude }),
                });
                if (e === undefined) {
                  const pickable = endpoints.filter((x) => !exclude?.has(x.id));
                  assert.equal(pickable.length, 0, 'undefined only when nothing is pickable');
                } else {
                  assert.ok(endpoints.includes(e));
                  assert.ok(!exclude?.has(e.id));
                  if (p.calls === 'started') balancer.started(e.id);
                  if (p.calls === 'finished') balancer.finished(e.id);
                }
              }
            }
          },
        ),
        { seed: SEED, numRuns: 300 },
      );
    });
  });
}
