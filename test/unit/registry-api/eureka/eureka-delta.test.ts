/** Eureka's recently-changed queue (issue 23): actions, retention by the injected clock, the cap. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EurekaDeltaQueue } from '../../../../src/registry-api/eureka/eureka-delta.js';
import { registration, startMemoryRegistry } from '../../../helpers/registry.js';

/** Lets the registry publish its pending changes (it publishes on the next turn). */
const published = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('EurekaDeltaQueue', () => {
  it('records ADDED, MODIFIED and DELETED with the last known copy, within the retention', async () => {
    const { registry, clock } = await startMemoryRegistry();
    await registry.register(registration('web', 'old'));
    const delta = new EurekaDeltaQueue({ registry, clock, retentionMs: 180_000 });
    delta.start();
    try {
      await published();
      assert.equal(delta.recent().length, 0, 'the snapshot is not a change');
      await registry.register(registration('web', 'w1'));
      await registry.setMaintenance('old', true, 'x');
      await registry.deregister('old');
      await published();
      const recent = delta.recent();
      assert.deepEqual(
        recent.map((c) => [c.instance.id, c.action]),
        [
          ['w1', 'ADDED'],
          ['old', 'DELETED'],
        ],
      );
      assert.equal(recent[1]?.instance.service, 'web');
      await registry.setMaintenance('w1', true, 'y');
      await published();
      const w1 = delta.recent().find((c) => c.instance.id === 'w1');
      assert.equal(w1?.action, 'MODIFIED');
      assert.equal(w1?.instance.maintenance.enabled, true);
      clock.advance(180_001);
      assert.deepEqual(delta.recent(), []);
    } finally {
      delta.close();
      await registry.close();
    }
  });

  it('reads no instance until a delta is asked for, and keeps no copy of the catalog', async () => {
    const { registry, clock } = await startMemoryRegistry();
    for (let n = 0; n < 20; n++) await registry.register(registration('web', `pre${n}`));
    let reads = 0;
    const counted = {
      instance: (id: string) => {
        reads++;
        return registry.instance(id);
      },
      onCatalogChange: registry.onCatalogChange.bind(registry),
    };
    const delta = new EurekaDeltaQueue({ registry: counted, clock, retentionMs: 180_000 });
    delta.start();
    try {
      for (let n = 0; n < 50; n++) await registry.register(registration('web', `w${n}`));
      await registry.setMaintenance('w1', true, 'x');
      await published();
      assert.equal(reads, 0, 'no instance read per change');
      const recent = delta.recent();
      assert.equal(recent.length, 50);
      assert.equal(reads, 50, 'one read per changed instance, when asked');
      assert.equal(recent.find((c) => c.instance.id === 'w1')?.action, 'MODIFIED');
      assert.equal(recent.find((c) => c.instance.id === 'w2')?.action, 'ADDED');
    } finally {
      delta.close();
      await registry.close();
    }
  });

  it('tells ADDED from MODIFIED by the change that made the instance, also after a re-registration', async () => {
    const { registry, clock } = await startMemoryRegistry();
    const delta = new EurekaDeltaQueue({ registry, clock, retentionMs: 180_000 });
    delta.start();
    try {
      await registry.register(registration('web', 'a'));
      await registry.register(registration('web', 'b'));
      await registry.deregister('b');
      await published();
      assert.deepEqual(
        delta.recent().map((c) => [c.instance.id, c.action]),
        [
          ['a', 'ADDED'],
          ['b', 'DELETED'],
        ],
      );
      // Registered again: a new instance to Eureka's clients.
      await registry.register(registration('web', 'b'));
      // A new definition of a known instance is a modification.
      await registry.register({ ...registration('web', 'a'), tags: ['v2'] });
      await published();
      assert.deepEqual(
        delta.recent().map((c) => [c.instance.id, c.action]),
        [
          ['a', 'MODIFIED'],
          ['b', 'ADDED'],
        ],
      );
    } finally {
      delta.close();
      await registry.close();
    }
  });

  it('keeps at most maxEntries changes, the newest', async () => {
    const { registry, clock } = await startMemoryRegistry();
    const delta = new EurekaDeltaQueue({ registry, clock, retentionMs: 180_000, maxEntries: 3 });
    delta.start();
    try {
      for (let n = 0; n < 5; n++) await registry.register(registration('web', `w${n}`));
      await published();
      assert.equal(delta.size, 3);
      assert.deepEqual(
        delta.recent().map((c) => c.instance.id),
        ['w2', 'w3', 'w4'],
      );
    } finally {
      delta.close();
      await registry.close();
    }
  });
});
