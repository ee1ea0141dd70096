/** Unit tests of the Registry's mesh side (reads, writes, watches, change feed) on the memory store. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ERROR_CODES, isMeshError } from '../../../src/core/errors.js';
import type { MeshResource } from '../../../src/protocol/mesh/resource.js';
import type { CatalogChange } from '../../../src/registry/mesh-catalog.js';
import type { Registry } from '../../../src/registry/registry.js';
import { flushMicrotasks } from '../../../src/testing/fake-clock.js';
import { testMeshResource } from '../../contract/catalog-store.contract.js';
import { registration, startMemoryRegistry } from '../../helpers/registry.js';

const input = registration;

const dr = (name: string, subsets: readonly string[] = ['v1']): MeshResource =>
  testMeshResource('DestinationRule', name, { subsets });
const vs = (name: string, subset?: string): MeshResource =>
  testMeshResource('VirtualService', name, subset === undefined ? {} : { subset });

/**
 * `changes` with each deletion's lastKnown (a function) checked and taken out, for deepEqual:
 * it must answer the deleted instance as it was.
 */
function comparable(changes: readonly CatalogChange[]): CatalogChange[] {
  return changes.map((c) => ({
    ...c,
    instances: c.instances.map(({ lastKnown, ...rest }) => {
      if (rest.kind === 'delete') {
        assert.equal(typeof lastKnown, 'function', `deletion of ${rest.id} without lastKnown`);
        const last = (lastKnown as () => { id: string; service: string })();
        assert.deepEqual([last.id, last.service], [rest.id, rest.service]);
      } else assert.equal(lastKnown, undefined);
      return rest;
    }),
  }));
}

/** A started registry, and every change it told (`onCatalogChange`) from the start. */
async function setup(): Promise<{ registry: Registry; changes: CatalogChange[] }> {
  const { registry } = await startMemoryRegistry();
  const changes: CatalogChange[] = [];
  registry.onCatalogChange((c) => changes.push(c));
  return { registry, changes };
}

/** Asserts `err` is a validation error with `field` and `problems` (their fields). */
function validationError(field: string, problems: readonly string[]) {
  return (err: unknown): boolean => {
    assert.ok(isMeshError(err, ERROR_CODES.VALIDATION), String(err));
    assert.equal(err.details?.field, field);
    assert.ok(err.message.startsWith(`${field}: `), err.message);
    const listed = err.details?.problems as { field: string; reason: string }[];
    assert.deepEqual(
      listed.map((p) => p.field),
      problems,
    );
    return true;
  };
}

