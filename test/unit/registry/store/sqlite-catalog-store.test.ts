/** @module SqliteCatalogStore unit tests: group commit, failed writes, corruption, durability. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { Registry as PromRegistry } from 'prom-client';
import { ERROR_CODES, isMeshError, type ErrorCode } from '../../../../src/core/errors.js';
import type { Logger } from '../../../../src/core/logger.js';
import type { StoreEvent, StoreOp } from '../../../../src/registry/store/catalog-store.js';
import {
  createSqliteCatalogStore,
  type SqliteCatalogStore,
  type SqliteCatalogStoreOptions,
} from '../../../../src/registry/store/sqlite/sqlite-catalog-store.js';
import { MESH_KINDS, type MeshResource } from '../../../../src/protocol/mesh/resource.js';
import { SCHEMA_VERSION } from '../../../../src/registry/store/sqlite/sqlite-catalog-schema.js';
import { testInstance, testMeshResource } from '../../../contract/catalog-store.contract.js';
import { until } from '../../../helpers/until.js';

const put = (key: string, cas?: number): StoreOp => ({
  op: 'kv-put',
  key,
  value: new TextEncoder().encode(key),
  flags: 0,
  ...(cas === undefined ? {} : { cas }),
});

/** Orders resources by key (`Kind/namespace/name`). */
const byKey = (a: unknown, b: unknown): number => {
  const key = (r: unknown): string => {
    const { kind, metadata } = r as MeshResource;
    return `${kind}/${metadata.namespace}/${metadata.name}`;
  };
  return key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;
};

const rejectsWith =
  (code: ErrorCode, text?: string) =>
  (err: unknown): boolean => {
    assert.ok(isMeshError(err, code), String(err));
    if (text !== undefined) assert.ok(err.message.includes(text), err.message);
    return true;
  };

