/** Unit tests of the Registry facade on the memory store and a fake clock. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRegistry, type Registry } from '../../../src/registry/registry.js';
import { createMemoryCatalogStore } from '../../../src/registry/store/memory/memory-catalog-store.js';
import type { CatalogStore } from '../../../src/registry/store/catalog-store.js';
import { nodeChecksId } from '../../../src/registry/catalog-view.js';
import { serviceTopic } from '../../../src/registry/catalog-facade.js';
import { normalizeChecks } from '../../../src/protocol/registration.js';
import { FakeClock, flushMicrotasks } from '../../../src/testing/fake-clock.js';
import { registration, startMemoryRegistry } from '../../helpers/registry.js';

const input = registration;
const setup = startMemoryRegistry;

/** {@link setup} with the instances a-1 and b-1 of services a and b. */
async function setupWithTwo(): Promise<{ registry: Registry; clock: FakeClock }> {
  const s = await setup();
  await s.registry.register(input('a', 'a-1'));
  await s.registry.register({ ...input('b', 'b-1'), address: '10.0.0.2' });
  return s;
}

describe('Registry', () => {
  it('starts at index 1 (never 0) and bumps the index on every change', async () => {
    const { registry } = await setup();
    assert.equal(registry.index, 1);
    const a = await registry.register(input('a', 'a-1'));
    const b = await registry.register(input('b', 'b-1'));
    assert.ok(a.index > 1);
    assert.ok(b.index > a.index);
    assert.equal(registry.serviceIndex('a'), a.index);
    assert.equal(registry.serviceIndex('b'), b.index);
  });

  it('wakes a watch on service A for a change to A, never for a change to B', async () => {
    const { registry } = await setup();
    const a1 = await registry.register(input('a', 'a-1'));
    let woke = false;
    const pending = registry
      .waitForChange(serviceTopic('a'), a1.index, 60_000, () => registry.serviceIndex('a'))
      .then(() => {
        woke = true;
      });
    await registry.register(input('b', 'b-1'));
    await registry.deregister('b-1');
    await flushMicrotasks();
    assert.equal(woke, false);
    const a2 = await registry.register(input('a', 'a-2'));
    await pending;
    assert.equal(woke, true);
    assert.equal(registry.serviceIndex('a'), a2.index);
  });

  it('ends a blocking query at wait plus at most wait/16 jitter when nothing changes', async () => {
    const clock = new FakeClock();
    const registry = createRegistry({
      store: createMemoryCatalogStore(),
      nodeName: 'n1',
      clock,
      random: () => 0.999,
    });
    await registry.start();
    const a1 = await registry.register(input('a', 'a-1'));
    let done = false;
    const p = registry
      .waitForChange(serviceTopic('a'), a1.index, 16_000, () => registry.serviceIndex('a'))
      .then(() => {
        done = true;
      });
    clock.advance(16_000);
    await flushMicrotasks();
    assert.equal(done, false, 'jitter extends the wait');
    clock.advance(1_000);
    await p;
    assert.equal(done, true);
  });

  it('returns at once when the given index is already behind', async () => {
    const { registry } = await setup();
    await registry.register(input('a', 'a-1'));
    await registry.waitForChange(serviceTopic('a'), 1, 60_000, () => registry.serviceIndex('a'));
  });

  it('delivers a snapshot then deltas to a stream, and drops a slow one without stalling others', async () => {
    const { registry } = await setup();
    await registry.register(input('a', 'a-1'));
    const fast: string[] = [];
    let slowDropped = '';
    let slowAccepted = 0;
    registry.subscribeStream('a', { write: (f) => (fast.push(f), true), drop: () => undefined });
    registry.subscribeStream('a', {
      write: () => slowAccepted++ < 1, // accepts the snapshot, then reports a full buffer
      drop: (frame) => {
        slowDropped = frame;
      },
    });
    await registry.register(input('a', 'a-2'));
    await registry.register(input('a', 'a-3'));
    await flushMicrotasks(); // watchers hear of changes on the turn after the write answers
    assert.match(fast[0] ?? '', /^event: snapshot/);
    assert.equal(fast.length, 3);
    assert.match(slowDropped, /^event: reset/);
    assert.equal(registry.watchers().streams, 1);
    assert.equal(registry.watchers().dropped, 1);
  });

  it('keeps check state and maintenance across a re-registration', async () => {
    const { registry } = await setup();
    await registry.register({ ...input('a', 'a-1'), checks: [{ ttlMs: 10_000 }] });
    assert.equal(
      (await registry.heartbeat('a-1')).status,
      'passing',
      'the answer carries the new status',
    );
    await registry.setMaintenance('a-1', true, 'upgrade');
    await registry.register({ ...input('a', 'a-1'), tags: ['new'], checks: [{ ttlMs: 10_000 }] });
    const dto = registry.getInstance('a-1').instance;
    assert.equal(dto.status, 'maintenance');
    assert.equal(dto.checks[0]?.status, 'passing');
    assert.deepEqual(dto.tags, ['new']);
  });
});

