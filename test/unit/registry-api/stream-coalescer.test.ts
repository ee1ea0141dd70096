/** @module Unit tests of the watch stream's coalescer: at most one write per interval. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { coalesceStream } from '../../../src/registry-api/stream-coalescer.js';
import { FakeClock } from '../../../src/testing/fake-clock.js';

/** A sink that records each write with the clock's time, and reports `unsent` as buffered. */
function recorder(clock: FakeClock) {
  const writes: { at: number; chunk: string }[] = [];
  let unsent = 0;
  return {
    writes,
    setUnsent: (n: number) => (unsent = n),
    sink: {
      write: (chunk: string) => void writes.push({ at: clock.monotonicMs(), chunk }),
      buffered: () => unsent,
    },
  };
}

describe('coalesceStream', () => {
  it('writes a lone frame at once, holds the ones within the interval and writes them together', () => {
    const clock = new FakeClock();
    const r = recorder(clock);
    const s = coalesceStream(r.sink, 250, 1024, clock);
    const t0 = clock.monotonicMs();
    assert.equal(s.write('a'), true);
    assert.deepEqual(r.writes, [{ at: t0, chunk: 'a' }]);
    clock.advance(10);
    s.write('b');
    clock.advance(10);
    s.write('c');
    assert.equal(r.writes.length, 1, 'held within the interval');
    clock.advance(229);
    assert.equal(r.writes.length, 1);
    clock.advance(1);
    assert.deepEqual(r.writes[1], { at: t0 + 250, chunk: 'bc' });
    // Quiet for longer than the interval: the next frame goes at once again.
    clock.advance(1000);
    s.write('d');
    assert.deepEqual(r.writes[2], { at: t0 + 1250, chunk: 'd' });
  });

  it('flush writes what is held now; close discards it and cancels the timer', () => {
    const clock = new FakeClock();
    const r = recorder(clock);
    const s = coalesceStream(r.sink, 100, 1024, clock);
    s.write('a');
    s.write('b');
    s.flush();
    assert.deepEqual(
      r.writes.map((w) => w.chunk),
      ['a', 'b'],
    );
    s.write('c');
    s.close();
    clock.advance(1000);
    assert.deepEqual(
      r.writes.map((w) => w.chunk),
      ['a', 'b'],
    );
  });

  it('answers false once the socket and the held frames pass the limit (the watcher is dropped)', () => {
    const clock = new FakeClock();
    const r = recorder(clock);
    const s = coalesceStream(r.sink, 100, 10, clock);
    assert.equal(s.write('12345'), true); // written at once
    assert.equal(s.write('123456'), true); // held: 6 bytes
    r.setUnsent(5);
    assert.equal(s.write('x'), false, '5 unsent + 6 held > 10');
  });

  it('property: every frame is written once, in order, and writes are at least an interval apart', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 500 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 400 }), fc.string({ maxLength: 5 })), {
          maxLength: 60,
        }),
        (interval, frames) => {
          const clock = new FakeClock();
          const r = recorder(clock);
          const s = coalesceStream(r.sink, interval, Number.MAX_SAFE_INTEGER, clock);
          for (const [gap, frame] of frames) {
            clock.advance(gap);
            assert.equal(s.write(frame), true);
          }
          clock.advance(interval);
          assert.equal(r.writes.map((w) => w.chunk).join(''), frames.map(([, f]) => f).join(''));
          for (let i = 1; i < r.writes.length; i++) {
            const gap = (r.writes[i]?.at ?? 0) - (r.writes[i - 1]?.at ?? 0);
            assert.ok(gap >= interval, `writes ${gap} ms apart, interval ${interval}`);
          }
        },
      ),
    );
  });
});