describe('SqliteCatalogStore', () => {
  let root: string;
  let dataDir: string;
  const stores: SqliteCatalogStore[] = [];
  const newStore = (): SqliteCatalogStore => {
    const store = createSqliteCatalogStore({ dataDir });
    stores.push(store);
    return store;
  };

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'meshwork-sqlite-'));
    dataDir = root;
  });

  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('writes commits issued in the same tick in one transaction', async () => {
    const store = newStore();
    await store.open();
    const before = store.transactionsCommitted;
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => store.commit([put(`k/${i}`)])),
    );
    assert.equal(new Set(results.map((r) => r.index)).size, 200);
    assert.equal(store.transactionsCommitted - before, 1);
  });

  it('writes nothing for a batch whose commits change nothing or fail their cas', async () => {
    const store = newStore();
    await store.open();
    const first = await store.commit([put('taken')]);
    const before = store.transactionsCommitted;
    const results = await Promise.all([
      store.commit([{ op: 'delete-instance', id: 'absent' }]),
      store.commit([put('taken', 0)]),
    ]);
    assert.deepEqual(results, [
      { ok: true, index: first.index },
      { ok: false, index: first.index },
    ]);
    assert.equal(store.transactionsCommitted, before);
  });

  it('decides the commits of one batch in call order, each with its own cas', async () => {
    const store = newStore();
    const { index } = await store.open();
    await store.commit([put('taken')]);
    const base = index + 1;
    const results = await Promise.all([
      store.commit([put('a')]),
      store.commit([put('b'), put('taken', 0)]),
      store.commit([put('c')]),
      // Sees the first commit of its own batch.
      store.commit([put('a', base + 1)]),
    ]);
    assert.deepEqual(results, [
      { ok: true, index: base + 1 },
      { ok: false, index: base + 1 },
      { ok: true, index: base + 2 },
      { ok: true, index: base + 3 },
    ]);
  });

  it('rejects every commit of a batch whose write fails, and rolls the batch back', async () => {
    const store = newStore();
    await store.open();
    const events: StoreEvent[] = [];
    store.subscribe((batch) => events.push(...batch));
    const before = await store.commit([put('before')]);
    events.length = 0;

    // JSON.stringify throws on a bigint inside the transaction: a stand-in for a failing disk.
    const poison = testInstance('bad', { port: 1n as unknown as number });
    const batch = await Promise.allSettled([
      store.commit([put('x')]),
      store.commit([{ op: 'put-instance', instance: poison }]),
      store.commit([put('y')]),
    ]);
    for (const outcome of batch) {
      assert.equal(outcome.status, 'rejected');
      if (outcome.status === 'rejected') {
        assert.ok(isMeshError(outcome.reason, ERROR_CODES.STORE_UNAVAILABLE));
        assert.equal(outcome.reason.retryable, true);
      }
    }
    assert.deepEqual(events, []);

    // The mirror forgot the batch: 'x' is absent and the index resumes where it was.
    const after = await store.commit([put('x', 0)]);
    assert.deepEqual(after, { ok: true, index: before.index + 1 });
    await store.close();
    const snapshot = await newStore().open();
    assert.deepEqual(snapshot.kv.map((e) => e.key).sort(), ['before', 'x']);
    assert.deepEqual(snapshot.instances, []);
  });

  it('writes the commits still queued when close() is called', async () => {
    const store = newStore();
    await store.open();
    const pending = store.commit([put('late')]);
    await store.close();
    assert.equal((await pending).ok, true);
    await assert.rejects(store.commit([put('later')]), rejectsWith(ERROR_CODES.STORE_UNAVAILABLE));
    const snapshot = await newStore().open();
    assert.deepEqual(
      snapshot.kv.map((e) => e.key),
      ['late'],
    );
  });

  it('creates the data directory and a WAL-mode catalog.db at index 1', async () => {
    dataDir = join(dataDir, 'nested', 'data');
    const store = newStore();
    assert.equal((await store.open()).index, 1);
    await store.close();
    assert.equal(store.file, join(dataDir, 'catalog.db'));
    const db = new Database(store.file, { readonly: true });
    try {
      assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
      assert.equal(
        db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").pluck().get(),
        SCHEMA_VERSION,
      );
    } finally {
      db.close();
    }
  });

  it('keeps everything committed across close and open', async () => {
    const store = newStore();
    await store.open();
    await store.commit([{ op: 'put-instance', instance: testInstance('web-1') }]);
    const last = await store.commit([put('k')]);
    await store.close();

    const snapshot = await newStore().open();
    assert.equal(snapshot.index, last.index);
    assert.deepEqual(
      snapshot.instances.map((s) => s.instance),
      [testInstance('web-1')],
    );
    assert.deepEqual(
      snapshot.kv.map((e) => [e.key, e.modifyIndex]),
      [['k', last.index]],
    );
  });

  it('keeps every resolved commit when the process is killed without close()', async () => {
    const storeUrl = pathToFileURL(
      resolve('src/registry/store/sqlite/sqlite-catalog-store.ts'),
    ).href;
    const script = join(dataDir, 'crash.mts');
    writeFileSync(
      script,
      `import { writeFileSync } from 'node:fs';
import { createSqliteCatalogStore } from ${JSON.stringify(storeUrl)};
const dataDir = process.argv[2];
const store = createSqliteCatalogStore({ dataDir });
await store.open();
const put = (key) => [{ op: 'kv-put', key, value: new Uint8Array([1]), flags: 0 }];
await Promise.all(Array.from({ length: 100 }, (_, i) => store.commit(put('burst/' + i))));
let last;
for (let i = 0; i < 20; i++) last = await store.commit(put('seq/' + i));
writeFileSync(dataDir + '/last-index', String(last.index));
process.kill(process.pid, 'SIGKILL');
`,
    );
    const child = spawnSync(process.execPath, ['--import', 'tsx', script, dataDir], {
      encoding: 'utf8',
    });
    assert.equal(child.signal, 'SIGKILL', child.stderr);
    const lastIndex = Number(readFileSync(join(dataDir, 'last-index'), 'utf8'));
    assert.ok(existsSync(join(dataDir, 'catalog.db-wal')), 'the crash left a WAL to recover');

    const snapshot = await newStore().open();
    assert.equal(snapshot.index, lastIndex);
    assert.equal(snapshot.kv.length, 120);
  });

  it('rejects open() with MESHWORK_ERR_STORE_CORRUPT naming a garbage catalog.db', async () => {
    writeFileSync(join(dataDir, 'catalog.db'), 'this is not a database\n'.repeat(200));
    const store = newStore();
    await assert.rejects(store.open(), rejectsWith(ERROR_CODES.STORE_CORRUPT, store.file));
  });

  it('rejects open() with MESHWORK_ERR_STORE_CORRUPT for an unknown schema version', async () => {
    const store = newStore();
    await store.open();
    await store.close();
    const db = new Database(store.file);
    db.prepare("UPDATE meta SET value = 99 WHERE key = 'schema_version'").run();
    db.close();
    const reopened = newStore();
    await assert.rejects(reopened.open(), rejectsWith(ERROR_CODES.STORE_CORRUPT, 'version 99'));
  });

  it('opens a catalog.db of schema version 1 (before mesh resources) and migrates it', async () => {
    // A file as version 1 left it (today's tables without mesh_resources, sessions and the KV
    // lock columns), with one instance and one key at index 3.
    const fresh = newStore();
    await fresh.open();
    await fresh.close();
    const old = new Database(fresh.file);
    old.exec(
      'DROP TABLE mesh_resources; DROP TABLE sessions; ALTER TABLE kv DROP COLUMN session; ' +
        "ALTER TABLE kv DROP COLUMN lock_index; UPDATE meta SET value = 1 WHERE key = 'schema_version'",
    );
    old
      .prepare('INSERT INTO instances VALUES (?, ?, ?, ?, ?)')
      .run('web-1', 'web', JSON.stringify(testInstance('web-1')), 2, 2);
    old.prepare('INSERT INTO kv VALUES (?, ?, ?, ?, ?)').run('k', Buffer.from('v'), 0, 3, 3);
    old.prepare("UPDATE meta SET value = 3 WHERE key = 'index'").run();
    old.close();

    const store = newStore();
    const snapshot = await store.open();
    assert.equal(snapshot.index, 3);
    assert.deepEqual(
      snapshot.instances.map((s) => s.instance),
      [testInstance('web-1')],
    );
    assert.deepEqual(
      snapshot.kv.map((e) => e.key),
      ['k'],
    );
    assert.deepEqual(snapshot.meshResources, []);
    assert.deepEqual(snapshot.sessions, []);
    const resource = testMeshResource('DestinationRule', 'reviews');
    const put = await store.commit([{ op: 'put-mesh-resource', resource }]);
    assert.equal(put.index, 4);
    await store.close();

    const again = newStore();
    const reopened = await again.open();
    assert.deepEqual(reopened.meshResources, [{ resource, createIndex: 4, modifyIndex: 4 }]);
    assert.equal(reopened.instances.length, 1);
    await again.close();
    const db = new Database(join(dataDir, 'catalog.db'), { readonly: true });
    try {
      const version = db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").pluck();
      assert.equal(version.get(), SCHEMA_VERSION);
    } finally {
      db.close();
    }
  });

  it('reads back every mesh resource it wrote, whatever its names, labels and spec', async () => {
    const text = fc.string({ unit: 'binary', minLength: 1, maxLength: 12 });
    const resourceArb = fc.record({
      apiVersion: text,
      kind: fc.constantFrom(...MESH_KINDS),
      metadata: fc.record(
        {
          name: text,
          namespace: text,
          labels: fc.dictionary(text, text, { maxKeys: 3 }),
          annotations: fc.dictionary(text, text, { maxKeys: 3 }),
        },
        { requiredKeys: ['name', 'namespace'] },
      ),
      spec: fc.dictionary(text, fc.jsonValue({ maxDepth: 3 }), { maxKeys: 4 }),
    }) as fc.Arbitrary<MeshResource>;
    await fc.assert(
      fc.asyncProperty(fc.array(resourceArb, { minLength: 1, maxLength: 5 }), async (resources) => {
        const dir = mkdtempSync(join(root, 'prop-'));
        const store = createSqliteCatalogStore({ dataDir: dir });
        await store.open();
        const done = await store.commit(
          resources.map((resource) => ({ op: 'put-mesh-resource', resource })),
        );
        await store.close();
        const again = createSqliteCatalogStore({ dataDir: dir });
        try {
          const snapshot = await again.open();
          assert.equal(snapshot.index, done.index);
          // The last put of a key wins; the stored form is JSON.
          const expected = new Map(
            resources.map((r) => [`${r.kind}/${r.metadata.namespace}/${r.metadata.name}`, r]),
          );
          assert.deepEqual(
            snapshot.meshResources.map((s) => s.resource).sort(byKey),
            [...expected.values()].map((r) => JSON.parse(JSON.stringify(r)) as unknown).sort(byKey),
          );
        } finally {
          await again.close();
        }
      }),
      { seed: 18, numRuns: 15 },
    );
  });

  it('rejects open() with STORE_UNAVAILABLE while another store has the file', async () => {
    await newStore().open();
    const second = newStore();
    await assert.rejects(
      second.open(),
      rejectsWith(ERROR_CODES.STORE_UNAVAILABLE, 'in use by another process'),
    );
  });

  it('rejects commits before open() with MESHWORK_ERR_STORE_UNAVAILABLE', async () => {
    await assert.rejects(newStore().commit([put('k')]), rejectsWith(ERROR_CODES.STORE_UNAVAILABLE));
  });
});

