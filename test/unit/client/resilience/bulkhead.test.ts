/** Bulkhead: concurrency cap, bounded FIFO queue, abort while queued, release once. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isMeshError, ERROR_CODES } from '../../../../src/core/errors.js';
import { Bulkhead } from '../../../../src/client/resilience/bulkhead.js';
import { flushMicrotasks } from '../../../../src/testing/fake-clock.js';

/** A promise and its resolve, for calls the test finishes by hand. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

describe('Bulkhead', () => {
  it('runs at most maxConcurrent calls and rejects beyond the queue with BULKHEAD_FULL', async () => {
    const b = new Bulkhead(2, 1);
    const g = gate();
    let running = 0;
    let peak = 0;
    const call = () =>
      b.execute(async () => {
        running++;
        peak = Math.max(peak, running);
        await g.promise;
        running--;
      });
    const calls = [call(), call(), call()];
    await flushMicrotasks();
    assert.equal(b.active, 2);
    assert.equal(b.queued, 1);
    await assert.rejects(call(), (err) => isMeshError(err, ERROR_CODES.CLIENT_BULKHEAD_FULL));
    g.open();
    await Promise.all(calls);
    assert.equal(peak, 2);
    assert.equal(b.active, 0);
    assert.equal(b.queued, 0);
  });

  it('hands a freed slot to the oldest waiter, so a newcomer cannot overtake the queue', async () => {
    const b = new Bulkhead(1, 2);
    const release = b.tryAcquire();
    assert.ok(release !== undefined);
    assert.equal(b.tryAcquire(), undefined);
    const order: string[] = [];
    const w1 = b.acquire().then((r) => (order.push('w1'), r));
    const w2 = b.acquire().then((r) => (order.push('w2'), r));
    release();
    assert.equal(b.tryAcquire(), undefined, 'the slot went to w1, not to this newcomer');
    const r1 = await w1;
    release(); // a second release of the same slot has no effect
    assert.equal(b.active, 1);
    r1();
    (await w2)();
    assert.deepEqual(order, ['w1', 'w2']);
    assert.equal(b.active, 0);
  });

  it('drops a waiter whose signal aborts, freeing its queue place', async () => {
    const b = new Bulkhead(1, 1);
    const release = b.tryAcquire();
    const ac = new AbortController();
    const waiting = b.acquire(ac.signal);
    ac.abort(new Error('caller left'));
    await assert.rejects(waiting, /caller left/);
    assert.equal(b.queued, 0);
    const next = b.acquire();
    release?.();
    (await next)();
    assert.equal(b.active, 0);
    const aborted = AbortSignal.abort(new Error('already'));
    await assert.rejects(
      b.acquire(aborted),
      /already/,
      'an aborted caller gets no slot, even a free one',
    );
  });

  it('releases the slot when the call throws', async () => {
    const b = new Bulkhead(1);
    await assert.rejects(
      b.execute(() => Promise.reject(new Error('boom'))),
      /boom/,
    );
    assert.equal(b.active, 0);
    assert.equal(await b.execute(async () => 7), 7);
  });

  it('validates its sizes', () => {
    assert.throws(
      () => new Bulkhead(0, -1),
      (err) =>
        isMeshError(err, ERROR_CODES.CONFIG_INVALID) &&
        /bulkhead\.maxConcurrent/.test(err.message) &&
        /bulkhead\.maxQueue/.test(err.message),
    );
  });
});
