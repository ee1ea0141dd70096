/**
 * @module compileSnapshot: the pure function from catalog + mesh resources + proxy identity to
 * the proxy's snapshot, with what it read (so the caller knows which changes touch the proxy).
 */
import type { StoredMeshResource } from '../protocol/mesh/resource.js';
import type {
  MeshSnapshot,
  ProxyIdentity,
  SnapshotRoute,
  SnapshotTrust,
} from '../protocol/mesh/snapshot.js';
import type { VirtualServiceSpec } from '../protocol/mesh/specs.js';
import { compileCluster } from './compile-clusters.js';
import {
  createDepsRecorder,
  type ClusterCache,
  type CompileCatalog,
  type CompileContext,
} from './compile-context.js';
import { compileEgress, compileInbound } from './compile-inbound.js';
import {
  compileVirtualService,
  defaultRoute,
  routeHosts,
  type ClusterRefs,
} from './compile-routes.js';
import { depKeys, type SnapshotDeps } from './mesh-deps.js';
import { isWildcardHost, resolveHost, wildcardCovers } from './mesh-hosts.js';
import { byPrecedence, type MeshIndex } from './mesh-index.js';
import { snapshotVersion, type SnapshotContent } from './snapshot-version.js';

export interface CompileInput {
  readonly proxy: ProxyIdentity;
  /** The catalog index the inputs are at (informational, outside the version). */
  readonly index: number;
  readonly mesh: MeshIndex;
  readonly catalog: CompileCatalog;
  /** Clusters from earlier compiles (see ClusterCache); absent: every cluster built anew. */
  readonly clusters?: ClusterCache;
  /** The mesh CA's trust, carried as is (`MeshSnapshot.ca`, in the version). */
  readonly ca?: SnapshotTrust;
}

export interface CompileResult {
  readonly snapshot: MeshSnapshot;
  readonly deps: SnapshotDeps;
}

/**
 * Compiles one proxy's snapshot. Pure: the same inputs give the same snapshot (and version),
 * whatever order the resources and instances came in.
 *
 * - A gateway gets the VirtualServices whose `gateways` name it; a sidecar those bound to the
 *   mesh (no `gateways`, or `mesh` among them) for the hosts it calls, plus a default route to
 *   each upstream no VirtualService routes, its inbound policies and its egress mode.
 * - Routes keep the VirtualServices' order (creation index, then key) and each one's http order:
 *   the first whose host and match fit wins. Several VirtualServices for one host have their
 *   routes concatenated in that order, as Istio merges them for sidecars.
 * - Clusters: one per (host, subset) a route or mirror names, ordered by name.
 */
export function compileSnapshot(input: CompileInput): CompileResult {
  const { proxy, mesh, catalog } = input;
  const deps = createDepsRecorder();
  const ctx: CompileContext = { proxy, mesh, catalog, deps, clusters: input.clusters };
  const refs: ClusterRefs = new Map();
  const routes: SnapshotRoute[] = [];

  if (proxy.kind === 'gateway') {
    deps.resources.add(depKeys.gatewayVirtualServices(proxy.name));
    for (const vs of mesh.gatewayVirtualServices(proxy.name, proxy.namespace)) {
      routes.push(...compileVirtualService(vs, refs));
    }
  } else {
    const { upstreams, virtualServices } = sidecarScope(ctx);
    const routed = new Set<string>();
    for (const vs of virtualServices) {
      routes.push(...compileVirtualService(vs, refs));
      const spec = vs.resource.spec as VirtualServiceSpec;
      for (const h of routeHosts(spec, vs.resource.metadata.namespace)) routed.add(h);
    }
    for (const host of upstreams) if (!routed.has(host)) routes.push(defaultRoute(host, refs));
  }

  const clusters = [...refs.values()]
    .map((ref) => compileCluster(ctx, ref))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const trust = input.ca === undefined ? {} : { ca: input.ca };
  const content: SnapshotContent =
    proxy.kind === 'sidecar'
      ? { routes, clusters, inbound: compileInbound(ctx), egress: compileEgress(ctx), ...trust }
      : { routes, clusters, egress: { mode: 'ALLOW_ANY' }, ...trust };
  const snapshot: MeshSnapshot = {
    version: snapshotVersion(content),
    index: input.index,
    proxy,
    ...content,
  };
  return { snapshot, deps };
}

/**
 * The hosts a sidecar calls (sorted) and the mesh VirtualServices for them (in precedence
 * order): its declared upstreams, or every catalog service and ServiceEntry host.
 */
function sidecarScope(ctx: CompileContext): {
  upstreams: string[];
  virtualServices: readonly StoredMeshResource[];
} {
  const { proxy, mesh, catalog, deps } = ctx;
  if (proxy.upstreams === undefined) {
    deps.allServices = true;
    deps.resources.add(depKeys.meshVirtualServices);
    deps.resources.add(depKeys.serviceEntries);
    const hosts = new Set([...catalog.services(), ...mesh.serviceEntryHosts]);
    return { upstreams: [...hosts].sort(), virtualServices: mesh.meshVirtualServices };
  }
  const upstreams = [...new Set(proxy.upstreams.map((u) => resolveHost(u, proxy.namespace)))]
    .filter((u) => !isWildcardHost(u))
    .sort();
  deps.resources.add(depKeys.meshWildcardVirtualServices);
  const chosen = new Set<StoredMeshResource>();
  for (const u of upstreams) {
    deps.resources.add(depKeys.meshVirtualServicesOf(u));
    for (const vs of mesh.meshVirtualServicesOf(u)) chosen.add(vs);
  }
  for (const vs of mesh.meshWildcardVirtualServices) {
    const patterns = (vs.resource.spec as VirtualServiceSpec).hosts.filter(isWildcardHost);
    if (upstreams.some((u) => patterns.some((p) => wildcardCovers(p, u)))) chosen.add(vs);
  }
  return { upstreams, virtualServices: [...chosen].sort(byPrecedence) };
}