/** Records what a component logs, by level, for assertions on what is logged (and how often). */
function recordingLogger(): { logger: Logger; lines: { level: string; msg: string }[] } {
  const lines: { level: string; msg: string }[] = [];
  const at =
    (level: string) =>
    (_fields: unknown, msg: string): void => {
      lines.push({ level, msg });
    };
  const logger: Logger = {
    error: at('error'),
    warn: at('warn'),
    info: at('info'),
    debug: at('debug'),
    child: () => logger,
  };
  return { logger, lines };
}

// Issue 16: a damaged store (0-byte, truncated or replaced catalog.db, a damaged WAL) started
// silently empty or behind; catalog.index names the last durable index and open() checks it.
describe('SqliteCatalogStore durable index marker (catalog.index)', () => {
  let dataDir: string;
  const stores: SqliteCatalogStore[] = [];
  const newStore = (options: Partial<SqliteCatalogStoreOptions> = {}): SqliteCatalogStore => {
    const store = createSqliteCatalogStore({ dataDir, ...options });
    stores.push(store);
    return store;
  };
  const markerOf = (): string => readFileSync(join(dataDir, 'catalog.index'), 'utf8');
  /** A store with a few commits, closed cleanly; answers the last index. */
  const filled = async (): Promise<number> => {
    const store = newStore();
    await store.open();
    await store.commit([{ op: 'put-instance', instance: testInstance('web-1') }]);
    let last = 0;
    for (let i = 0; i < 5; i++) last = (await store.commit([put(`k/${i}`)])).index;
    await store.close();
    return last;
  };
  const refusedBehind =
    (storeIndex: number, markerIndex: number) =>
    (err: unknown): boolean => {
      assert.ok(isMeshError(err, ERROR_CODES.STORE_CORRUPT), String(err));
      assert.deepEqual(err.details, {
        file: join(dataDir, 'catalog.db'),
        markerFile: join(dataDir, 'catalog.index'),
        storeIndex,
        markerIndex,
      });
      assert.match(err.message, /catalog\.index records index \d+ as durable/);
      assert.match(err.message, /--accept-data-loss/);
      return true;
    };

  beforeEach(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'meshwork-marker-'));
  });

  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('starts a fresh data directory at index 1 and writes catalog.index', async () => {
    assert.equal((await newStore().open()).index, 1);
    assert.equal(markerOf(), '1\n');
  });

  it('writes the last durable index to catalog.index on close', async () => {
    const last = await filled();
    assert.equal(markerOf(), `${last}\n`);
    assert.equal((await newStore().open()).index, last);
  });

  it('rewrites catalog.index at most once per interval while commits arrive', async () => {
    const store = newStore({ markerIntervalMs: 3_600_000 });
    await store.open();
    const first = await store.commit([put('a')]);
    // The first write after a quiet spell goes at once; the next waits for the interval.
    await until(() => markerOf() === `${first.index}\n`, 5_000, 'marker at the first commit');
    const later = await store.commit([put('b')]);
    await store.commit([put('c')]);
    assert.equal(markerOf(), `${first.index}\n`);
    await store.close();
    assert.equal(markerOf(), `${later.index + 1}\n`);
  });

  it('refuses a catalog.db truncated to 0 bytes behind catalog.index', async () => {
    const last = await filled();
    truncateSync(join(dataDir, 'catalog.db'), 0);
    await assert.rejects(newStore().open(), refusedBehind(1, last));
    // Refusing changed nothing that matters: the next start refuses too.
    await assert.rejects(newStore().open(), refusedBehind(1, last));
  });

  it('refuses a missing catalog.db beside catalog.index, and creates none', async () => {
    const last = await filled();
    rmSync(join(dataDir, 'catalog.db'));
    await assert.rejects(newStore().open(), refusedBehind(1, last));
    assert.equal(existsSync(join(dataDir, 'catalog.db')), false);
  });

  it('refuses a truncated, unreadable catalog.db', async () => {
    const store = newStore();
    await store.open();
    await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        store.commit([
          { op: 'kv-put', key: `big/${i}`, value: new Uint8Array(500), flags: 0 } as const,
        ]),
      ),
    );
    await store.close();
    truncateSync(join(dataDir, 'catalog.db'), 40_960);
    await assert.rejects(newStore().open(), rejectsWith(ERROR_CODES.STORE_CORRUPT, 'unreadable'));
  });

  it('with acceptDataLoss, moves an unreadable catalog.db aside and continues from the marker', async () => {
    const last = await filled();
    writeFileSync(join(dataDir, 'catalog.db'), 'not a database\n'.repeat(500));
    const { logger, lines } = recordingLogger();
    const metrics = new PromRegistry();
    const store = newStore({ acceptDataLoss: true, logger, metrics });
    const snapshot = await store.open();
    assert.equal(snapshot.index, last);
    assert.deepEqual(snapshot.instances, []);
    assert.equal((await store.commit([put('after')])).index, last + 1);
    assert.ok(
      readdirSync(dataDir).some((f) => /^catalog\.db\.damaged-\d+$/.test(f)),
      'the damaged file is kept',
    );
    assert.match(await metrics.metrics(), /^meshwork_store_data_loss_accepted 1$/m);
    assert.deepEqual(
      lines.filter((l) => l.level === 'warn').map((l) => l.msg),
      [
        'unreadable catalog.db moved aside (accept data loss); starting a new one',
        'catalog store behind its durable index marker: starting without the lost commits (accept data loss)',
      ],
    );
    await store.close();
    // The marker now matches the new file: a plain restart works.
    assert.equal((await newStore().open()).index, last + 1);
  });

  it('with acceptDataLoss, starts a store behind its marker at the marker index', async () => {
    const last = await filled();
    truncateSync(join(dataDir, 'catalog.db'), 0);
    const snapshot = await newStore({ acceptDataLoss: true }).open();
    // Indexes never go back, so clients that saw the lost ones are not confused.
    assert.equal(snapshot.index, last);
    assert.deepEqual(snapshot.kv, []);
  });

  it('starts a data directory from before catalog.index and writes the marker', async () => {
    const last = await filled();
    rmSync(join(dataDir, 'catalog.index'));
    assert.equal((await newStore().open()).index, last);
    assert.equal(markerOf(), `${last}\n`);
  });

  it('refuses an unreadable catalog.index unless data loss is accepted', async () => {
    const last = await filled();
    writeFileSync(join(dataDir, 'catalog.index'), 'garbage');
    await assert.rejects(
      newStore().open(),
      rejectsWith(ERROR_CODES.STORE_CORRUPT, 'catalog.index does not hold a catalog index'),
    );
    assert.equal((await newStore({ acceptDataLoss: true }).open()).index, last);
    assert.equal(markerOf(), `${last}\n`);
  });
});
