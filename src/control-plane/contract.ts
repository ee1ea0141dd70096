/**
 * @module The control plane's contracts: the compiler offers per-proxy snapshots through a
 * SnapshotSource; the push server streams them and records ACKs and NACKs.
 */
import type { MeshSnapshot, ProxyIdentity } from '../protocol/mesh/snapshot.js';

/**
 * Snapshots per proxy, kept current from the catalog and the mesh resources.
 *
 * Contract: `watch` calls `onSnapshot` with the proxy's current snapshot before it returns
 * (compiled on first use), then once after each change that gives the proxy a new version (a
 * change that leaves its content alone, or touches services it does not call, calls nothing).
 * `onSnapshot` MUST NOT throw. Several watches of one identity share one compilation.
 */
export interface SnapshotSource {
  watch(proxy: ProxyIdentity, onSnapshot: (snapshot: MeshSnapshot) => void): () => void;
}

/**
 * The control plane the agent runs (src/control-plane/control-plane.ts exports
 * `createControlPlane(options): ControlPlane`): snapshots for proxies, compiled from the catalog.
 */
export interface ControlPlane extends SnapshotSource {
  /** Stops following the catalog; watches get nothing more. */
  close(): void;
}
