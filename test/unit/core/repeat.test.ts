/** repeatEvery: a task every interval on the injected clock, never two runs at once, stop ends it. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { repeatEvery } from '../../../src/core/repeat.js';
import { FakeClock, flushMicrotasks } from '../../../src/testing/fake-clock.js';

describe('repeatEvery', () => {
  it('runs the task every interval, the next one after the last settled, until stopped', async () => {
    const clock = new FakeClock();
    const runs: number[] = [];
    let release: (() => void) | undefined;
    const r = repeatEvery(clock, 1_000, () => {
      runs.push(clock.monotonicMs());
      return new Promise<void>((resolve) => (release = resolve));
    });
    clock.advance(999);
    await flushMicrotasks();
    assert.equal(runs.length, 0);
    clock.advance(1);
    await flushMicrotasks();
    assert.equal(runs.length, 1);
    // The first run has not settled: no second one, however long it takes.
    clock.advance(5_000);
    await flushMicrotasks();
    assert.equal(runs.length, 1);
    release?.();
    await flushMicrotasks();
    clock.advance(1_000);
    await flushMicrotasks();
    assert.equal(runs.length, 2);
    assert.equal((runs[1] as number) - (runs[0] as number), 6_000);
    release?.();
    r.stop();
    clock.advance(10_000);
    await flushMicrotasks();
    assert.equal(runs.length, 2, 'stopped');
  });

  it('goes on after a rejected run', async () => {
    const clock = new FakeClock();
    let runs = 0;
    const r = repeatEvery(clock, 100, () => {
      runs++;
      return Promise.reject(new Error('agent away'));
    });
    for (let i = 0; i < 3; i++) {
      clock.advance(100);
      await flushMicrotasks();
    }
    assert.equal(runs, 3);
    r.stop();
  });
});
