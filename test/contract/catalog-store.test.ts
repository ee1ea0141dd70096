/** @module Runs the CatalogStore contract against the memory and sqlite stores. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CatalogStore } from '../../src/registry/store/catalog-store.js';
import { createMemoryCatalogStore } from '../../src/registry/store/memory/memory-catalog-store.js';
import { createSqliteCatalogStore } from '../../src/registry/store/sqlite/sqlite-catalog-store.js';
import { runCatalogStoreContract } from './catalog-store.contract.js';

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