describe('Registry mesh reads and writes', () => {
  it('creates, configures and keeps resources, answering each with before and after', async () => {
    const { registry } = await setup();
    assert.equal(registry.meshIndex, 1);
    const first = await registry.applyMesh({ resources: [dr('web'), vs('web', 'v1')] });
    assert.equal(first.dryRun, false);
    assert.ok(first.index > 1);
    assert.deepEqual(first.resources, [
      { key: 'DestinationRule/default/web', action: 'created', after: dr('web') },
      { key: 'VirtualService/default/web', action: 'created', after: vs('web', 'v1') },
    ]);
    assert.equal(registry.meshIndex, first.index);

    const second = await registry.applyMesh({
      resources: [dr('web', ['v1', 'v2']), vs('web', 'v1')],
    });
    assert.ok(second.index > first.index);
    assert.deepEqual(second.resources, [
      {
        key: 'DestinationRule/default/web',
        action: 'configured',
        before: dr('web'),
        after: dr('web', ['v1', 'v2']),
      },
      {
        key: 'VirtualService/default/web',
        action: 'unchanged',
        before: vs('web', 'v1'),
        after: vs('web', 'v1'),
      },
    ]);
    assert.deepEqual(registry.meshResource('DestinationRule/default/web'), {
      resource: dr('web', ['v1', 'v2']),
      createIndex: first.index,
      modifyIndex: second.index,
    });
    assert.equal(registry.meshResource('VirtualService/default/web')?.modifyIndex, first.index);

    const same = await registry.applyMesh({ resources: [vs('web', 'v1')] });
    assert.equal(same.index, second.index, 'nothing changed: the current index');
    assert.equal(registry.meshIndex, second.index);
  });

  it('lists resources sorted by key, all or of one kind', async () => {
    const { registry } = await setup();
    await registry.applyMesh({ resources: [vs('b'), dr('z'), vs('a'), dr('c')] });
    const keys = (list: readonly { resource: MeshResource }[]): string[] =>
      list.map((s) => `${s.resource.kind}/${s.resource.metadata.name}`);
    assert.deepEqual(keys(registry.meshResources()), [
      'DestinationRule/c',
      'DestinationRule/z',
      'VirtualService/a',
      'VirtualService/b',
    ]);
    assert.deepEqual(keys(registry.meshResources('VirtualService')), [
      'VirtualService/a',
      'VirtualService/b',
    ]);
    assert.deepEqual(registry.meshResources('ServiceEntry'), []);
    assert.equal(registry.meshResources(), registry.meshResources(), 'shared until a change');
    assert.equal(registry.meshResource('VirtualService/default/none'), undefined);
  });

  it('stores nothing, instances included, when a reference fails, and names every problem', async () => {
    const { registry, changes } = await setup();
    await registry.applyMesh({ resources: [dr('web', ['v1'])] });
    const index = registry.index;
    changes.length = 0;
    await assert.rejects(
      registry.applyMesh({
        resources: [vs('web', 'v2'), vs('api', 'v1')],
        instances: { set: 'file', inputs: [input('web', 'web-1')] },
      }),
      validationError('VirtualService/default/web: spec.http[0].route[0].destination.subset', [
        'VirtualService/default/web: spec.http[0].route[0].destination.subset',
        'VirtualService/default/api: spec.http[0].route[0].destination.subset',
      ]),
    );
    assert.equal(registry.index, index);
    assert.equal(registry.instance('web-1'), undefined);
    assert.equal(registry.meshResources('VirtualService').length, 0);
    assert.deepEqual(changes, []);
  });

  it('refuses instances that do not apply (a duplicate id), storing none of the resources', async () => {
    const { registry } = await setup();
    await assert.rejects(
      registry.applyMesh({
        resources: [dr('web')],
        instances: {
          set: 'file',
          inputs: [input('web', 'web-1'), input('web', 'web-1')],
        },
      }),
      (err: unknown) =>
        isMeshError(err, ERROR_CODES.VALIDATION) && /^instances\[1\]\./.test(err.message),
    );
    assert.deepEqual(registry.meshResources(), []);
    assert.equal(registry.instance('web-1'), undefined);
  });

  it('refuses a request that gives one resource twice', async () => {
    const { registry } = await setup();
    await assert.rejects(
      registry.applyMesh({ resources: [dr('web'), vs('web'), dr('web', ['v2'])] }),
      (err: unknown) =>
        isMeshError(err, ERROR_CODES.VALIDATION) && err.details?.field === 'resources[2]',
    );
  });

  it('commits resources and instance sets together, at one index, told once', async () => {
    const { registry, changes } = await setup();
    await registry.register(input('old', 'old-1'), { managedBy: 'file' });
    changes.length = 0;
    const result = await registry.applyMesh({
      resources: [dr('web', ['v1']), vs('web', 'v1')],
      instances: { set: 'file', inputs: [input('web', 'web-1'), input('api', 'api-1')] },
    });
    assert.deepEqual(result.instances, {
      index: result.index,
      set: 'file',
      created: ['web-1', 'api-1'],
      updated: [],
      unchanged: [],
      deleted: ['old-1'],
    });
    assert.equal(registry.getInstance('web-1').index, result.index);
    assert.equal(registry.meshIndex, result.index);
    const at = (kind: string, service: string, id: string) => ({
      kind,
      service,
      id,
      index: result.index,
    });
    assert.deepEqual(comparable(changes), [
      {
        index: result.index,
        services: ['api', 'old', 'web'],
        instances: [
          at('upsert', 'web', 'web-1'),
          at('upsert', 'api', 'api-1'),
          at('delete', 'old', 'old-1'),
        ],
        meshResources: ['DestinationRule/default/web', 'VirtualService/default/web'],
      },
    ]);
  });

  it('computes a dry run in full and commits nothing', async () => {
    const { registry, changes } = await setup();
    await registry.applyMesh({ resources: [dr('web')] });
    await registry.apply('file', [input('web', 'web-1')]);
    const index = registry.index;
    changes.length = 0;
    const result = await registry.applyMesh({
      resources: [dr('web', ['v1', 'v2']), vs('web', 'v2')],
      instances: { set: 'file', inputs: [input('web', 'web-2')] },
      dryRun: true,
    });
    assert.deepEqual(result, {
      index,
      dryRun: true,
      resources: [
        {
          key: 'DestinationRule/default/web',
          action: 'configured',
          before: dr('web'),
          after: dr('web', ['v1', 'v2']),
        },
        { key: 'VirtualService/default/web', action: 'created', after: vs('web', 'v2') },
      ],
      instances: {
        index,
        set: 'file',
        created: ['web-2'],
        updated: [],
        unchanged: [],
        deleted: ['web-1'],
      },
    });
    assert.equal(registry.index, index);
    assert.deepEqual(registry.meshResource('DestinationRule/default/web')?.resource, dr('web'));
    assert.ok(registry.instance('web-1') !== undefined);
    assert.deepEqual(changes, []);
    // A dry run is refused like the real thing.
    await assert.rejects(
      registry.applyMesh({ resources: [vs('web', 'v3')], dryRun: true }),
      (err: unknown) => isMeshError(err, ERROR_CODES.VALIDATION),
    );
  });

  it('refuses to delete a DestinationRule whose subset a VirtualService uses, naming it', async () => {
    const { registry } = await setup();
    await registry.applyMesh({ resources: [dr('web', ['v1']), vs('web', 'v1')] });
    await assert.rejects(
      registry.deleteMeshResource('DestinationRule/default/web'),
      (err: unknown) => {
        assert.ok(isMeshError(err, ERROR_CODES.VALIDATION), String(err));
        assert.equal(
          err.details?.field,
          'VirtualService/default/web: spec.http[0].route[0].destination.subset',
        );
        assert.match(err.message, /refers to DestinationRule\/default\/web/);
        return true;
      },
    );
    assert.ok(registry.meshResource('DestinationRule/default/web') !== undefined);
    const vsGone = await registry.deleteMeshResource('VirtualService/default/web');
    assert.equal(vsGone.deleted, true);
    assert.equal(vsGone.index, registry.meshIndex);
    const drGone = await registry.deleteMeshResource('DestinationRule/default/web');
    assert.deepEqual(drGone, { index: registry.index, deleted: true });
    assert.deepEqual(registry.meshResources(), []);
    const absent = await registry.deleteMeshResource('DestinationRule/default/web');
    assert.deepEqual(absent, { index: drGone.index, deleted: false });
  });
});