/** The memory store, but each commit lands a turn later, as with sqlite's group commit. */
async function setupDeferred(): Promise<Registry> {
  const inner = createMemoryCatalogStore();
  const store: CatalogStore = {
    kind: 'deferred-memory',
    available: () => inner.available(),
    open: () => inner.open(),
    subscribe: (l) => inner.subscribe(l),
    commit: async (ops) => {
      await new Promise((r) => setImmediate(r));
      return inner.commit(ops);
    },
    close: () => inner.close(),
  };
  const registry = createRegistry({ store, nodeName: 'n1', clock: new FakeClock() });
  await registry.start();
  return registry;
}

describe('Registry concurrency', () => {
  it('lets exactly one of two concurrent registrations of one id for two services win', async () => {
    const registry = await setupDeferred();
    const results = await Promise.allSettled([
      registry.register(input('a', 'same-id')),
      registry.register(input('b', 'same-id')),
    ]);
    assert.equal(results[0]?.status, 'fulfilled');
    assert.equal(results[1]?.status, 'rejected');
    assert.equal(registry.getInstance('same-id').instance.service, 'a');
  });

  it('does not lose a registration to a concurrent maintenance change', async () => {
    const registry = await setupDeferred();
    await registry.register(input('a', 'a-1'));
    await Promise.all([
      registry.register({ ...input('a', 'a-1'), tags: ['new'] }),
      registry.setMaintenance('a-1', true, 'upgrade'),
    ]);
    const dto = registry.getInstance('a-1').instance;
    assert.deepEqual(dto.tags, ['new']);
    assert.equal(dto.maintenance.enabled, true);
  });
});

describe('Registry publishing', () => {
  it('answers a write before telling watchers, and never tells a new stream twice', async () => {
    const { registry } = await setup();
    const frames: string[] = [];
    registry.subscribeStream('a', { write: (f) => (frames.push(f), true), drop: () => undefined });
    await registry.register(input('a', 'a-1'));
    assert.equal(frames.length, 1, 'the write answered before the delta went out');
    // A stream opened now gets a-1 in its snapshot, and not again as a delta.
    const late: string[] = [];
    registry.subscribeStream('a', { write: (f) => (late.push(f), true), drop: () => undefined });
    await flushMicrotasks();
    assert.equal(frames.length, 2);
    assert.equal(late.length, 1);
    assert.match(late[0] ?? '', /"id":"a-1"/);
  });

  it('takes a heartbeat for one TTL check only when given its id', async () => {
    const { registry } = await setup();
    await registry.register({
      ...input('a', 'a-1'),
      checks: [
        { id: 'one', ttlMs: 10_000 },
        { id: 'two', ttlMs: 10_000 },
      ],
    });
    await registry.heartbeat('a-1', 'passing', 'ok', 'one');
    const states = registry.getInstance('a-1').instance.checks.map((c) => [c.id, c.status]);
    assert.deepEqual(states, [
      ['one', 'passing'],
      ['two', 'critical'],
    ]);
  });

  it("edits an instance's checks with updateChecks, keeping the state of checks it keeps", async () => {
    const { registry } = await setup();
    await registry.register({ ...input('a', 'a-1'), checks: [{ id: 'one', ttlMs: 10_000 }] });
    await registry.heartbeat('a-1', 'passing');
    const [extra] = normalizeChecks([{ id: 'two', ttlMs: 5_000 }]);
    assert.ok(extra);
    const added = await registry.updateChecks('a-1', (checks) => [...checks, extra]);
    assert.deepEqual(
      added.instance.checks.map((c) => [c.id, c.status]),
      [
        ['one', 'passing'],
        ['two', 'critical'],
      ],
    );
    const same = await registry.updateChecks('a-1', (checks) => checks);
    assert.equal(same.index, added.index, 'no change, no write');
    const removed = await registry.updateChecks('a-1', (checks) =>
      checks.filter((c) => c.id === 'one'),
    );
    assert.deepEqual(
      removed.instance.checks.map((c) => c.id),
      ['one'],
    );
    assert.equal(removed.instance.status, 'passing');
    await assert.rejects(
      registry.updateChecks('nope', (c) => c),
      /not found/,
    );
  });
});

