/** @module The CatalogStore contract suite: every store implementation passes a factory to it. */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { ERROR_CODES, isMeshError } from '../../src/core/errors.js';
import type {
  CheckDefinition,
  CheckState,
  Instance,
  Session as LockSession,
} from '../../src/core/types.js';
import {
  meshResourceKey,
  type MeshResource,
  type StoredMeshResource,
} from '../../src/protocol/mesh/resource.js';
import type {
  CatalogStore,
  CommitResult,
  StoreEvent,
  StoredSession,
  StoreOp,
  StoreSnapshot,
} from '../../src/registry/store/catalog-store.js';

/** What a factory hands the suite for one test. */
export interface CatalogStoreHarness {
  /** A new store, not opened yet: the suite calls `open()`. */
  readonly store: CatalogStore;
  /**
   * Durable stores only: a new, unopened store over the same data. The suite closes the previous
   * store before calling it.
   */
  readonly reopen?: () => Promise<CatalogStore>;
  /** Closes every store the harness made (closing twice is allowed) and removes their data. */
  readonly cleanup: () => Promise<void>;
}

/** A valid instance with every field set; `overrides` replaces any of them. */
export function testInstance(id: string, overrides: Partial<Instance> = {}): Instance {
  return {
    id,
    service: 'web',
    address: '10.0.0.7',
    port: 8080,
    ports: { http: 8080, admin: 9901 },
    tags: ['blue', 'v2'],
    meta: { version: '2.1.0', zone: 'eu-west-1a' },
    weights: { passing: 10, warning: 1 },
    priority: 1,
    capacity: 100,
    protocols: ['http'],
    source: 'self',
    managedBy: '',
    checks: [],
    maintenance: { enabled: false, reason: '' },
    createdAt: 1_700_000_000_000,
    updatedAt: 1_700_000_000_000,
    ...overrides,
  };
}

/** A valid TTL check definition. */
export function testCheck(id: string): CheckDefinition {
  return {
    id,
    name: `check ${id}`,
    kind: 'ttl',
    role: 'readiness',
    ttlMs: 10_000,
    intervalMs: 10_000,
    timeoutMs: 2_000,
    successesBeforePassing: 1,
    failuresBeforeWarning: 1,
    failuresBeforeCritical: 3,
    startPeriodMs: 0,
    deregisterCriticalAfterMs: 0,
    initialStatus: 'critical',
  };
}

/** A valid check state. */
export function testCheckState(
  instanceId: string,
  checkId: string,
  status: CheckState['status'] = 'passing',
): CheckState {
  return {
    instanceId,
    checkId,
    status,
    output: `${status} output`,
    since: 1_700_000_001_000,
    startedOnce: false,
  };
}

/**
 * A valid DestinationRule for host `name` with subsets `subsets` (labels `version: <subset>`), or
 * a VirtualService `name` routing to `host` (default `name`), to `subset` when given.
 */
export function testMeshResource(
  kind: 'DestinationRule' | 'VirtualService',
  name: string,
  options: { subsets?: readonly string[]; host?: string; subset?: string; namespace?: string } = {},
): MeshResource {
  const metadata = { name, namespace: options.namespace ?? 'default' };
  if (kind === 'DestinationRule') {
    return {
      apiVersion: 'networking.istio.io/v1',
      kind,
      metadata,
      spec: {
        host: options.host ?? name,
        subsets: (options.subsets ?? ['v1']).map((s) => ({ name: s, labels: { version: s } })),
      },
    };
  }
  const host = options.host ?? name;
  return {
    apiVersion: 'networking.istio.io/v1',
    kind,
    metadata,
    spec: {
      hosts: [host],
      http: [
        {
          route: [
            {
              destination: {
                host,
                ...(options.subset === undefined ? {} : { subset: options.subset }),
              },
            },
          ],
        },
      ],
    },
  };
}

/** A valid session; `overrides` replaces any field. */
export function testSession(id: string, overrides: Partial<LockSession> = {}): LockSession {
  return {
    id,
    name: `session ${id}`,
    node: 'node-1',
    lockDelayMs: 15_000,
    behavior: 'release',
    ttlMs: 0,
    agentChecks: ['serfHealth'],
    checks: [{ id: 'service:web-1', kind: 'service', instanceId: 'web-1', checkId: 'ttl' }],
    ...overrides,
  };
}

/** The event of a put of `resource` at `index`. */
const meshPut = (index: number, resource: MeshResource, createIndex: number): StoreEvent => ({
  type: 'mesh-put',
  index,
  resource,
  createIndex,
});

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

/** One test's store, the snapshot it opened with, and every event batch it delivered. */
class Session {
  store: CatalogStore;
  snapshot!: StoreSnapshot;
  /** Every listener call, in delivery order. */
  readonly batches: (readonly StoreEvent[])[] = [];
  readonly #harness: CatalogStoreHarness;

  private constructor(harness: CatalogStoreHarness) {
    this.#harness = harness;
    this.store = harness.store;
  }

  static async start(factory: () => Promise<CatalogStoreHarness>): Promise<Session> {
    const session = new Session(await factory());
    await session.#open();
    return session;
  }

  get durable(): boolean {
    return this.#harness.reopen !== undefined;
  }

  /** The index of the last commit that delivered events (the opening index before any). */
  get lastIndex(): number {
    return this.batches.at(-1)?.[0]?.index ?? this.snapshot.index;
  }

