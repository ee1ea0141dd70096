/** @module Unit tests of CheckStateWriter, with a fake host. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CheckState } from '../../../../src/core/types.js';
import {
  CheckStateWriter,
  type WriteSlot,
} from '../../../../src/registry/health/check-state-writer.js';
import { flushMicrotasks } from '../../../../src/testing/fake-clock.js';
import { FakeHost, RecordingLogger, checkState } from './health-fixtures.js';

function harness() {
  const host = new FakeHost();
  const logger = new RecordingLogger();
  const slots = new Map<string, WriteSlot>();
  const slot = (checkId: string): WriteSlot => {
    const s = slots.get(checkId) ?? { lastQueued: undefined };
    slots.set(checkId, s);
    return s;
  };
  const writer = new CheckStateWriter({
    host,
    logger,
    slotOf: (instanceId, checkId) => (instanceId === 'web-1' ? slots.get(checkId) : undefined),
  });
  const queue = (state: CheckState): void => writer.queue(slot(state.checkId), state);
  return { host, logger, slots, writer, queue };
}

describe('CheckStateWriter', () => {
  it('writes the changes of one turn in one write, the latest state per check', async () => {
    const h = harness();
    h.queue(checkState({ checkId: 'c1', status: 'warning' }));
    h.queue(checkState({ checkId: 'c2', status: 'critical' }));
    h.queue(checkState({ checkId: 'c1', status: 'passing' }));
    await h.writer.settled();
    assert.equal(h.host.writes.length, 1);
    assert.deepEqual(
      h.host.written.map((s) => [s.checkId, s.status]),
      [
        ['c1', 'passing'],
        ['c2', 'critical'],
      ],
    );
  });

  it('does not write a forgotten check, nor one no longer tracked', async () => {
    const h = harness();
    h.queue(checkState({ checkId: 'c1' }));
    h.writer.forget('web-1', 'c1');
    h.queue(checkState({ checkId: 'c2' }));
    h.slots.delete('c2');
    await h.writer.settled();
    assert.deepEqual(h.host.writes, []);
  });

  it('carries the states of a failed write into the next one, unless superseded', async () => {
    const h = harness();
    h.host.failWrites = true;
    h.queue(checkState({ checkId: 'c1', status: 'critical' }));
    h.queue(checkState({ checkId: 'c2', status: 'critical' }));
    await h.writer.settled();
    await flushMicrotasks();
    assert.deepEqual(h.logger.warnings(), [
      'check state write failed; will retry with the next change',
    ]);
    h.host.failWrites = false;
    h.queue(checkState({ checkId: 'c2', status: 'passing' }));
    await h.writer.settled();
    assert.equal(h.host.writes.length, 2);
    assert.deepEqual(
      h.host.writes[1]?.map((s) => [s.checkId, s.status]),
      [
        ['c1', 'critical'],
        ['c2', 'passing'],
      ],
    );
  });
});
