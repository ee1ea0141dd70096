/**
 * @module The AclStore contract (version-checked replace, durable where it says so) and the
 * AclSystem over it, run against the memory, sqlite and etcd (real etcd-server) stores.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  createMemoryAclStore,
  createSqliteAclStore,
  type AclDocument,
  type AclStore,
} from '../../src/registry/acl/acl-store.js';
import { createEtcdAclStore } from '../../src/registry/acl/etcd-acl-store.js';
import { AclOpError, AclSystem } from '../../src/registry/acl/acl-system.js';
import { startEtcd, type EtcdProcess } from '../helpers/etcd.js';

interface Harness {
  readonly store: AclStore;
  /** Another handle on the same data (a restart, or a second agent). */
  reopen?: () => AclStore;
  cleanup(): Promise<void>;
}

const doc = (index: number): AclDocument => ({
  index,
  bootstrapped: false,
  policies: [],
  tokens: [],
});

function runAclStoreContract(
  name: string,
  make: () => Promise<Harness>,
  opts: { shared?: boolean } = {},
): void {
  describe(`AclStore contract: ${name}`, () => {
    it('answers no document before the first save, then the saved one', async () => {
      const h = await make();
      try {
        assert.deepEqual(await h.store.load(), { doc: undefined, version: 0 });
        assert.equal(await h.store.save(doc(2), 0), true);
        const loaded = await h.store.load();
        assert.deepEqual(loaded.doc, doc(2));
        assert.ok(loaded.version > 0);
      } finally {
        await h.cleanup();
      }
    });

    it('refuses a save against a stale version, taking the first of two writers', async () => {
      const h = await make();
      try {
        assert.equal(await h.store.save(doc(2), 0), true);
        const { version } = await h.store.load();
        assert.equal(await h.store.save(doc(3), version), true);
        assert.equal(await h.store.save(doc(4), version), false);
        assert.equal(await h.store.save(doc(5), 0), false);
        assert.deepEqual((await h.store.load()).doc, doc(3));
      } finally {
        await h.cleanup();
      }
    });

    it('keeps tokens across a reopen and bootstraps once across handles', async () => {
      const h = await make();
      if (h.reopen === undefined) {
        await h.cleanup();
        return;
      }
      try {
        const first = new AclSystem({
          store: h.store,
          enabled: true,
          defaultPolicy: 'deny',
          shared: opts.shared ?? false,
        });
        await first.start();
        const boot = await first.bootstrap();
        const second = new AclSystem({
          store: h.reopen(),
          enabled: true,
          defaultPolicy: 'deny',
          shared: opts.shared ?? false,
        });
        await second.start();
        await assert.rejects(
          second.bootstrap(),
          (e: unknown) => e instanceof AclOpError && e.kind === 'bootstrap-done',
        );
        const auth = await second.resolve(boot.secretId);
        assert.equal(auth.accessorId, boot.accessorId);
        assert.equal(auth.check('acl', '', 'write').allowed, true);
        await second.close();
      } finally {
        await h.cleanup();
      }
    });
  });
}

runAclStoreContract('memory', async () => {
  const store = createMemoryAclStore();
  return { store, cleanup: () => store.close() };
});

runAclStoreContract('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshwork-acl-'));
  const stores: AclStore[] = [createSqliteAclStore(dir)];
  return {
    store: stores[0]!,
    reopen: () => {
      const s = createSqliteAclStore(dir);
      stores.push(s);
      return s;
    },
    cleanup: async () => {
      for (const s of stores) await s.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('etcd (real etcd-server)', () => {
  let etcd: EtcdProcess;
  let n = 0;
  before(async () => {
    etcd = await startEtcd();
  });
  after(async () => {
    await etcd.stop();
  });
  runAclStoreContract(
    'etcd',
    async () => {
      const prefix = `/acl-contract-${process.pid}-${n++}/`;
      const stores: AclStore[] = [createEtcdAclStore({ endpoints: [etcd.endpoint], prefix })];
      return {
        store: stores[0]!,
        reopen: () => {
          const s = createEtcdAclStore({ endpoints: [etcd.endpoint], prefix });
          stores.push(s);
          return s;
        },
        cleanup: async () => {
          for (const s of stores) await s.close().catch(() => undefined);
        },
      };
    },
    { shared: true },
  );
});
