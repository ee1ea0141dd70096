/** @module Unit tests of InstanceWriter.serial: the per-instance write queue over several ids. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  InstanceWriter,
  type InstanceWriterOptions,
} from '../../../src/registry/instance-writer.js';
import { deferred } from '../../helpers/deferred.js';

/** serial() reads none of the writer's parts. */
const writer = (): InstanceWriter => new InstanceWriter({} as InstanceWriterOptions);

describe('InstanceWriter.serial', () => {
  it('runs a write on several ids after the earlier writes to any of them, and before later ones', async () => {
    const w = writer();
    const order: string[] = [];
    const first = deferred();
    const a = w.serial(['x'], async () => {
      order.push('a start');
      await first.promise;
      order.push('a end');
    });
    const b = w.serial(['x', 'y', 'x'], async () => void order.push('b'));
    const c = w.serial(['y'], async () => void order.push('c'));
    const d = w.serial(['z'], async () => void order.push('d'));
    await d; // another id: not held by any of them
    assert.deepEqual(order, ['a start', 'd']);
    first.resolve();
    await Promise.all([a, b, c]);
    assert.deepEqual(order, ['a start', 'd', 'a end', 'b', 'c']);
  });

  it('holds the queues before the write starts: a write issued from within it waits for it', async () => {
    const w = writer();
    const order: string[] = [];
    let inner: Promise<void> | undefined;
    await w.serial(['x'], async () => {
      inner = w.serial(['x'], async () => void order.push('inner'));
      order.push('outer');
    });
    await inner;
    assert.deepEqual(order, ['outer', 'inner']);
  });

  it('releases the queues when a write fails, even by a synchronous throw', async () => {
    const w = writer();
    await assert.rejects(
      w.serial(['x'], () => {
        throw new Error('boom');
      }),
      /boom/,
    );
    await assert.rejects(
      w.serial(['x', 'y'], async () => Promise.reject(new Error('later'))),
      /later/,
    );
    assert.equal(await w.serial(['y', 'x'], async () => 'ran'), 'ran');
  });
});