describe('Registry mesh watches and change feed', () => {
  it('tells each change once, synchronously, with the services and mesh keys it touched', async () => {
    const { registry, changes } = await setup();
    const seen: boolean[] = [];
    registry.onCatalogChange((c) => {
      // Synchronous and after the view applied it: reads already see the change.
      seen.push(
        registry.index === c.index &&
          (c.meshResources.length === 0 || registry.meshIndex === c.index),
      );
    });
    const web = await registry.register({
      ...input('web', 'web-1'),
      checks: [{ id: 'ttl', ttlMs: 10_000 }],
    });
    /** A change of instance web-1 at `index`. */
    const ofWeb = (index: number, kind = 'upsert') => ({
      index,
      services: ['web'],
      instances: [{ kind, service: 'web', id: 'web-1', index }],
      meshResources: [],
    });
    assert.deepEqual(changes.at(-1), ofWeb(web.index));
    const beat = await registry.heartbeat('web-1', 'passing');
    assert.deepEqual(changes.at(-1), ofWeb(beat.index));
    const count = changes.length;
    await registry.kvPut('k', new TextEncoder().encode('v'));
    assert.equal(changes.length, count, 'a KV change is not told');
    const put = await registry.applyMesh({ resources: [dr('web')] });
    assert.deepEqual(changes.at(-1), {
      index: put.index,
      services: [],
      instances: [],
      meshResources: ['DestinationRule/default/web'],
    });
    const gone = await registry.deleteMeshResource('DestinationRule/default/web');
    assert.deepEqual(changes.at(-1), {
      index: gone.index,
      services: [],
      instances: [],
      meshResources: ['DestinationRule/default/web'],
    });
    const dereg = await registry.deregister('web-1');
    assert.deepEqual(comparable(changes.slice(-1)), [ofWeb(dereg.index, 'delete')]);
    // The deletion carries the instance as it was: its check and that check's last status.
    const last = changes.at(-1)?.instances[0]?.lastKnown?.();
    assert.deepEqual(
      last?.checks.map((c) => [c.id, c.status]),
      [['ttl', 'passing']],
    );
    const indexes = changes.map((c) => c.index);
    assert.deepEqual(
      indexes,
      [...new Set(indexes)].sort((a, b) => a - b),
      'once each, in order',
    );
    assert.ok(seen.every(Boolean));
  });

  it('keeps a listener that throws and still tells the others; stops after unsubscribe', async () => {
    const { registry, changes } = await setup();
    let thrown = 0;
    const off = registry.onCatalogChange(() => {
      thrown++;
      throw new Error('listener bug');
    });
    await registry.register(input('a', 'a-1'));
    await registry.register(input('a', 'a-2'));
    assert.equal(thrown, 2);
    assert.equal(changes.length, 2);
    off();
    await registry.register(input('a', 'a-3'));
    assert.equal(thrown, 2);
    assert.equal(changes.length, 3);
  });

  it("wakes a blocking query on 'mesh' for a resource change, never for an instance change", async () => {
    const { registry } = await setup();
    const start = registry.meshIndex;
    let woke = false;
    const pending = registry
      .waitForChange('mesh', start, 60_000, () => registry.meshIndex)
      .then(() => {
        woke = true;
      });
    await registry.register(input('web', 'web-1'));
    await registry.apply('file', [input('api', 'api-1')]);
    await registry.kvPut('k', new TextEncoder().encode('v'));
    await new Promise((r) => setImmediate(r));
    await flushMicrotasks();
    assert.equal(woke, false);
    assert.equal(registry.meshIndex, start);
    const put = await registry.applyMesh({ resources: [dr('web')] });
    await pending;
    assert.equal(woke, true);
    assert.equal(registry.meshIndex, put.index);
  });
});
