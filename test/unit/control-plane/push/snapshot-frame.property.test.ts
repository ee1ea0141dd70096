/** The push frame's bytes: what a proxy parses is the snapshot given, for any snapshot. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { PING_FRAME, snapshotFrame } from '../../../../src/control-plane/push/snapshot-frame.js';
import type { MeshSnapshot, SnapshotRoute } from '../../../../src/protocol/mesh/snapshot.js';
import { snapshotOf } from '../../../helpers/mesh-push.js';

const SEED = 18;
const proxy = { id: 'p', kind: 'sidecar', name: 'orders', namespace: 'default' } as const;
const parse = (s: MeshSnapshot): unknown => JSON.parse(Buffer.concat(snapshotFrame(s)).toString());

describe('snapshotFrame', () => {
  it('encodes any snapshot as one line that parses back to it', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1 }),
        fc.nat(),
        fc.record({ id: fc.string(), name: fc.string(), upstreams: fc.array(fc.string()) }),
        fc.array(fc.string()),
        fc.option(fc.jsonValue(), { nil: undefined }),
        (version, index, who, routeNames, extra) => {
          const base = snapshotOf({ ...proxy, ...who }, version);
          const s: MeshSnapshot = {
            ...base,
            index,
            routes: routeNames.map((name) => ({ ...(base.routes[0] as SnapshotRoute), name })),
            ...(extra === undefined ? {} : { inbound: extra as never }),
          };
          const bytes = Buffer.concat(snapshotFrame(s)).toString();
          assert.equal(bytes.indexOf('\n'), bytes.length - 1, 'one line');
          assert.deepEqual(
            JSON.parse(bytes),
            JSON.parse(JSON.stringify({ type: 'snapshot', snapshot: s })),
          );
        },
      ),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('shares the content of copies that differ only in their proxy, never across versions', () => {
    const compiled = snapshotOf(proxy, 'v1');
    const a = { ...compiled, proxy: { ...proxy, id: 'a' } };
    const b = { ...compiled, proxy: { ...proxy, id: 'b' } };
    assert.equal(snapshotFrame(a)[1], snapshotFrame(b)[1]);
    assert.deepEqual(parse(b), { type: 'snapshot', snapshot: b });
    // Same arrays, another version or index (a compile that reused them): encoded again.
    const next = { ...compiled, version: 'v2', routes: [] };
    assert.deepEqual(parse(next), { type: 'snapshot', snapshot: next });
    const reindexed = { ...next, index: 9 };
    assert.deepEqual(parse(reindexed), { type: 'snapshot', snapshot: reindexed });
    assert.deepEqual(JSON.parse(PING_FRAME.toString()), { type: 'ping' });
  });
});
