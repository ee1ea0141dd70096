/** @module Runs the CatalogStore contract against the memory and sqlite stores. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CatalogStore } from '../../src/registry/store/catalog-store.js';
import { createMemoryCatalogStore } from '../../src/registry/store/memory/memory-catalog-store.js';
import { createSqliteCatalogStore } from '../../src/registry/store/sqlite/sqlite-catalog-store.js';
import { runCatalogStoreContract } from './catalog-store.contract.js';
import { after, before, describe } from 'node:test';
import { createEtcdCatalogStore } from '../../src/registry/store/etcd/etcd-catalog-store.js';
import { startEtcd, type EtcdProcess } from '../helpers/etcd.js';

runCatalogStoreContract('memory', async () => {
  const store = createMemoryCatalogStore();
  return { store, cleanup: () => store.close() };
});

runCatalogStoreContract(
  'sqlite',
  async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'meshwork-contract-'));
    const stores: CatalogStore[] = [createSqliteCatalogStore({ dataDir })];
    return {
      store: stores[0]!,
      reopen: async () => {
        const store = createSqliteCatalogStore({ dataDir });
        stores.push(store);
        return store;
      },
      cleanup: async () => {
        for (const store of stores) await store.close();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  },
  { durable: true },
);

describe('etcd (real etcd-server)', () => {
  let etcd: EtcdProcess;
  let n = 0;
  before(async () => {
    etcd = await startEtcd();
  });
  after(async () => {
    await etcd.stop();
  });
  runCatalogStoreContract(
    'etcd',
    async () => {
      // Each test gets a fresh prefix in the one etcd, so tests do not see each other.
      const prefix = `/contract-${process.pid}-${n++}/`;
      const make = () => createEtcdCatalogStore({ endpoints: [etcd.endpoint], prefix });
      const stores: CatalogStore[] = [make()];
      return {
        store: stores[0]!,
        reopen: async () => {
          const store = make();
          stores.push(store);
          return store;
        },
        cleanup: async () => {
          for (const store of stores) await store.close();
        },
      };
    },
    { durable: true },
  );
});
