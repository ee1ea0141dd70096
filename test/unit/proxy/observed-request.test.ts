// The request record's start time (issue 21): wall-clock ms with the monotonic clock's sub-ms
// precision, so spans of one host nest as they ran, anchored again when the wall clock steps;
// and its end, taken before the response's last write.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ObservedRequest, wallClockMs } from '../../../src/proxy/observed-request.js';

describe('wallClockMs', () => {
  it('keeps the sub-ms order of two instants in one ms of Date.now()', () => {
    const mono = 5_000.25;
    const first = wallClockMs(mono, Date.now());
    const wall = Math.floor(first);
    const later = wallClockMs(mono + 0.5, wall);
    assert.equal(later - first, 0.5);
    assert.ok(first - wall >= 0 && first - wall < 1, `${first} against ${wall}`);
  });

  it('follows a stepped wall clock, then keeps its precision from there', () => {
    const mono = 9_000;
    const stepped = Date.now() + 3_600_000;
    assert.equal(wallClockMs(mono, stepped), stepped);
    assert.equal(wallClockMs(mono + 0.125, stepped), stepped + 0.125);
    // Back (the wall clock set back an hour): anchored again.
    const back = stepped - 3_600_000;
    assert.equal(wallClockMs(mono + 1, back), back);
  });

  it('stays within a few ms of Date.now() for a real request record', () => {
    const before = Date.now();
    const r = new ObservedRequest([], '/');
    const after = Date.now();
    assert.ok(r.startTimeMs >= before - 2 && r.startTimeMs <= after + 2, `${r.startTimeMs}`);
  });
});

describe('ObservedRequest end', () => {
  const exchange = { method: 'GET', authority: undefined, headers: {}, socket: {} };

  it('is when the last bytes went to the socket, not when the engine got back to it', () => {
    const before = performance.now();
    const r = new ObservedRequest([], '/');
    const built = performance.now();
    r.lastBytes();
    const written = performance.now();
    // The process held for 2 ms after its write (a busy core): the end stays the write's.
    while (performance.now() - written < 2);
    r.ended(exchange, 0);
    assert.ok(r.durationMs <= written - before, `${r.durationMs} > ${written - before}`);
    assert.ok(built - before < 1, 'the record is made well within the 2 ms');
  });

  it('is when it ended for a request with no last write (cut)', () => {
    const r = new ObservedRequest([], '/');
    const from = performance.now();
    while (performance.now() - from < 2);
    r.ended(exchange, 0);
    assert.ok(r.durationMs >= 2, `${r.durationMs}`);
  });
});
