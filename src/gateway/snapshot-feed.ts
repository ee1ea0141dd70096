/**
 * @module SnapshotFeed: where a gateway in mesh mode gets its snapshots. The CLI wires the
 * SDK's MeshSubscriber (push stream, ACK/NACK, the last good snapshot persisted under the data
 * dir); tests feed snapshots in-process.
 */
import type { MeshSnapshot } from '../protocol/mesh/snapshot.js';

/** Where the first snapshot came from: the persisted one, an agent, or none yet. */
export type SnapshotFeedStart = 'disk' | 'agent' | 'none';

/**
 * A source of snapshots for one proxy. `start` is called once; from then on the feed calls
 * `apply` with each new snapshot, one at a time, never concurrently. `apply` is synchronous: it
 * returns once the snapshot is in force, or throws (the feed MUST then NACK that version with
 * the error's message and keep the proxy on its last good one, which `apply` leaves in force).
 * `start` resolves once the first snapshot was applied (from disk or an agent), or with 'none'
 * when there was none to apply; the feed keeps trying in the background. `close` stops it.
 */
export interface SnapshotFeed {
  start(apply: (snapshot: MeshSnapshot) => void): Promise<SnapshotFeedStart>;
  close(): Promise<void>;
}