describe('Registry node checks', () => {
  it('expires a TTL node check on the clock and fails every instance, waking watchers', async () => {
    const { registry, clock } = await setupWithTwo();
    const [disk] = normalizeChecks([
      { id: 'disk', name: 'disk', ttlMs: 10_000, initialStatus: 'passing' },
    ]);
    assert.ok(disk);
    await registry.updateNodeChecks((checks) => [...checks, disk]);
    assert.equal(registry.getInstance('a-1').instance.status, 'passing');
    const before = registry.serviceIndex('b');
    let woke = false;
    const waiting = registry
      .waitForChange(serviceTopic('b'), before, 60_000, () => registry.serviceIndex('b'))
      .then(() => {
        woke = true;
      });

    clock.advance(9_999);
    await flushMicrotasks();
    assert.equal(woke, false);
    clock.advance(2);
    await registry.notified('b', registry.index);
    await waiting;
    assert.equal(woke, true);
    const a = registry.getInstance('a-1').instance;
    assert.equal(a.status, 'critical');
    assert.equal(a.statusReason, 'node check "disk" is critical: TTL expired');
    assert.ok(registry.serviceIndex('b') > before);
    assert.equal(registry.nodeChecks()?.checks[0]?.status, 'critical');

    await registry.heartbeatNodeCheck('disk', 'passing', 'ok');
    assert.equal(registry.getInstance('b-1').instance.status, 'passing');
    assert.equal(registry.nodeChecks()?.checks[0]?.output, 'ok');
  });

  it('keeps node checks out of every listing and clears deregister-after-critical', async () => {
    const { registry } = await setupWithTwo();
    const [reaped] = normalizeChecks([
      { id: 'r', ttlMs: 10_000, deregisterCriticalAfterMs: 60_000 },
    ]);
    assert.ok(reaped);
    const r = await registry.updateNodeChecks(() => [reaped]);
    assert.equal(registry.nodeChecks()?.checks[0]?.deregisterCriticalAfterMs, 0);
    assert.equal(registry.nodeChecks()?.modifyIndex, r.index);
    assert.deepEqual(
      registry.listServices().services.map((s) => s.name),
      ['a', 'b'],
    );
    assert.equal(registry.instanceCount, 2);
    assert.equal(registry.instanceDefinition(nodeChecksId('n1')), undefined);
    assert.throws(() => registry.getInstance(nodeChecksId('n1')), /not found/);
    await assert.rejects(registry.heartbeat(nodeChecksId('n1')), /not found/);
    assert.equal((await registry.deregister(nodeChecksId('n1'))).deleted, false);
    assert.deepEqual(registry.countsByStatus().critical, 2);
    assert.equal((await registry.updateNodeChecks((c) => c)).index, r.index, 'no change, no write');

    await registry.updateNodeChecks(() => []);
    assert.equal(registry.nodeChecks(), undefined, 'the last check gone, the node has none');
    assert.equal(registry.getInstance('a-1').instance.status, 'passing');
    await assert.rejects(registry.heartbeatNodeCheck('r', 'passing', ''), /not found/);
  });
});

// Issue 16: KV had no quota; 800 values of 512 KiB held the agent at 3.1 GB.
describe('Registry KV quota', () => {
  const quotaRegistry = async (kvQuotaBytes: number): Promise<Registry> => {
    const registry = createRegistry({
      store: createMemoryCatalogStore(),
      nodeName: 'n1',
      clock: new FakeClock(),
      limits: { kvQuotaBytes },
    });
    await registry.start();
    return registry;
  };
  const bytes = (n: number): Uint8Array => new Uint8Array(n);
  const refusedWith = (code: string, message: RegExp) => (err: unknown) =>
    (err as { code?: string }).code === code && message.test((err as Error).message);

  it('counts keys and values, refuses a put past the quota saying used and quota, and frees on delete', async () => {
    const registry = await quotaRegistry(1000);
    await registry.kvPut('a', bytes(499));
    await registry.kvPut('b', bytes(499));
    assert.equal(registry.kvBytes, 1000);
    await assert.rejects(
      registry.kvPut('c', bytes(0)),
      refusedWith(
        'MESHWORK_ERR_REGISTRY_KV_QUOTA_EXCEEDED',
        /key "c" adds 1 bytes to 1000 used of 1000/,
      ),
    );
    assert.equal(registry.kvGet('c'), undefined);
    // A put that does not grow KV goes through at the quota; a delete frees room.
    await registry.kvPut('a', bytes(10));
    assert.equal(registry.kvBytes, 511);
    await registry.kvPut('c', bytes(400));
    await registry.kvDelete('', { recursive: true });
    assert.equal(registry.kvBytes, 0);
  });

  it('lets concurrent puts that each fit alone past the quota only as far as it goes', async () => {
    const registry = await quotaRegistry(1000);
    const results = await Promise.allSettled(
      ['x', 'y', 'z'].map((k) => registry.kvPut(k, bytes(399))),
    );
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'fulfilled', 'rejected'],
    );
    assert.equal(registry.kvBytes, 800);
  });

  it('refuses a value over 512 KiB naming the key', async () => {
    const registry = await quotaRegistry(10 * 1024 * 1024);
    await assert.rejects(
      registry.kvPut('big/one', bytes(512 * 1024 + 1)),
      refusedWith('MESHWORK_ERR_REGISTRY_KV_VALUE_TOO_LARGE', /key "big\/one" is 524289 bytes/),
    );
    await registry.kvPut('big/one', bytes(512 * 1024));
  });
});
