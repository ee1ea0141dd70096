/**
 * @module The bytes of a push frame. A snapshot's content is encoded once for all the proxies
 * that share it; only the head (its version, index and the proxy it is for) is per proxy.
 */
import type { MeshSnapshot, PushFrame } from '../../protocol/mesh/snapshot.js';

/** The ping frame, one line. */
export const PING_FRAME = Buffer.from(`${JSON.stringify({ type: 'ping' } satisfies PushFrame)}\n`);

interface EncodedContent {
  readonly version: string;
  readonly index: number;
  /** Everything after the proxy: `,"routes":[...],...}}\n`. */
  readonly tail: Buffer;
}

/**
 * Encoded content by the snapshot's `clusters` array: the control plane hands each watcher of
 * one identity a copy of the compiled snapshot with its own `proxy`, and the copies share
 * everything else. A snapshot's version hashes everything but `index` and `proxy`, so a tail is
 * reused only for the same version and index.
 */
const tails = new WeakMap<object, EncodedContent>();

function tailOf(snapshot: MeshSnapshot): Buffer {
  const cached = tails.get(snapshot.clusters);
  if (cached?.version === snapshot.version && cached.index === snapshot.index) return cached.tail;
  const { version: _version, index: _index, proxy: _proxy, ...content } = snapshot;
  const json = JSON.stringify(content);
  const tail = Buffer.from(`${json === '{}' ? '' : `,${json.slice(1, -1)}`}}}\n`);
  tails.set(snapshot.clusters, { version: snapshot.version, index: snapshot.index, tail });
  return tail;
}

/**
 * The snapshot frame (`{"type":"snapshot","snapshot":{...}}` and a newline) as the buffers to
 * write in order: a small head for this proxy, and the shared tail.
 * @example Buffer.concat(snapshotFrame(s)).toString() // '{"type":"snapshot","snapshot":{"version":...}}\n'
 */
export function snapshotFrame(snapshot: MeshSnapshot): readonly [Buffer, Buffer] {
  const head =
    `{"type":"snapshot","snapshot":{"version":${JSON.stringify(snapshot.version)},` +
    `"index":${JSON.stringify(snapshot.index)},"proxy":${JSON.stringify(snapshot.proxy)}`;
  return [Buffer.from(head), tailOf(snapshot)];
}
