/** Unit tests of DeadlineQueue on the fake clock, including a property test against a model. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DeadlineQueue } from '../../../../src/registry/health/deadline-queue.js';
import { FakeClock } from '../../../../src/testing/fake-clock.js';

describe('DeadlineQueue', () => {
  it('delivers each item at its deadline, not before, from a single timer', () => {
    const clock = new FakeClock();
    const got: [string, number][] = [];
    const q = new DeadlineQueue<string>(clock, (items) => {
      for (const i of items) got.push([i, clock.monotonicMs()]);
    });
    q.push('c', 300);
    q.push('a', 100);
    q.push('b', 200);
    assert.equal(clock.pendingTimers, 1);
    clock.advance(99);
    assert.deepEqual(got, []);
    clock.advance(1);
    assert.deepEqual(got, [['a', 100]]);
    clock.advance(200);
    assert.deepEqual(got, [
      ['a', 100],
      ['b', 200],
      ['c', 300],
    ]);
    assert.equal(q.size, 0);
    assert.equal(clock.pendingTimers, 0);
  });

  it('reports how late its timer fired (a stall)', () => {
    const clock = new FakeClock();
    const late: number[] = [];
    const q = new DeadlineQueue<number>(clock, (_items, lateMs) => late.push(lateMs));
    q.push(1, 1000);
    clock.jump(5000);
    clock.advance(0);
    assert.deepEqual(late, [4000]);
  });

  it('lets the callback push again, and clear drops everything', () => {
    const clock = new FakeClock();
    let fired = 0;
    const q = new DeadlineQueue<string>(clock, (items) => {
      fired += items.length;
      if (fired < 3) q.push('again', clock.monotonicMs() + 10);
    });
    q.push('x', 10);
    clock.advance(100);
    assert.equal(fired, 3);
    q.push('y', 200);
    q.clear();
    clock.advance(1000);
    assert.equal(fired, 3);
    assert.equal(clock.pendingTimers, 0);
  });

  it('matches a sorted-list model for any pushes and advances', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(fc.record({ push: fc.nat(10_000) }), fc.record({ advance: fc.nat(3_000) })),
          {
            maxLength: 200,
          },
        ),
        (steps) => {
          const clock = new FakeClock();
          const delivered: { id: number; due: number; at: number }[] = [];
          const q = new DeadlineQueue<{ id: number; due: number }>(clock, (items) => {
            for (const i of items) delivered.push({ ...i, at: clock.monotonicMs() });
          });
          const pushed: { id: number; due: number }[] = [];
          steps.forEach((step, id) => {
            if ('push' in step) {
              const due = clock.monotonicMs() + step.push;
              pushed.push({ id, due });
              q.push({ id, due }, due);
            } else clock.advance(step.advance);
          });
          clock.advance(20_000);
          assert.equal(delivered.length, pushed.length, 'each push delivered exactly once');
          assert.deepEqual(new Set(delivered.map((d) => d.id)), new Set(pushed.map((p) => p.id)));
          for (const d of delivered) assert.equal(d.at, d.due, 'delivered exactly at its deadline');
          for (let i = 1; i < delivered.length; i++) {
            assert.ok(
              (delivered[i - 1]?.due ?? 0) <= (delivered[i]?.due ?? 0),
              'in deadline order',
            );
          }
        },
      ),
      { numRuns: 300, seed: 3 },
    );
  });
});
