/**
 * Property test of createControlPlane's incremental recompiles: after any sequence of catalog
 * and resource changes, flushed in any bursts, each watcher holds what a compile from scratch of
 * the catalog as it is gives (same version), having been called only when its version changed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { MeshSnapshot } from '../../../src/protocol/mesh/snapshot.js';
import { staticCompileCatalog } from '../../../src/control-plane/catalog-endpoints.js';
import { compileSnapshot } from '../../../src/control-plane/compile-snapshot.js';
import { createControlPlane } from '../../../src/control-plane/control-plane.js';
import { indexMeshResources } from '../../../src/control-plane/mesh-index.js';
import { meshResourceKey } from '../../../src/protocol/mesh/resource.js';
import { FakeMeshCatalog, fakeInstance } from '../../../src/testing/fake-mesh-catalog.js';
import { changeArb, instanceArb, proxyArb, resourceArb, SERVICES } from './mesh-arbitraries.js';

const stepArb = fc.oneof(changeArb, fc.constant({ kind: 'flush' as const }));

describe('createControlPlane (properties)', () => {
  it('keeps every watcher on the snapshot a fresh compile gives, whatever the changes', () => {
    fc.assert(
      fc.property(
        instanceArb,
        fc.array(resourceArb, { maxLength: 5 }),
        fc.array(proxyArb, { minLength: 1, maxLength: 4 }),
        fc.array(stepArb, { maxLength: 25 }),
        (instances, resources, proxies, changes) => {
          const catalog = new FakeMeshCatalog(instances, resources);
          let pending: (() => void) | undefined;
          const cp = createControlPlane({ catalog, schedule: (run) => (pending = run) });
          const got = proxies.map(() => [] as MeshSnapshot[]);
          proxies.forEach((p, i) => cp.watch(p, (s) => got[i]?.push(s)));
          const flush = () => {
            const run = pending;
            pending = undefined;
            run?.();
          };
          const check = () => {
            const all = SERVICES.concat('e').flatMap((s) => catalog.serviceInstances(s));
            proxies.forEach((proxy, i) => {
              const fresh = compileSnapshot({
                proxy,
                index: 0,
                mesh: indexMeshResources(catalog.meshResources()),
                catalog: staticCompileCatalog(all),
              }).snapshot;
              const list = got[i] ?? [];
              const last = list[list.length - 1];
              assert.equal(last?.version, fresh.version, `proxy ${i} (${JSON.stringify(proxy)})`);
              assert.deepEqual({ ...last, index: 0, proxy }, { ...fresh, index: 0, proxy });
              for (let k = 1; k < list.length; k++) {
                assert.notEqual(list[k]?.version, list[k - 1]?.version, 'called without a change');
              }
            });
          };
          for (const c of changes) {
            const everyone = SERVICES.concat('e').flatMap((s) => catalog.serviceInstances(s));
            if (c.kind === 'flush') {
              flush();
              check();
            } else if (c.kind === 'status' || c.kind === 'remove') {
              const target = everyone[c.pick % Math.max(1, everyone.length)];
              if (target === undefined) continue;
              if (c.kind === 'remove') catalog.removeInstance(target.id);
              else catalog.setStatus(target.id, c.status);
            } else if (c.kind === 'add') {
              catalog.putInstance(fakeInstance(c.id, c.service, { meta: { version: c.version } }));
            } else if (c.kind === 'put') {
              catalog.putResource(c.r);
            } else {
              const list = catalog.meshResources();
              const gone = list[c.pick % Math.max(1, list.length)];
              if (gone !== undefined) catalog.deleteResource(meshResourceKey(gone.resource));
            }
          }
          flush();
          check();
          cp.close();
        },
      ),
      { seed: 18, numRuns: 300 },
    );
  });
});
