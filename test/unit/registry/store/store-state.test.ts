/** Unit tests of StoreState's mesh-resource rules (shared by the memory and sqlite stores). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  meshResourceKey,
  type MeshResource,
  type MeshResourceKey,
} from '../../../../src/protocol/mesh/resource.js';
import type { StoreOp } from '../../../../src/registry/store/catalog-store.js';
import { StoreState } from '../../../../src/registry/store/store-state.js';
import { testMeshResource } from '../../../contract/catalog-store.contract.js';

/** A few keys, a few versions of each: sequences hit creates, replaces, no-ops and deletes. */
const resourceArb: fc.Arbitrary<MeshResource> = fc
  .record({
    name: fc.constantFrom('a', 'b', 'c'),
    subsets: fc.subarray(['v1', 'v2', 'v3'], { minLength: 1 }),
  })
  .map(({ name, subsets }) => testMeshResource('DestinationRule', name, { subsets }));

const opArb: fc.Arbitrary<StoreOp> = fc.oneof(
  resourceArb.map((resource) => ({ op: 'put-mesh-resource' as const, resource })),
  fc.constantFrom('a', 'b', 'c', 'absent').map((name) => ({
    op: 'delete-mesh-resource' as const,
    key: `DestinationRule/default/${name}` as const,
  })),
);

describe('StoreState mesh resources', () => {
  it('matches a model: puts create or replace (keeping createIndex), equal puts and absent deletes change nothing', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(opArb, { minLength: 1, maxLength: 4 }), { maxLength: 25 }),
        (commits) => {
          const state = new StoreState();
          const model = new Map<
            MeshResourceKey,
            { json: string; createIndex: number; modifyIndex: number }
          >();
          for (const ops of commits) {
            const index = state.index + 1;
            let changed = 0;
            for (const op of ops) {
              if (op.op === 'put-mesh-resource') {
                const key = meshResourceKey(op.resource);
                const prev = model.get(key);
                const json = JSON.stringify(op.resource);
                if (prev?.json === json) continue;
                model.set(key, {
                  json,
                  createIndex: prev?.createIndex ?? index,
                  modifyIndex: index,
                });
                changed++;
              } else if (op.op === 'delete-mesh-resource' && model.delete(op.key)) changed++;
            }
            const events = state.apply(ops, index);
            assert.equal(events.length, changed);
            assert.ok(events.every((e) => e.index === index));
            assert.equal(
              state.index,
              changed > 0 ? index : index - 1,
              'a no-op commit takes no index',
            );
          }
          const stored = state.snapshot().meshResources;
          assert.deepEqual(
            new Map(
              stored.map((s) => [
                meshResourceKey(s.resource),
                {
                  json: JSON.stringify(s.resource),
                  createIndex: s.createIndex,
                  modifyIndex: s.modifyIndex,
                },
              ]),
            ),
            model,
          );
        },
      ),
      { seed: 18, numRuns: 300 },
    );
  });
});
