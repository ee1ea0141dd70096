/**
 * @module SharedClusterCache: compiled clusters kept between compiles and shared by every proxy
 * identity, dropped when what they were built from changes.
 */
import type { MeshKind } from '../protocol/mesh/resource.js';
import type { ClusterCache, CompiledCluster } from './compile-context.js';

/** Kinds no cluster reads: a change to one leaves the compiled clusters valid. */
const NOT_IN_CLUSTERS = new Set<MeshKind>([
  'VirtualService',
  'PeerAuthentication',
  'AuthorizationPolicy',
  'Sidecar',
]);

/** A ClusterCache whose owner calls `serviceChanged` and `resourceChanged` (see ClusterCache). */
export class SharedClusterCache implements ClusterCache {
  readonly #byHost = new Map<string, Map<string, CompiledCluster>>();

  get(host: string, key: string): CompiledCluster | undefined {
    return this.#byHost.get(host)?.get(key);
  }

  set(host: string, key: string, entry: CompiledCluster): void {
    let entries = this.#byHost.get(host);
    if (entries === undefined) this.#byHost.set(host, (entries = new Map()));
    entries.set(key, entry);
  }

  /** The catalog service `service` changed: its clusters go. */
  serviceChanged(service: string): void {
    this.#byHost.delete(service);
  }

  /**
   * A resource of `kind` changed. A host-keyed one (DestinationRule, ServiceEntry...) may change
   * any cluster of its hosts, and a ServiceEntry whether a host is a catalog service at all:
   * everything goes (resources change rarely; instances often).
   */
  resourceChanged(kind: MeshKind): void {
    if (!NOT_IN_CLUSTERS.has(kind)) this.#byHost.clear();
  }

  clear(): void {
    this.#byHost.clear();
  }
}
