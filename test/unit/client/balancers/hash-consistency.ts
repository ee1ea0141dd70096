/** @module Shared checks of the two consistent-hash balancers (ring-hash, maglev). */
import assert from 'node:assert/strict';
import type { Balancer } from '../../../../src/client/balancers/balancer.js';
import { testEndpoint, testEndpoints } from '../../../contract/balancer.contract.js';

const KEYS = Array.from({ length: 10_000 }, (_, i) => `user-${i}`);

const owners = (balancer: Balancer): string[] =>
  KEYS.map((hashKey) => balancer.pick({ hashKey })!.id);

/** Moves when one of ten endpoints leaves: which keys stayed, overall and among the others'. */
export function departure(make: () => Balancer, departed: number) {
  const all = testEndpoints(10);
  const balancer = make();
  balancer.update(all);
  const before = owners(balancer);
  balancer.update(all.filter((_, i) => i !== departed));
  const after = owners(balancer);
  let stayed = 0;
  let others = 0;
  let othersStayed = 0;
  for (let i = 0; i < KEYS.length; i++) {
    if (after[i] === before[i]) stayed++;
    if (before[i] === `e${departed}`) continue;
    others++;
    if (after[i] === before[i]) othersStayed++;
  }
  return { overall: stayed / KEYS.length, ofOthers: othersStayed / others };
}

/** The same key goes to the same endpoint: on every pick, and in another client with the set in another order. */
export function assertConsistent(make: () => Balancer): void {
  const endpoints = testEndpoints(10);
  const a = make();
  a.update(endpoints);
  const b = make();
  b.update([...endpoints].reverse());
  const first = owners(a);
  assert.deepEqual(owners(a), first);
  assert.deepEqual(owners(b), first);
  assert.ok(new Set(first).size === 10, 'keys spread over all ten');
}

/** An excluded owner sends its key to one other endpoint, the same on every try. */
export function assertExcludeWalksOn(make: () => Balancer): void {
  const balancer = make();
  balancer.update(testEndpoints(10));
  for (const hashKey of KEYS.slice(0, 200)) {
    const owner = balancer.pick({ hashKey })!.id;
    const exclude = new Set([owner]);
    const next = balancer.pick({ hashKey, exclude })!.id;
    assert.notEqual(next, owner);
    assert.equal(balancer.pick({ hashKey, exclude })!.id, next);
    const further = balancer.pick({ hashKey, exclude: new Set([owner, next]) })!.id;
    assert.ok(further !== owner && further !== next);
  }
}

/** Shares of keys follow weights (within `tolerance`). */
export function assertWeighted(make: () => Balancer, tolerance: number): void {
  const balancer = make();
  balancer.update([
    testEndpoint('heavy', { weight: 3 }),
    testEndpoint('light1', { weight: 1 }),
    testEndpoint('light2', { weight: 1 }),
  ]);
  const picks = owners(balancer);
  const share = picks.filter((id) => id === 'heavy').length / picks.length;
  assert.ok(Math.abs(share - 0.6) <= tolerance, `heavy share ${share}`);
}
