/**
 * Mesh resources through real registries on real stores: they survive closing and reopening a
 * SQLite data directory, and two registries on one real etcd see each other's resources, events
 * and reference checks.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { ERROR_CODES, isMeshError } from '../../src/core/errors.js';
import type { MeshResource } from '../../src/protocol/mesh/resource.js';
import { checkReferences } from '../../src/protocol/mesh/references.js';
import type { CatalogChange } from '../../src/registry/mesh-catalog.js';
import { createRegistry, type Registry } from '../../src/registry/registry.js';
import { createEtcdCatalogStore } from '../../src/registry/store/etcd/etcd-catalog-store.js';
import { createSqliteCatalogStore } from '../../src/registry/store/sqlite/sqlite-catalog-store.js';
import { testMeshResource } from '../contract/catalog-store.contract.js';
import { startEtcd, type EtcdProcess } from '../helpers/etcd.js';
import { until } from '../helpers/until.js';

const dr = (name: string, subsets: readonly string[] = ['v1']): MeshResource =>
  testMeshResource('DestinationRule', name, { subsets });
const vs = (name: string, subset?: string): MeshResource =>
  testMeshResource('VirtualService', name, subset === undefined ? {} : { subset });
const input = (service: string, id: string) => ({ service, id, address: '10.0.0.1', port: 80 });

describe('mesh resources on SQLite', () => {
  let dataDir: string;
  const registries: Registry[] = [];
  const open = async (): Promise<Registry> => {
    const registry = createRegistry({
      store: createSqliteCatalogStore({ dataDir }),
      nodeName: 'n1',
    });
    registries.push(registry);
    await registry.start();
    return registry;
  };
  beforeEach(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'meshwork-mesh-sqlite-'));
  });
  afterEach(async () => {
    for (const r of registries.splice(0)) await r.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('keeps resources, their indexes and the instances applied with them across a reopen', async () => {
    const first = await open();
    const applied = await first.applyMesh({
      resources: [dr('web', ['v1', 'v2']), vs('web', 'v2')],
      instances: { set: 'mesh.yaml', inputs: [input('web', 'web-1')] },
    });
    const changed = await first.applyMesh({ resources: [dr('web', ['v1', 'v2', 'v3'])] });
    const stored = first.meshResources();
    await first.close();

    const second = await open();
    assert.deepEqual(second.meshResources(), stored);
    assert.deepEqual(second.meshResource('DestinationRule/default/web'), {
      resource: dr('web', ['v1', 'v2', 'v3']),
      createIndex: applied.index,
      modifyIndex: changed.index,
    });
    assert.equal(second.instance('web-1')?.createIndex, applied.index);
    // The reopened registry checks references against what it loaded.
    await assert.rejects(second.deleteMeshResource('DestinationRule/default/web'), (err: unknown) =>
      isMeshError(err, ERROR_CODES.VALIDATION),
    );
    const next = await second.deleteMeshResource('VirtualService/default/web');
    assert.ok(next.index > changed.index);
  });

  it('runs an apply and a delete issued together one after the other, so no reference dangles', async () => {
    // The SQLite store commits on a later turn: two writes checked against the same view would
    // both pass. The second must be checked against the first's result.
    const registry = await open();
    await registry.applyMesh({ resources: [dr('web', ['v1'])] });
    const [applied, deleted] = await Promise.allSettled([
      registry.applyMesh({ resources: [vs('web', 'v1')] }),
      registry.deleteMeshResource('DestinationRule/default/web'),
    ]);
    assert.equal(applied.status, 'fulfilled');
    assert.equal(deleted.status, 'rejected');
    assert.deepEqual(checkReferences(registry.meshResources().map((s) => s.resource)), []);
    assert.equal(registry.meshResources().length, 2);
  });
});

describe('mesh resources on a cluster (two registries, one real etcd)', () => {
  let etcd: EtcdProcess;
  let n = 0;
  let a: Registry;
  let b: Registry;
  before(async () => {
    etcd = await startEtcd();
  });
  after(async () => {
    await etcd.stop();
  });
  beforeEach(async () => {
    const prefix = `/mesh-cluster-${process.pid}-${n++}/`;
    const make = (nodeName: string): Registry =>
      createRegistry({
        store: createEtcdCatalogStore({ endpoints: [etcd.endpoint], prefix }),
        nodeName,
      });
    a = make('a');
    b = make('b');
    await a.start();
    await b.start();
  });
  afterEach(async () => {
    await a.close();
    await b.close();
  });

  it("sees the other registry's resources, indexes and change events", async () => {
    const seen: CatalogChange[] = [];
    b.onCatalogChange((c) => seen.push(c));
    const put = await a.applyMesh({
      resources: [dr('web', ['v1']), vs('web', 'v1')],
      instances: { set: 'mesh.yaml', inputs: [input('web', 'web-1')] },
    });
    await until(() => b.meshIndex >= put.index, 10_000, 'B heard of the apply');
    assert.deepEqual(b.meshResources(), a.meshResources());
    assert.equal(b.meshResource('VirtualService/default/web')?.createIndex, put.index);
    assert.deepEqual(seen, [
      {
        index: put.index,
        services: ['web'],
        instances: [{ kind: 'upsert', service: 'web', id: 'web-1', index: put.index }],
        meshResources: ['DestinationRule/default/web', 'VirtualService/default/web'],
      },
    ]);

    // B refuses a delete that would leave A's VirtualService dangling, and deletes the rest.
    await assert.rejects(b.deleteMeshResource('DestinationRule/default/web'), (err: unknown) =>
      isMeshError(err, ERROR_CODES.VALIDATION),
    );
    const gone = await b.deleteMeshResource('VirtualService/default/web');
    assert.equal(gone.deleted, true);
    await until(() => a.meshResource('VirtualService/default/web') === undefined, 10_000, 'A saw');
    assert.equal(a.meshIndex, gone.index);
    assert.deepEqual(seen.at(-1), {
      index: gone.index,
      services: [],
      instances: [],
      meshResources: ['VirtualService/default/web'],
    });
  });

  it('checks references across agents: of an apply and a delete racing, exactly one wins', async () => {
    const base = await a.applyMesh({ resources: [dr('web', ['v1'])] });
    await until(() => b.meshIndex >= base.index, 10_000, 'B heard of the rule');
    // Both views hold the rule: each write alone would pass. The store's mesh generation makes
    // the later commit fail and be checked again against the other's result.
    const [applied, deleted] = await Promise.allSettled([
      a.applyMesh({ resources: [vs('web', 'v1')] }),
      b.deleteMeshResource('DestinationRule/default/web'),
    ]);
    const outcomes = [applied.status, deleted.status].sort();
    assert.deepEqual(outcomes, ['fulfilled', 'rejected'], JSON.stringify([applied, deleted]));
    const failed = (applied.status === 'rejected' ? applied : deleted) as PromiseRejectedResult;
    assert.ok(isMeshError(failed.reason, ERROR_CODES.VALIDATION), String(failed.reason));
    await until(() => a.meshIndex === b.meshIndex, 10_000, 'both agents at the same mesh index');
    for (const r of [a, b]) {
      assert.deepEqual(checkReferences(r.meshResources().map((s) => s.resource)), []);
    }
  });
});
