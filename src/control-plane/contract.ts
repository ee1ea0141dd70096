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
