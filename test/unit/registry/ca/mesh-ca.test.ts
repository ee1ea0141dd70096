/**
 * MeshCa over a shared in-memory store of reserved keys (issue 20): first writer wins when CAs
 * start together, rotation keeps the old root for the overlap and retires it once on the fake
 * clock however many CAs share the store, listeners hear each change, a corrupt state refuses
 * to start.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import { ERROR_CODES, isMeshError } from '../../../../src/core/errors.js';
import type { KvEntry } from '../../../../src/core/types.js';
import { CA_STATE_KEY } from '../../../../src/registry/ca/ca-state.js';
import { createMeshCa, type MeshCa } from '../../../../src/registry/ca/mesh-ca.js';
import type { ReservedKv } from '../../../../src/registry/reserved-kv.js';
import { FakeClock } from '../../../../src/testing/fake-clock.js';
import { makeCsr } from '../../../helpers/ca.js';

const HOUR_MS = 3_600_000;

/**
 * Reserved keys shared by several CAs, as a store shared by agents: compare-and-set on the
 * modify index, every listener told after each write (on the next turn, as a remote store's
 * events arrive after its commit answered).
 */
class SharedKv {
  readonly entries = new Map<string, KvEntry>();
  readonly writes: string[] = [];
  #index = 1;
  readonly #listeners = new Set<{ prefix: string; listener: (keys: readonly string[]) => void }>();

  view(): ReservedKv {
    return {
      get: (key) => this.entries.get(key),
      list: (prefix) => [...this.entries.values()].filter((e) => e.key.startsWith(prefix)),
      delete: () => Promise.reject(new Error('the CA deletes nothing')),
      commit: () => assert.fail('the CA commits one key at a time'),
      put: async (key, value, cas) => {
        await Promise.resolve();
        const prev = this.entries.get(key);
        if ((prev?.modifyIndex ?? 0) !== cas) return { ok: false, index: this.#index };
        const index = ++this.#index;
        this.entries.set(key, {
          key,
          value,
          flags: 0,
          createIndex: prev?.createIndex ?? index,
          modifyIndex: index,
        });
        this.writes.push(key);
        setImmediate(() => {
          for (const l of [...this.#listeners]) if (key.startsWith(l.prefix)) l.listener([key]);
        });
        return { ok: true, index };
      },
      subscribe: (prefix, listener) => {
        const l = { prefix, listener };
        this.#listeners.add(l);
        return () => this.#listeners.delete(l);
      },
    };
  }
}

const tick = () => new Promise((r) => setImmediate(r));

/** Runs the event loop until `ok`, at most `turns` turns. */
async function settle(ok: () => boolean, turns = 200): Promise<void> {
  for (let i = 0; i < turns && !ok(); i++) await tick();
  assert.ok(ok(), 'did not settle');
}

describe('MeshCa', () => {
  it('makes one root when CAs start together (first writer wins), and loads it on later starts', async () => {
    const kv = new SharedKv();
    const clock = new FakeClock(Date.now());
    const cas = [0, 1, 2].map(() => createMeshCa({ store: kv.view(), clock }));
    await Promise.all(cas.map((ca) => ca.start()));
    const ids = cas.map((ca) => ca.roots().activeRootId);
    assert.equal(new Set(ids).size, 1);
    assert.deepEqual(kv.writes, [CA_STATE_KEY]);
    const later = createMeshCa({ store: kv.view(), clock });
    await later.start();
    assert.equal(later.roots().activeRootId, ids[0]);
    assert.equal(kv.writes.length, 1);
    for (const ca of [...cas, later]) ca.close();
  });

  it('rotates: the old root stays for the overlap, then one CA retires it; every CA follows', async () => {
    const kv = new SharedKv();
    const clocks = [new FakeClock(Date.now()), new FakeClock(Date.now())];
    const cas: MeshCa[] = clocks.map((clock) =>
      createMeshCa({ store: kv.view(), clock, trustDomain: 'example.org', leafTtlMs: HOUR_MS }),
    );
    for (const ca of cas) await ca.start();
    const [a, b] = cas as [MeshCa, MeshCa];
    const heard: number[] = [];
    b.onChange(() => heard.push(b.trust().bundlePem.split('BEGIN CERTIFICATE').length - 1));
    const first = a.roots().activeRootId;

    const rotated = await a.rotate(2 * HOUR_MS);
    assert.equal(rotated.roots.length, 2);
    assert.equal(rotated.roots[1]?.id, first);
    assert.equal(
      rotated.roots[1]?.retiresAt,
      new Date((clocks[0] as FakeClock).now() + 2 * HOUR_MS).toISOString(),
    );
    await settle(() => b.roots().activeRootId === rotated.activeRootId);
    assert.deepEqual(b.trust(), {
      trustDomain: 'example.org',
      bundlePem: rotated.bundlePem,
      activeRootId: rotated.activeRootId,
    });
    // Leaves come from the new root on both.
    const csr = (await makeCsr()).pem;
    for (const ca of cas) {
      const leaf = ca.signLeaf({ csr, service: 'orders', namespace: 'default' });
      assert.equal(leaf.rootId, rotated.activeRootId);
      assert.equal(leaf.spiffeId, 'spiffe://example.org/ns/default/sa/orders');
      const notAfter = Date.parse(leaf.notAfter);
      assert.ok(Math.abs(notAfter - (Date.parse(leaf.notBefore) + HOUR_MS + 60_000)) <= 2000);
    }

    for (const clock of clocks) clock.advance(2 * HOUR_MS - 1);
    await settle(() => true, 20);
    assert.equal(b.roots().roots.length, 2, 'not before the overlap ends');
    for (const clock of clocks) clock.advance(1);
    await settle(() => a.roots().roots.length === 1 && b.roots().roots.length === 1);
    assert.deepEqual(
      a.roots().roots.map((r) => r.id),
      [rotated.activeRootId],
    );
    // The first root, the rotation, one retirement: the other CA's attempt lost its
    // compare-and-set and found nothing left to do.
    await settle(() => true, 50);
    assert.equal(kv.writes.length, 3);
    assert.deepEqual(heard, [2, 1]);
    const root = new X509Certificate(a.roots().bundlePem);
    assert.equal(root.fingerprint256.replaceAll(':', '').toLowerCase(), rotated.activeRootId);
    for (const ca of cas) ca.close();
  });

  it('keeps retiring roots across a second rotation, each on its own deadline', async () => {
    const kv = new SharedKv();
    const clock = new FakeClock(Date.now());
    const ca = createMeshCa({ store: kv.view(), clock });
    await ca.start();
    const r1 = ca.roots().activeRootId;
    await ca.rotate(3 * HOUR_MS);
    clock.advance(HOUR_MS);
    const second = await ca.rotate(HOUR_MS);
    assert.equal(second.roots.length, 3);
    assert.equal(second.roots[2]?.id, r1);
    clock.advance(HOUR_MS);
    await settle(() => ca.roots().roots.length === 2);
    assert.equal(ca.roots().roots[1]?.id, r1, 'the second root left first (its overlap ended)');
    clock.advance(HOUR_MS);
    await settle(() => ca.roots().roots.length === 1);
    ca.close();
  });

  it('refuses to start on a corrupt stored state', async () => {
    const kv = new SharedKv();
    const view = kv.view();
    await view.put(CA_STATE_KEY, Buffer.from('{"version":1}'), 0);
    const ca = createMeshCa({ store: view, clock: new FakeClock() });
    await assert.rejects(ca.start(), (err: unknown) => isMeshError(err, ERROR_CODES.STORE_CORRUPT));
    ca.close();
  });
});
