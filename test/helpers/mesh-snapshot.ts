/** @module Test helpers: mesh snapshots (MeshSnapshot) built from a few fields, for proxies fed in-process. */
import { staticCompileCatalog } from '../../src/control-plane/catalog-endpoints.js';
import { compileSnapshot } from '../../src/control-plane/compile-snapshot.js';
import { indexMeshResources } from '../../src/control-plane/mesh-index.js';
import type { InstanceDto } from '../../src/protocol/api-types.js';
import type { MeshResource } from '../../src/protocol/mesh/resource.js';
import { fakeStored } from '../../src/testing/fake-mesh-catalog.js';
import type {
  MeshSnapshot,
  SnapshotCluster,
  SnapshotEndpoint,
  SnapshotRoute,
} from '../../src/protocol/mesh/snapshot.js';

/** A passing endpoint on 127.0.0.1. */
export const snapshotEndpoint = (id: string, port = 9000): SnapshotEndpoint => ({
  id,
  address: '127.0.0.1',
  port,
  status: 'passing',
  tags: [],
  meta: {},
  weights: { passing: 1, warning: 1 },
});

/** A cluster named `service` or `service|subset`, with `endpoints` (default one on port 9000). */
export const snapshotCluster = (
  name: string,
  over: Partial<SnapshotCluster> = {},
): SnapshotCluster => ({
  name,
  service: name.split('|')[0] as string,
  endpoints: [snapshotEndpoint(`${name}-1`)],
  ...over,
});

/** A route for any host and any request, all to cluster `web`, with `over` on top. */
export const snapshotRoute = (name: string, over: Partial<SnapshotRoute> = {}): SnapshotRoute => ({
  name,
  hosts: ['*'],
  match: [],
  backends: [{ cluster: 'web', weight: 100 }],
  ...over,
});

let versions = 0;

/** A gateway snapshot of `routes` and `clusters`, each call a new version. */
export function meshSnapshot(
  routes: readonly SnapshotRoute[],
  clusters: readonly SnapshotCluster[] = [snapshotCluster('web')],
): MeshSnapshot {
  versions++;
  return {
    version: `v${versions}`,
    index: versions,
    proxy: { id: 'gw-1', kind: 'gateway', name: 'meshwork-gateway', namespace: 'default' },
    routes,
    clusters,
    egress: { mode: 'ALLOW_ANY' },
  };
}

/** A sidecar's snapshot compiled by the control plane from `resources` over `instances`. */
export function compileSidecarSnapshot(
  service: string,
  instances: readonly InstanceDto[],
  resources: readonly MeshResource[],
): MeshSnapshot {
  return compileSnapshot({
    proxy: { id: `${service}-1`, kind: 'sidecar', name: service, namespace: 'default' },
    index: 1,
    mesh: indexMeshResources(fakeStored(resources)),
    catalog: staticCompileCatalog(instances),
  }).snapshot;
}
