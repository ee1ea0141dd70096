/** Property tests of compileSnapshot: deterministic, blind to input order, and its deps sound. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { InstanceDto } from '../../../src/protocol/api-types.js';
import type { StoredMeshResource } from '../../../src/protocol/mesh/resource.js';
import type { ProxyIdentity } from '../../../src/protocol/mesh/snapshot.js';
import { staticCompileCatalog } from '../../../src/control-plane/catalog-endpoints.js';
import { compileSnapshot } from '../../../src/control-plane/compile-snapshot.js';
import { resourceTouches } from '../../../src/control-plane/mesh-deps.js';
import { indexMeshResources } from '../../../src/control-plane/mesh-index.js';
import { fakeInstance } from '../../../src/testing/fake-mesh-catalog.js';
import { changeArb, instanceArb, proxyArb, storedArb } from './mesh-arbitraries.js';

const SEED = 18;
const compile = (
  proxy: ProxyIdentity,
  instances: readonly InstanceDto[],
  resources: readonly StoredMeshResource[],
) =>
  compileSnapshot({
    proxy,
    index: 1,
    mesh: indexMeshResources(resources),
    catalog: staticCompileCatalog(instances),
  });

describe('compileSnapshot (properties)', () => {
  it('is deterministic and blind to the order of instances and resources', () => {
    fc.assert(
      fc.property(
        proxyArb,
        instanceArb.chain((i) =>
          fc.tuple(fc.constant(i), fc.shuffledSubarray(i, { minLength: i.length })),
        ),
        storedArb.chain((r) =>
          fc.tuple(fc.constant(r), fc.shuffledSubarray(r, { minLength: r.length })),
        ),
        (proxy, [instances, shuffledInstances], [resources, shuffledResources]) => {
          const a = compile(proxy, instances, resources).snapshot;
          const b = compile(proxy, shuffledInstances, shuffledResources).snapshot;
          assert.deepEqual(b, a);
          assert.equal(
            compile({ ...proxy, id: 'another' }, instances, resources).snapshot.version,
            a.version,
          );
        },
      ),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('names only clusters it has, sums each route to 100, and orders endpoints by id', () => {
    fc.assert(
      fc.property(proxyArb, instanceArb, storedArb, (proxy, instances, resources) => {
        const s = compile(proxy, instances, resources).snapshot;
        const names = s.clusters.map((c) => c.name);
        assert.equal(new Set(names).size, names.length);
        for (const r of s.routes) {
          for (const b of r.backends) assert.ok(names.includes(b.cluster), b.cluster);
          if (r.mirror) assert.ok(names.includes(r.mirror.cluster));
          assert.equal(
            r.backends.reduce((sum, b) => sum + b.weight, 0),
            100,
            r.name,
          );
        }
        for (const c of s.clusters) {
          const ids = c.endpoints.map((e) => e.id);
          assert.deepEqual(ids, [...ids].sort());
        }
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  // What the control plane's precision rests on: a change that meets nothing in the deps leaves
  // the snapshot as it was.
  it('reports deps soundly: a change outside them leaves the version alone', () => {
    fc.assert(
      fc.property(
        proxyArb,
        instanceArb,
        storedArb,
        changeArb,
        (proxy, instances, resources, change) => {
          const before = compile(proxy, instances, resources);
          let nextInstances = instances;
          let nextResources = resources;
          let services: string[] = [];
          let touched: string[] = [];
          if (change.kind === 'status' || change.kind === 'remove') {
            const target = instances[change.pick % Math.max(1, instances.length)];
            if (target === undefined) return;
            services = [target.service];
            nextInstances =
              change.kind === 'remove'
                ? instances.filter((i) => i !== target)
                : instances.map((i) => (i === target ? { ...i, status: change.status } : i));
          } else if (change.kind === 'add') {
            services = [change.service];
            nextInstances = [
              ...instances.filter((i) => i.id !== change.id),
              fakeInstance(change.id, change.service, { meta: { version: change.version } }),
            ];
          } else if (change.kind === 'put') {
            const key = (r: StoredMeshResource) =>
              `${r.resource.kind}/${r.resource.metadata.namespace}/${r.resource.metadata.name}`;
            const k = `${change.r.kind}/${change.r.metadata.namespace}/${change.r.metadata.name}`;
            const old = resources.find((r) => key(r) === k);
            touched = [...resourceTouches(change.r), ...(old ? resourceTouches(old.resource) : [])];
            nextResources = [
              ...resources.filter((r) => r !== old),
              { resource: change.r, createIndex: old?.createIndex ?? 100, modifyIndex: 100 },
            ];
          } else {
            const gone = resources[change.pick % Math.max(1, resources.length)];
            if (gone === undefined) return;
            touched = resourceTouches(gone.resource);
            nextResources = resources.filter((r) => r !== gone);
          }
          const { deps } = before;
          const meets =
            services.some((s) => deps.allServices || deps.services.has(s)) ||
            touched.some((k) => deps.resources.has(k));
          if (meets) return;
          const after = compile(proxy, nextInstances, nextResources).snapshot;
          assert.equal(after.version, before.snapshot.version);
        },
      ),
      { seed: SEED, numRuns: 1000 },
    );
  });
});
