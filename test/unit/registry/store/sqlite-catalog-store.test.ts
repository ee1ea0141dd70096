/** @module SqliteCatalogStore unit tests: group commit, failed writes, corruption, durability. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { ERROR_CODES, isMeshError, type ErrorCode } from '../../../../src/core/errors.js';
import type { StoreEvent, StoreOp } from '../../../../src/registry/store/catalog-store.js';
import {
  createSqliteCatalogStore,
  type SqliteCatalogStore,
} from '../../../../src/registry/store/sqlite/sqlite-catalog-store.js';
import { testInstance } from '../../../contract/catalog-store.contract.js';

const put = (key: string, cas?: number): StoreOp => ({
  op: 'kv-put',
  key,
  value: new TextEncoder().encode(key),
  flags: 0,
  ...(cas === undefined ? {} : { cas }),
});

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
        1,
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