  /** Commits, and checks the events came before the promise resolved, all at the result index. */
  async commit(ops: readonly StoreOp[]): Promise<{ result: CommitResult; events: StoreEvent[] }> {
    const before = this.batches.length;
    const result = await this.store.commit(ops);
    const events = this.batches.slice(before).flat();
    for (const event of events) assert.equal(event.index, result.index, 'event index');
    return { result, events };
  }

  /** Durable stores: closes, reopens and returns the reopened snapshot. Others: undefined. */
  async reopened(): Promise<StoreSnapshot | undefined> {
    const reopen = this.#harness.reopen;
    if (reopen === undefined) return undefined;
    await this.store.close();
    this.store = await reopen();
    await this.#open();
    return this.snapshot;
  }

  cleanup(): Promise<void> {
    return this.#harness.cleanup();
  }

  async #open(): Promise<void> {
    this.snapshot = await this.store.open();
    this.store.subscribe((events) => this.batches.push(events));
  }
}

interface NormalizedState {
  readonly meshResources: readonly StoredMeshResource[];
  readonly sessions: readonly StoredSession[];
  readonly instances: readonly { instance: Instance; createIndex: number; modifyIndex: number }[];
  readonly checkStates: readonly CheckState[];
  readonly kv: readonly {
    key: string;
    hex: string;
    flags: number;
    createIndex: number;
    modifyIndex: number;
    session?: string;
    lockIndex?: number;
  }[];
}

/** A snapshot in a canonical order, values as hex, so two stores' answers compare equal. */
function normalize(snapshot: StoreSnapshot): NormalizedState {
  return {
    meshResources: [...snapshot.meshResources].sort((a, b) =>
      meshResourceKey(a.resource).localeCompare(meshResourceKey(b.resource)),
    ),
    instances: [...snapshot.instances]
      .sort((a, b) => a.instance.id.localeCompare(b.instance.id))
      .map((s) => ({
        instance: s.instance,
        createIndex: s.createIndex,
        modifyIndex: s.modifyIndex,
      })),
    checkStates: [...snapshot.checkStates].sort((a, b) =>
      `${a.instanceId}\0${a.checkId}`.localeCompare(`${b.instanceId}\0${b.checkId}`),
    ),
    kv: [...snapshot.kv]
      .sort((a, b) => a.key.localeCompare(b.key))
      .map((e) => ({
        key: e.key,
        hex: Buffer.from(e.value).toString('hex'),
        flags: e.flags,
        createIndex: e.createIndex,
        modifyIndex: e.modifyIndex,
        ...(e.session === undefined ? {} : { session: e.session }),
        ...(e.lockIndex === undefined ? {} : { lockIndex: e.lockIndex }),
      })),
    sessions: [...snapshot.sessions].sort((a, b) => a.session.id.localeCompare(b.session.id)),
  };
}

/** What a reader that only follows events knows: the opening snapshot plus every event since. */
function viewFromEvents(
  start: StoreSnapshot,
  batches: readonly (readonly StoreEvent[])[],
): StoreSnapshot {
  const instances = new Map(start.instances.map((s) => [s.instance.id, s]));
  const states = new Map(start.checkStates.map((s) => [`${s.instanceId}\0${s.checkId}`, s]));
  const kv = new Map(start.kv.map((e) => [e.key, e]));
  const mesh = new Map(start.meshResources.map((r) => [meshResourceKey(r.resource), r]));
  const sessions = new Map(start.sessions.map((r) => [r.session.id, r]));
  let index = start.index;
  for (const event of batches.flat()) {
    index = event.index;
    switch (event.type) {
      case 'instance-put': {
        const { instance } = event;
        instances.set(instance.id, {
          instance,
          createIndex: event.createIndex,
          modifyIndex: index,
        });
        const checkIds = new Set(instance.checks.map((c) => c.id));
        for (const [k, s] of states) {
          if (s.instanceId === instance.id && !checkIds.has(s.checkId)) states.delete(k);
        }
        break;
      }
      case 'instance-delete':
        instances.delete(event.id);
        for (const [k, s] of states) if (s.instanceId === event.id) states.delete(k);
        break;
      case 'check-state': {
        states.set(`${event.state.instanceId}\0${event.state.checkId}`, event.state);
        // A status change moves its instance's modify index (StoredInstance.modifyIndex).
        const owner = instances.get(event.state.instanceId);
        if (owner !== undefined) instances.set(owner.instance.id, { ...owner, modifyIndex: index });
        break;
      }
      case 'kv-put':
        kv.set(event.entry.key, event.entry);
        break;
      case 'kv-delete':
        kv.delete(event.key);
        break;
      case 'mesh-put':
        mesh.set(meshResourceKey(event.resource), {
          resource: event.resource,
          createIndex: event.createIndex,
          modifyIndex: index,
        });
        break;
      case 'mesh-delete':
        mesh.delete(event.key);
        break;
      case 'session-put':
        sessions.set(event.session.id, { session: event.session, createIndex: event.createIndex });
        break;
      case 'session-delete':
        sessions.delete(event.id);
        break;
    }
  }
  return {
    index,
    instances: [...instances.values()],
    checkStates: [...states.values()],
    kv: [...kv.values()],
    meshResources: [...mesh.values()],
    sessions: [...sessions.values()],
  };
}

/**
 * Runs the CatalogStore contract (src/registry/store/catalog-store.ts) against one
 * implementation. `factory` is called once per test; durable stores also give `reopen`, which
 * turns on the checks that read state back through a reopened snapshot.
 *
 * @example
 * runCatalogStoreContract('memory', async () => {
 *   const store = createMemoryCatalogStore();
 *   return { store, cleanup: () => store.close() };
 * });
 */
