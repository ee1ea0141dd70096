/** Unit tests of the registry's transactions (issue 22) on the memory store. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRegistry } from '../../../src/registry/registry.js';
import type { CatalogStore, StoreOp } from '../../../src/registry/store/catalog-store.js';
import { createMemoryCatalogStore } from '../../../src/registry/store/memory/memory-catalog-store.js';
import { FakeClock } from '../../../src/testing/fake-clock.js';
import { registration } from '../../helpers/registry.js';

const bytes = (s: string) => Buffer.from(s);

/** A memory store that runs `before` once, just before the next commit that writes `key`. */
function storeWithInterloper(key: string, before: (store: CatalogStore) => Promise<void>) {
  const store = createMemoryCatalogStore();
  const commit = store.commit.bind(store);
  let armed = false;
  const commits: (readonly StoreOp[])[] = [];
  store.commit = async (ops) => {
    commits.push(ops);
    if (armed && ops.some((o) => o.op === 'kv-put' && o.key === key)) {
      armed = false;
      await before(store);
    }
    return commit(ops);
  };
  return { store, commits, arm: () => (armed = true) };
}

async function startRegistry(store: CatalogStore) {
  const registry = createRegistry({ store, nodeName: 'n1', clock: new FakeClock() });
  await registry.start();
  return registry;
}

describe('Registry.txn', () => {
  it('applies every write of a txn at one index, reads seeing earlier writes', async () => {
    const registry = await startRegistry(createMemoryCatalogStore());
    const r = await registry.txn([
      { type: 'kv', verb: 'set', key: 'a', value: bytes('1') },
      { type: 'kv', verb: 'get', key: 'a' },
      { type: 'instance', verb: 'set', registration: registration('web', 'web-1') },
      { type: 'kv', verb: 'delete', key: 'missing' },
    ]);
    assert.equal(r.ok, true);
    if (!r.ok) return;
    assert.deepEqual(
      r.results.map((x) => [x.opIndex, x.type]),
      [
        [0, 'kv'],
        [1, 'kv'],
        [2, 'instance'],
      ],
    );
    const [set, get] = r.results;
    assert.equal(set?.type === 'kv' && set.entry.value.length, 0, 'a set answers no value');
    assert.equal(get?.type === 'kv' && Buffer.from(get.entry.value).toString(), '1');
    assert.equal(registry.kvGet('a')?.modifyIndex, r.index);
    assert.equal(registry.instance('web-1')?.modifyIndex, r.index);
    await registry.close();
  });

  it('applies nothing when one op fails, and names every failed op', async () => {
    const registry = await startRegistry(createMemoryCatalogStore());
    const before = registry.index;
    const r = await registry.txn([
      { type: 'kv', verb: 'set', key: 'a', value: bytes('1') },
      { type: 'kv', verb: 'cas', key: 'b', value: bytes('2'), index: 5 },
      { type: 'instance', verb: 'get', id: 'nope' },
    ]);
    assert.deepEqual(r, {
      ok: false,
      errors: [
        { opIndex: 1, what: 'failed to set key "b", index is stale' },
        { opIndex: 2, what: 'service "nope" doesn\'t exist' },
      ],
    });
    assert.equal(registry.kvGet('a'), undefined);
    assert.equal(registry.index, before);
    await registry.close();
  });

  it('plans again when a key it checked moved before its commit, and then fails the check', async () => {
    const { store, commits, arm } = storeWithInterloper('x', async (s) => {
      await s.commit([{ op: 'kv-put', key: 'guard', value: bytes('moved'), flags: 0 }]);
    });
    const registry = await startRegistry(store);
    const { index } = await registry.kvPut('guard', bytes('v'));
    arm();
    const r = await registry.txn([
      { type: 'kv', verb: 'check-index', key: 'guard', index },
      { type: 'kv', verb: 'set', key: 'x', value: bytes('must not land') },
    ]);
    // The first commit carried a kv-check of guard at `index`; it failed (the interloper moved
    // guard), and the second planning saw the new index.
    assert.equal(r.ok, false);
    assert.match(!r.ok ? (r.errors[0]?.what ?? '') : '', /^current modify index \d+ != \d+$/);
    assert.equal(registry.kvGet('x'), undefined);
    const txnCommits = commits.filter((ops) => ops.some((o) => o.op === 'kv-check'));
    assert.deepEqual(txnCommits[0]?.[0], { op: 'kv-check', key: 'guard', index });
    await registry.close();
  });
});
