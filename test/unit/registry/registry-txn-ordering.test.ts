/**
 * @module A txn's instance writes take their place in the per-instance write queue (InstanceWriter)
 * like every other write of an instance, on the sqlite store, whose group commit applies a commit
 * one tick after it is issued: a read-modify-write of the instance (maintenance, checks) issued
 * while a txn's write is pending must build on the txn's result, not on the view before it, and
 * a txn issued while such a write is pending must check its `cas` against that write's result.
 * Declarative apply (config files, orchestrator sync) and a critical check's deregistration likewise.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { createRegistry, type Registry } from '../../../src/registry/registry.js';
import {
  createSqliteCatalogStore,
  type SqliteCatalogStore,
} from '../../../src/registry/store/sqlite/sqlite-catalog-store.js';
import { FakeClock } from '../../../src/testing/fake-clock.js';
import { registration } from '../../helpers/registry.js';
import { until } from '../../helpers/until.js';

describe('Registry.txn and Registry.apply against queued instance writes (sqlite group commit)', () => {
  let dir: string;
  let registry: Registry;
  let store: SqliteCatalogStore;
  let clock: FakeClock;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshwork-txn-order-'));
    store = createSqliteCatalogStore({ dataDir: dir });
    clock = new FakeClock();
    registry = createRegistry({ store, nodeName: 'n1', clock });
    await registry.start();
    await registry.register(registration('web', 'web-1'));
  });

  afterEach(async () => {
    await registry.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a maintenance change issued after a txn set keeps the txn’s address', async () => {
    const moved = { ...registration('web', 'web-1'), address: '10.0.0.9' };
    // Issued in the same tick: the txn's commit is queued, not yet applied, when the maintenance
    // change reads the instance.
    const [txn, maintenance] = await Promise.all([
      registry.txn([{ type: 'instance', verb: 'set', registration: moved }]),
      registry.setMaintenance('web-1', true, 'patching'),
    ]);
    assert.equal(txn.ok, true);
    assert.ok(maintenance.index > (txn.ok ? txn.index : Infinity), 'maintenance after the txn');
    const now = registry.instanceDefinition('web-1');
    assert.equal(now?.address, '10.0.0.9', 'the acknowledged txn write is kept');
    assert.equal(now?.maintenance.enabled, true, 'and so is the maintenance change');
  });

  it('a txn cas issued while a maintenance change is queued fails on the stale index', async () => {
    const before = registry.instance('web-1')?.modifyIndex ?? 0;
    const moved = { ...registration('web', 'web-1'), address: '10.0.0.9' };
    const [maintenance, txn] = await Promise.all([
      registry.setMaintenance('web-1', true, 'patching'),
      registry.txn([{ type: 'instance', verb: 'cas', index: before, registration: moved }]),
    ]);
    assert.ok(maintenance.index > before);
    // The maintenance change moved the index the cas names: Consul's cas then fails.
    assert.equal(txn.ok, false);
    const now = registry.instanceDefinition('web-1');
    assert.equal(now?.address, '10.0.0.1');
    assert.equal(now?.maintenance.enabled, true);
  });

  it('a maintenance change issued after an apply keeps the applied address', async () => {
    await registry.apply('files', [registration('api', 'api-1')]);
    const moved = { ...registration('api', 'api-1'), address: '10.0.0.9' };
    const [applied, maintenance] = await Promise.all([
      registry.apply('files', [moved]),
      registry.setMaintenance('api-1', true, 'patching'),
    ]);
    assert.deepEqual(applied.updated, ['api-1']);
    assert.ok(maintenance.index > applied.index);
    const now = registry.instanceDefinition('api-1');
    assert.equal(now?.address, '10.0.0.9', 'the acknowledged apply is kept');
    assert.equal(now?.maintenance.enabled, true);
  });

  it('an instance an apply removes is not brought back by a maintenance change queued behind it', async () => {
    await registry.apply('files', [registration('api', 'api-1')]);
    const [applied, maintenance] = await Promise.allSettled([
      registry.apply('files', []),
      registry.setMaintenance('api-1', true, 'patching'),
    ]);
    assert.equal(applied.status === 'fulfilled' && applied.value.deleted[0], 'api-1');
    assert.equal(maintenance.status, 'rejected', 'the instance is gone by then');
    assert.equal(registry.instanceDefinition('api-1'), undefined);
  });

  it('an instance its critical check deregisters is not brought back by a maintenance change', async () => {
    await registry.register({
      ...registration('web', 'web-2'),
      checks: [{ id: 'ttl', ttlMs: 10_000, deregisterCriticalAfterMs: 60_000 }],
    });
    clock.advance(10_000); // the TTL lapses: critical
    await until(() => registry.instance('web-2')?.status === 'critical', 5_000, 'critical');
    // The moment the health manager issues the deregistration (critical that long), while
    // the store holds it queued, a maintenance change of the instance is issued.
    let maintenance: Promise<unknown> | undefined;
    const commit = store.commit.bind(store);
    store.commit = (ops) => {
      const r = commit(ops);
      if (maintenance === undefined && ops.some((o) => o.op === 'delete-instance')) {
        maintenance = registry.setMaintenance('web-2', true, 'patching');
        maintenance.catch(() => undefined); // asserted below
      }
      return r;
    };
    clock.advance(60_000);
    await until(() => maintenance !== undefined, 5_000, 'the deregistration issued');
    await assert.rejects(maintenance as Promise<unknown>, /not found/);
    assert.equal(registry.instanceDefinition('web-2'), undefined);
  });
});