export function runCatalogStoreContract(
  name: string,
  factory: () => Promise<CatalogStoreHarness>,
  options: { readonly durable: boolean } = { durable: false },
): void {
  const test = (title: string, body: (s: Session, t: TestContext) => Promise<void>): void => {
    it(title, async (t) => {
      const session = await Session.start(factory);
      try {
        await body(session, t);
      } finally {
        await session.cleanup();
      }
    });
  };

  describe(`CatalogStore contract: ${name}`, () => {
    test('opens an empty store at index 1', async (s) => {
      assert.deepEqual(s.snapshot, {
        index: 1,
        instances: [],
        checkStates: [],
        kv: [],
        meshResources: [],
        sessions: [],
      });
    });

    test('puts a mesh resource, replaces it keeping createIndex, and deletes it', async (s) => {
      const dr = testMeshResource('DestinationRule', 'reviews', { subsets: ['v1'] });
      const first = await s.commit([{ op: 'put-mesh-resource', resource: dr }]);
      assert.equal(first.result.ok, true);
      assert.ok(first.result.index > s.snapshot.index);
      assert.deepEqual(first.events, [meshPut(first.result.index, dr, first.result.index)]);
      const changed = testMeshResource('DestinationRule', 'reviews', { subsets: ['v1', 'v2'] });
      const second = await s.commit([{ op: 'put-mesh-resource', resource: changed }]);
      assert.ok(second.result.index > first.result.index);
      assert.deepEqual(second.events, [meshPut(second.result.index, changed, first.result.index)]);
      const other = testMeshResource('DestinationRule', 'ratings');
      const third = await s.commit([{ op: 'put-mesh-resource', resource: other }]);
      const otherStored = {
        resource: other,
        createIndex: third.result.index,
        modifyIndex: third.result.index,
      };

      const reopened = await s.reopened();
      if (reopened !== undefined) {
        assert.deepEqual(normalize(reopened).meshResources, [
          otherStored,
          { resource: changed, createIndex: first.result.index, modifyIndex: second.result.index },
        ]);
      }

      const deleted = await s.commit([
        { op: 'delete-mesh-resource', key: 'DestinationRule/default/reviews' },
      ]);
      assert.deepEqual(deleted.events, [
        {
          type: 'mesh-delete',
          index: deleted.result.index,
          key: 'DestinationRule/default/reviews',
        },
      ]);
      // Put again after a delete, it is a new resource: a new createIndex.
      const again = await s.commit([{ op: 'put-mesh-resource', resource: dr }]);
      assert.deepEqual(again.events, [meshPut(again.result.index, dr, again.result.index)]);
      const last = await s.reopened();
      if (last !== undefined) {
        assert.equal(last.index, again.result.index);
        assert.deepEqual(normalize(last).meshResources, [
          otherStored,
          { resource: dr, createIndex: again.result.index, modifyIndex: again.result.index },
        ]);
      }
    });

    test('changes nothing for a put of an equal mesh resource or a delete of an absent one', async (s) => {
      const vs = testMeshResource('VirtualService', 'reviews');
      const put = await s.commit([{ op: 'put-mesh-resource', resource: vs }]);
      // Equal, not the same object (built again, keys in another order).
      const { spec, ...envelope } = vs;
      const copy = JSON.parse(JSON.stringify({ spec, ...envelope })) as MeshResource;
      const noop = await s.commit([
        { op: 'put-mesh-resource', resource: copy },
        { op: 'delete-mesh-resource', key: 'VirtualService/default/absent' },
      ]);
      assert.equal(noop.result.ok, true);
      assert.deepEqual(noop.events, []);
      assert.ok(noop.result.index >= put.result.index);
      const next = await s.commit([{ op: 'kv-put', key: 'k', value: bytes('v'), flags: 0 }]);
      assert.ok(next.result.index > noop.result.index);
      const reopened = await s.reopened();
      if (reopened !== undefined) {
        assert.deepEqual(reopened.meshResources, [
          { resource: vs, createIndex: put.result.index, modifyIndex: put.result.index },
        ]);
      }
    });

    test('applies mesh and instance ops in one commit, at one index, events in op order', async (s) => {
      const dr = testMeshResource('DestinationRule', 'web', { subsets: ['v2'] });
      const vs = testMeshResource('VirtualService', 'web', { subset: 'v2' });
      const { result, events } = await s.commit([
        { op: 'put-instance', instance: testInstance('web-1') },
        { op: 'put-mesh-resource', resource: dr },
        { op: 'put-mesh-resource', resource: vs },
        { op: 'kv-put', key: 'cfg', value: bytes('x'), flags: 0 },
      ]);
      assert.equal(result.ok, true);
      assert.deepEqual(
        events.map((e) => e.type),
        ['instance-put', 'mesh-put', 'mesh-put', 'kv-put'],
      );
      assert.equal(s.batches.length, 1, 'delivered together, in one listener call');
      const gone = await s.commit([
        { op: 'delete-instance', id: 'web-1' },
        { op: 'delete-mesh-resource', key: 'VirtualService/default/web' },
      ]);
      assert.deepEqual(gone.events, [
        { type: 'instance-delete', index: gone.result.index, id: 'web-1' },
        { type: 'mesh-delete', index: gone.result.index, key: 'VirtualService/default/web' },
      ]);
      const reopened = await s.reopened();
      if (reopened !== undefined) {
        assert.deepEqual(reopened.instances, []);
        assert.deepEqual(reopened.meshResources, [
          { resource: dr, createIndex: result.index, modifyIndex: result.index },
        ]);
      }
    });

    test('fails a commit with mesh ops and a failed cas as a whole', async (s) => {
      const taken = await s.commit([{ op: 'kv-put', key: 'lock', value: bytes('a'), flags: 0 }]);
      const failed = await s.commit([
        { op: 'put-mesh-resource', resource: testMeshResource('DestinationRule', 'web') },
        { op: 'kv-put', key: 'lock', value: bytes('b'), flags: 0, cas: 0 },
      ]);
      assert.equal(failed.result.ok, false);
      assert.deepEqual(failed.events, []);
      assert.equal(s.lastIndex, taken.result.index);
      const reopened = await s.reopened();
      if (reopened !== undefined) assert.deepEqual(reopened.meshResources, []);
    });

    test('applies each commit at a new, greater index carried by all its events', async (s) => {
      let previous = s.snapshot.index;
      for (const id of ['a', 'b', 'c']) {
        const { result, events } = await s.commit([
          { op: 'put-instance', instance: testInstance(id) },
          { op: 'kv-put', key: `owner/${id}`, value: bytes(id), flags: 0 },
        ]);
        assert.equal(result.ok, true);
        assert.ok(result.index > previous, `${result.index} > ${previous}`);
        assert.deepEqual(
          events.map((e) => e.type),
          ['instance-put', 'kv-put'],
        );
        previous = result.index;
      }
    });

    test('keeps createIndex and bumps modifyIndex when an instance is updated', async (s) => {
      const first = await s.commit([{ op: 'put-instance', instance: testInstance('web-1') }]);
      assert.deepEqual(first.events, [
        {
          type: 'instance-put',
          index: first.result.index,
          instance: testInstance('web-1'),
          createIndex: first.result.index,
        },
      ]);
      const updated = testInstance('web-1', { port: 9090, tags: ['green'], updatedAt: 1 });
      const second = await s.commit([{ op: 'put-instance', instance: updated }]);
      assert.ok(second.result.index > first.result.index);
      assert.deepEqual(second.events, [
        {
          type: 'instance-put',
          index: second.result.index,
          instance: updated,
          createIndex: first.result.index,
        },
      ]);

      const snapshot = await s.reopened();
      if (snapshot !== undefined) {
        assert.deepEqual(snapshot.instances, [
          { instance: updated, createIndex: first.result.index, modifyIndex: second.result.index },
        ]);
      }
    });

    test('deletes the check states of a deleted instance without separate events', async (s) => {
      const instance = testInstance('web-1', { checks: [testCheck('ttl')] });
      await s.commit([{ op: 'put-instance', instance }]);
      const state = await s.commit([
        { op: 'put-check-state', state: testCheckState('web-1', 'ttl') },
      ]);
      assert.equal(state.events.length, 1);

      const deleted = await s.commit([{ op: 'delete-instance', id: 'web-1' }]);
      assert.deepEqual(deleted.events, [
        { type: 'instance-delete', index: deleted.result.index, id: 'web-1' },
      ]);
      // Registered again, the instance starts without the old state.
      await s.commit([{ op: 'put-instance', instance }]);

      const snapshot = await s.reopened();
      if (snapshot !== undefined) assert.deepEqual(snapshot.checkStates, []);
    });

    test('drops a check state for an unknown instance or an unknown check', async (s) => {
      await s.commit([{ op: 'put-instance', instance: testInstance('web-1', { checks: [] }) }]);
      const unknownInstance = await s.commit([
        { op: 'put-check-state', state: testCheckState('nope', 'ttl') },
      ]);
      assert.equal(unknownInstance.result.ok, true);
      assert.deepEqual(unknownInstance.events, []);

      const unknownCheck = await s.commit([
        { op: 'put-check-state', state: testCheckState('web-1', 'nope') },
        { op: 'kv-put', key: 'k', value: bytes('v'), flags: 0 },
      ]);
      assert.equal(unknownCheck.result.ok, true);
      assert.deepEqual(
        unknownCheck.events.map((e) => e.type),
        ['kv-put'],
      );

      const snapshot = await s.reopened();
      if (snapshot !== undefined) assert.deepEqual(snapshot.checkStates, []);
    });

    test('drops the state of a check the instance no longer has', async (s) => {
      const both = testInstance('web-1', { checks: [testCheck('a'), testCheck('b')] });
      await s.commit([{ op: 'put-instance', instance: both }]);
      const states = await s.commit([
        { op: 'put-check-state', state: testCheckState('web-1', 'a') },
        { op: 'put-check-state', state: testCheckState('web-1', 'b', 'critical') },
      ]);
      assert.equal(states.events.length, 2);

      const onlyB = testInstance('web-1', { checks: [testCheck('b')] });
      const put = await s.commit([{ op: 'put-instance', instance: onlyB }]);
      assert.deepEqual(
        put.events.map((e) => e.type),
        ['instance-put'],
      );
      const late = await s.commit([{ op: 'put-check-state', state: testCheckState('web-1', 'a') }]);
      assert.deepEqual(late.events, []);

      const snapshot = await s.reopened();
      if (snapshot !== undefined) {
        assert.deepEqual(snapshot.checkStates, [testCheckState('web-1', 'b', 'critical')]);
      }
    });

    test('stores kv entries with their value, flags, createIndex and modifyIndex', async (s) => {
      const put = await s.commit([{ op: 'kv-put', key: 'cfg/db', value: bytes('one'), flags: 7 }]);
      const [event] = put.events;
      assert.equal(event?.type, 'kv-put');
      if (event?.type !== 'kv-put') return;
      assert.deepEqual(
        { ...event.entry, value: Buffer.from(event.entry.value).toString() },
        {
          key: 'cfg/db',
          value: 'one',
          flags: 7,
          createIndex: put.result.index,
          modifyIndex: put.result.index,
        },
      );

      const again = await s.commit([
        { op: 'kv-put', key: 'cfg/db', value: new Uint8Array([0, 255, 1]), flags: 8 },
        { op: 'kv-put', key: 'cfg/empty', value: new Uint8Array(0), flags: 0 },
      ]);

      const snapshot = await s.reopened();
      if (snapshot !== undefined) {
        assert.deepEqual(normalize(snapshot).kv, [
          {
            key: 'cfg/db',
            hex: '00ff01',
            flags: 8,
            createIndex: put.result.index,
            modifyIndex: again.result.index,
          },
          {
            key: 'cfg/empty',
            hex: '',
            flags: 0,
            createIndex: again.result.index,
            modifyIndex: again.result.index,
          },
        ]);
      }
    });

    test('kv-put with cas 0 writes only a key that is absent', async (s) => {
      const first = await s.commit([
        { op: 'kv-put', key: 'lock', value: bytes('a'), flags: 0, cas: 0 },
      ]);
      assert.equal(first.result.ok, true);
      assert.equal(first.events.length, 1);

      const second = await s.commit([
        { op: 'kv-put', key: 'lock', value: bytes('b'), flags: 0, cas: 0 },
      ]);
      assert.deepEqual(second.result, { ok: false, index: first.result.index });
      assert.deepEqual(second.events, []);
    });

    test("kv-put with cas N writes only when N is the key's modifyIndex", async (s) => {
      const created = await s.commit([{ op: 'kv-put', key: 'k', value: bytes('1'), flags: 0 }]);
      const updated = await s.commit([
        { op: 'kv-put', key: 'k', value: bytes('2'), flags: 0, cas: created.result.index },
      ]);
      assert.equal(updated.result.ok, true);
      assert.equal(updated.events.length, 1);

      const stale = await s.commit([
        { op: 'kv-put', key: 'k', value: bytes('3'), flags: 0, cas: created.result.index },
      ]);
      assert.deepEqual(stale.result, { ok: false, index: updated.result.index });
      assert.deepEqual(stale.events, []);

      const absent = await s.commit([
        { op: 'kv-put', key: 'other', value: bytes('x'), flags: 0, cas: updated.result.index },
      ]);
      assert.equal(absent.result.ok, false);
    });

    test('kv-check guards a commit without writing (the txn check-index of issue 22)', async (s) => {
      const created = await s.commit([{ op: 'kv-put', key: 'k', value: bytes('1'), flags: 0 }]);
      const held = await s.commit([
        { op: 'kv-check', key: 'k', index: created.result.index },
        { op: 'kv-check', key: 'absent', index: 0 },
        { op: 'kv-put', key: 'other', value: bytes('x'), flags: 0 },
      ]);
      assert.equal(held.result.ok, true);
      assert.deepEqual(
        held.events.map((e) => e.type),
        ['kv-put'],
      );

      const stale = await s.commit([
        { op: 'kv-put', key: 'other', value: bytes('y'), flags: 0 },
        { op: 'kv-check', key: 'k', index: created.result.index + 1000 },
      ]);
      assert.equal(stale.result.ok, false);
      assert.deepEqual(stale.events, []);
      const present = await s.commit([
        { op: 'kv-delete', key: 'other' },
        { op: 'kv-check', key: 'k', index: 0 },
      ]);
      assert.equal(present.result.ok, false);
      assert.deepEqual(present.events, []);
    });

    test("kv-delete with cas deletes only at the key's modifyIndex", async (s) => {
      const created = await s.commit([{ op: 'kv-put', key: 'k', value: bytes('1'), flags: 0 }]);
      const stale = await s.commit([{ op: 'kv-delete', key: 'k', cas: created.result.index - 1 }]);
      assert.deepEqual(stale.result, { ok: false, index: created.result.index });
      assert.deepEqual(stale.events, []);

      const deleted = await s.commit([{ op: 'kv-delete', key: 'k', cas: created.result.index }]);
      assert.equal(deleted.result.ok, true);
      assert.deepEqual(deleted.events, [
        { type: 'kv-delete', index: deleted.result.index, key: 'k' },
      ]);
    });

    test('a failed cas applies none of the ops in its commit and sends no events', async (s) => {
      const taken = await s.commit([{ op: 'kv-put', key: 'lock', value: bytes('a'), flags: 0 }]);
      const failed = await s.commit([
        { op: 'kv-put', key: 'side', value: bytes('x'), flags: 0 },
        { op: 'put-instance', instance: testInstance('web-1') },
        { op: 'kv-delete', key: 'lock' },
        { op: 'kv-put', key: 'lock', value: bytes('b'), flags: 0, cas: 0 },
      ]);
      assert.deepEqual(failed.result, { ok: false, index: taken.result.index });
      assert.deepEqual(failed.events, []);

      // Nothing landed: 'side' is still absent and 'lock' still at its old modifyIndex.
      const side = await s.commit([
        { op: 'kv-put', key: 'side', value: bytes('y'), flags: 0, cas: 0 },
      ]);
      assert.equal(side.result.ok, true);
      const lock = await s.commit([{ op: 'kv-delete', key: 'lock', cas: taken.result.index }]);
      assert.equal(lock.result.ok, true);
      assert.ok(side.result.index > taken.result.index);

      const snapshot = await s.reopened();
      if (snapshot !== undefined) assert.deepEqual(snapshot.instances, []);
    });

    test('a recursive kv-delete removes every key with the prefix and no other', async (s) => {
      const keys = ['app/a', 'app/b', 'app/c/d', 'apple', 'other'];
      await s.commit(keys.map((key) => ({ op: 'kv-put', key, value: bytes(key), flags: 0 })));

      const deleted = await s.commit([{ op: 'kv-delete', key: 'app/', recursive: true }]);
      assert.equal(deleted.result.ok, true);
      assert.deepEqual(
        deleted.events.map((e) => (e.type === 'kv-delete' ? e.key : `unexpected ${e.type}`)).sort(),
        ['app/a', 'app/b', 'app/c/d'],
      );

      const gone = await s.commit([
        { op: 'kv-put', key: 'app/a', value: bytes('new'), flags: 0, cas: 0 },
      ]);
      assert.equal(gone.result.ok, true);
      for (const key of ['apple', 'other']) {
        const kept = await s.commit([{ op: 'kv-put', key, value: bytes('new'), flags: 0, cas: 0 }]);
        assert.equal(kept.result.ok, false, key);
      }

      const snapshot = await s.reopened();
      if (snapshot !== undefined) {
        assert.deepEqual(snapshot.kv.map((e) => e.key).sort(), ['app/a', 'apple', 'other']);
      }
    });

    test('a commit that changes nothing succeeds without events', async (s) => {
      const real = await s.commit([{ op: 'kv-put', key: 'k', value: bytes('v'), flags: 0 }]);
      const noop = await s.commit([
        { op: 'delete-instance', id: 'absent' },
        { op: 'kv-delete', key: 'absent' },
        { op: 'kv-delete', key: 'absent/', recursive: true },
      ]);
      assert.equal(noop.result.ok, true);
      assert.deepEqual(noop.events, []);
      assert.ok(noop.result.index >= real.result.index);

      const next = await s.commit([{ op: 'kv-delete', key: 'k' }]);
      assert.ok(next.result.index > noop.result.index);
    });

    test('delivers events to every listener in order, once, before commit resolves', async (s) => {
      const other: StoreEvent[] = [];
      s.store.subscribe((events) => other.push(...events));
      for (let i = 0; i < 5; i++) {
        const { result } = await s.commit([
          { op: 'kv-put', key: `k${i}`, value: bytes('v'), flags: 0 },
        ]);
        assert.equal(other.at(-1)?.index, result.index, 'second listener saw the commit first');
      }
      assert.deepEqual(other, s.batches.flat());
      assert.equal(other.length, 5);
      const indexes = other.map((e) => e.index);
      assert.deepEqual(
        indexes,
        [...indexes].sort((a, b) => a - b),
      );
      assert.equal(new Set(indexes).size, 5);
    });

    test('applies 500 concurrent commits, each at the index its events carry', async (s) => {
      const count = 500;
      const seen = new Set<number>();
      s.store.subscribe((events) => {
        for (const event of events) seen.add(event.index);
      });
      const results = await Promise.all(
        Array.from({ length: count }, (_, i) =>
          s.store
            .commit([{ op: 'kv-put', key: `k/${i}`, value: bytes(String(i)), flags: i }])
            .then((result) => {
              assert.ok(seen.has(result.index), `events of ${result.index} before it resolved`);
              return result;
            }),
        ),
      );
      assert.ok(results.every((r) => r.ok));
      // Concurrent commits are not ordered among themselves, and may share an index (a store may
      // group them into one transaction), but events arrive in index order, each exactly once,
      // at the index its commit resolved with.
      const indexes = results.map((r) => r.index);
      const delivered = s.batches.flat();
      assert.equal(delivered.length, count, 'each event exactly once');
      const deliveredIndexes = delivered.map((e) => e.index);
      for (let i = 1; i < count; i++) {
        assert.ok(deliveredIndexes[i]! >= deliveredIndexes[i - 1]!, 'events in index order');
      }
      const byKey = new Map(
        delivered.map((e) => [e.type === 'kv-put' ? e.entry.key : '', e.index] as const),
      );
      results.forEach((r, i) => assert.equal(byKey.get(`k/${i}`), r.index, `k/${i}'s index`));

      const snapshot = await s.reopened();
      if (snapshot !== undefined) {
        assert.equal(snapshot.index, Math.max(...indexes));
        assert.equal(snapshot.kv.length, count);
      }
    });

    test('applies a commit larger than one etcd transaction holds (300 ops)', async (s) => {
      // etcd refuses more than 128 operations per transaction (--max-txn-ops): the etcd store
      // splits such a commit, which must still apply every op.
      const ops = Array.from({ length: 300 }, (_, i) => ({
        op: 'kv-put' as const,
        key: `big/${i}`,
        value: bytes(String(i)),
        flags: 0,
      }));
      // Not through s.commit: the parts of a split commit carry indexes of their own.
      const result = await s.store.commit(ops);
      assert.equal(result.ok, true);
      const events = s.batches.flat();
      assert.equal(events.length, 300);
      assert.equal(events.at(-1)?.index, result.index, 'the result carries the last index');
      assert.equal(s.store.available(), true);
      const snapshot = await s.reopened();
      if (snapshot !== undefined) assert.equal(snapshot.kv.length, 300);
    });

    test('lets exactly one of many concurrent cas 0 puts win', async (s) => {
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          s.store.commit([
            { op: 'kv-put', key: 'leader', value: bytes(String(i)), flags: 0, cas: 0 },
          ]),
        ),
      );
      assert.equal(results.filter((r) => r.ok).length, 1);
      assert.equal(s.batches.flat().length, 1);
    });

    test('stops delivering to a listener once it unsubscribes', async (s) => {
      const gone: StoreEvent[] = [];
      const unsubscribe = s.store.subscribe((events) => gone.push(...events));
      await s.commit([{ op: 'kv-put', key: 'a', value: bytes('1'), flags: 0 }]);
      unsubscribe();
      await s.commit([{ op: 'kv-put', key: 'b', value: bytes('2'), flags: 0 }]);
      assert.equal(gone.length, 1);
      assert.equal(s.batches.length, 2, 'the other listener still receives');
    });

    test('rejects commits after close with MESHWORK_ERR_STORE_UNAVAILABLE', async (s) => {
      await s.store.close();
      await assert.rejects(
        s.store.commit([{ op: 'kv-put', key: 'a', value: bytes('1'), flags: 0 }]),
        (err: unknown) => {
          assert.ok(isMeshError(err, ERROR_CODES.STORE_UNAVAILABLE), String(err));
          assert.equal(err.retryable, true);
          return true;
        },
      );
    });

    test('creates a session and ends it, releasing the keys it holds', async (s) => {
      const created = await s.commit([{ op: 'put-session', session: testSession('s1') }]);
      assert.equal(created.result.ok, true);
      assert.deepEqual(created.events, [
        {
          type: 'session-put',
          index: created.result.index,
          session: testSession('s1'),
          createIndex: created.result.index,
        },
      ]);
      const lock = { session: 's1', lockIndex: 1 };
      const taken = await s.commit([
        { op: 'kv-put', key: 'lead', value: bytes('me'), flags: 3, cas: 0, lock },
        { op: 'kv-put', key: 'free', value: bytes('x'), flags: 0 },
      ]);
      assert.equal(taken.result.ok, true);
      const held = taken.events.find((e) => e.type === 'kv-put' && e.entry.key === 'lead');
      assert.ok(held?.type === 'kv-put');
      assert.equal(held.entry.session, 's1');
      assert.equal(held.entry.lockIndex, 1);
      const free = taken.events.find((e) => e.type === 'kv-put' && e.entry.key === 'free');
      assert.ok(free?.type === 'kv-put');
      assert.equal(free.entry.session, undefined, 'never locked: no session');
      assert.equal(free.entry.lockIndex, undefined, 'never locked: no lock index');

      const ended = await s.commit([{ op: 'delete-session', id: 's1' }]);
      const i = ended.result.index;
      assert.deepEqual(ended.events, [
        { type: 'session-delete', index: i, id: 's1' },
        {
          type: 'kv-put',
          index: i,
          entry: {
            key: 'lead',
            value: bytes('me'),
            flags: 3,
            createIndex: taken.result.index,
            modifyIndex: i,
            lockIndex: 1,
          },
        },
      ]);
      const again = await s.commit([{ op: 'delete-session', id: 's1' }]);
      assert.deepEqual(again.events, [], 'ending an ended session changes nothing');
      const snapshot = await s.reopened();
      if (snapshot !== undefined) {
        assert.deepEqual(snapshot.sessions, []);
        const lead = snapshot.kv.find((e) => e.key === 'lead');
        assert.equal(lead?.session, undefined);
        assert.equal(lead?.lockIndex, 1);
      }
    });

    test('deletes the keys of a session with behavior delete when it ends', async (s) => {
      await s.commit([
        { op: 'put-session', session: testSession('eph', { behavior: 'delete' }) },
        { op: 'put-session', session: testSession('other') },
      ]);
      await s.commit([
        {
          op: 'kv-put',
          key: 'a',
          value: bytes('1'),
          flags: 0,
          lock: { session: 'eph', lockIndex: 1 },
        },
        {
          op: 'kv-put',
          key: 'b',
          value: bytes('2'),
          flags: 0,
          lock: { session: 'other', lockIndex: 1 },
        },
      ]);
      const ended = await s.commit([{ op: 'delete-session', id: 'eph' }]);
      const i = ended.result.index;
      assert.deepEqual(ended.events, [
        { type: 'session-delete', index: i, id: 'eph' },
        { type: 'kv-delete', index: i, key: 'a' },
      ]);
      const snapshot = await s.reopened();
      if (snapshot !== undefined) {
        assert.deepEqual(
          snapshot.kv.map((e) => [e.key, e.session]),
          [['b', 'other']],
        );
        assert.deepEqual(
          snapshot.sessions.map((x) => x.session.id),
          ['other'],
        );
      }
    });

    test('refuses a lock held by a session that does not exist', async (s) => {
      const { result, events } = await s.commit([
        {
          op: 'kv-put',
          key: 'x',
          value: bytes('v'),
          flags: 0,
          lock: { session: 'ghost', lockIndex: 1 },
        },
      ]);
      assert.equal(result.ok, false);
      assert.deepEqual(events, []);
    });

    test('keeps the lock through a plain put and drops it with a delete', async (s) => {
      await s.commit([{ op: 'put-session', session: testSession('s1') }]);
      await s.commit([
        {
          op: 'kv-put',
          key: 'k',
          value: bytes('1'),
          flags: 0,
          lock: { session: 's1', lockIndex: 4 },
        },
      ]);
      const plain = await s.commit([{ op: 'kv-put', key: 'k', value: bytes('2'), flags: 9 }]);
      const put = plain.events[0];
      assert.ok(put?.type === 'kv-put');
      assert.equal(put.entry.session, 's1');
      assert.equal(put.entry.lockIndex, 4);
      const released = await s.commit([
        {
          op: 'kv-put',
          key: 'k',
          value: bytes('3'),
          flags: 0,
          lock: { session: undefined, lockIndex: 4 },
        },
      ]);
      const r = released.events[0];
      assert.ok(r?.type === 'kv-put');
      assert.equal(r.entry.session, undefined);
      assert.equal(r.entry.lockIndex, 4);
      await s.commit([
        {
          op: 'kv-put',
          key: 'k',
          value: bytes('4'),
          flags: 0,
          lock: { session: 's1', lockIndex: 5 },
        },
      ]);
      const deleted = await s.commit([{ op: 'kv-delete', key: 'k' }]);
      assert.deepEqual(deleted.events, [
        { type: 'kv-delete', index: deleted.result.index, key: 'k' },
      ]);
      const ended = await s.commit([{ op: 'delete-session', id: 's1' }]);
      assert.deepEqual(
        ended.events.map((e) => e.type),
        ['session-delete'],
        'a deleted key is not released again',
      );
    });

    test('lets exactly one of many concurrent acquisitions of one key win', async (s) => {
      const ids = Array.from({ length: 20 }, (_, i) => `s${i}`);
      await s.commit(ids.map((id) => ({ op: 'put-session' as const, session: testSession(id) })));
      const results = await Promise.all(
        ids.map((id) =>
          s.store.commit([
            {
              op: 'kv-put',
              key: 'leader',
              value: bytes(id),
              flags: 0,
              cas: 0,
              lock: { session: id, lockIndex: 1 },
            },
          ]),
        ),
      );
      assert.equal(results.filter((r) => r.ok).length, 1);
      const holders = s.batches
        .flat()
        .filter((e) => e.type === 'kv-put')
        .map((e) => (e.type === 'kv-put' ? e.entry.session : undefined));
      assert.equal(holders.length, 1);
    });

    test('never leaves a key locked by a session that ended in a concurrent commit', async (s) => {
      await s.commit([{ op: 'put-session', session: testSession('s1') }]);
      const [ended, taken] = await Promise.all([
        s.store.commit([{ op: 'delete-session', id: 's1' }]),
        s.store.commit([
          {
            op: 'kv-put',
            key: 'k',
            value: bytes('v'),
            flags: 0,
            lock: { session: 's1', lockIndex: 1 },
          },
        ]),
      ]);
      assert.equal(ended.ok, true);
      const view = viewFromEvents(s.snapshot, s.batches);
      assert.deepEqual(view.sessions, []);
      const k = view.kv.find((e) => e.key === 'k');
      assert.equal(k?.session, undefined, `taken.ok=${taken.ok}: no key held by an ended session`);
    });

    // Only durable stores are defined to survive a reopen; the test is not registered for others.
    if (options.durable)
      test('reopens with every commit at its index and continues from there', async (s) => {
        const checks = [testCheck('ttl'), testCheck('http')];
        await s.commit([
          { op: 'put-instance', instance: testInstance('web-1', { checks }) },
          { op: 'put-instance', instance: testInstance('web-2', { service: 'api' }) },
          { op: 'kv-put', key: 'cfg/a', value: bytes('a'), flags: 1 },
          { op: 'put-mesh-resource', resource: testMeshResource('DestinationRule', 'web') },
          { op: 'put-mesh-resource', resource: testMeshResource('VirtualService', 'web') },
        ]);
        await s.commit([
          {
            op: 'put-mesh-resource',
            resource: testMeshResource('VirtualService', 'web', { subset: 'v1' }),
          },
          { op: 'delete-mesh-resource', key: 'DestinationRule/default/web' },
          { op: 'put-check-state', state: testCheckState('web-1', 'ttl', 'warning') },
          { op: 'put-check-state', state: testCheckState('web-1', 'http') },
          { op: 'kv-put', key: 'cfg/b', value: new Uint8Array([0, 1, 2, 250]), flags: 2 },
        ]);
        await s.commit([
          { op: 'delete-instance', id: 'web-2' },
          { op: 'kv-put', key: 'cfg/a', value: bytes('a2'), flags: 3 },
        ]);
        await Promise.all([
          s.store.commit([{ op: 'put-instance', instance: testInstance('web-3', { port: 1 }) }]),
          s.store.commit([{ op: 'kv-delete', key: 'cfg/b' }]),
        ]);
        const expected = viewFromEvents(s.snapshot, s.batches);
        const lastIndex = s.lastIndex;

        const first = await s.reopened();
        assert.equal(first?.index, lastIndex);
        assert.deepEqual(normalize(first!), normalize(expected));

        const next = await s.commit([{ op: 'kv-put', key: 'after', value: bytes('x'), flags: 0 }]);
        assert.ok(next.result.index > lastIndex, `${next.result.index} > ${lastIndex}`);

        const second = await s.reopened();
        assert.equal(second?.index, next.result.index);
        assert.deepEqual(normalize(second!), normalize(viewFromEvents(expected, [next.events])));
      });
  });
}
