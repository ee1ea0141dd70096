/** @module Test helpers: a gateway in mesh mode fed snapshots in-process (a TestFeed). */
import { silentLogger } from '../../src/core/logger.js';
import { startGateway, type GatewayDeps, type RunningGateway } from '../../src/gateway/gateway.js';
import { resolveGatewayOptions } from '../../src/gateway/options.js';
import type { SnapshotFeed, SnapshotFeedStart } from '../../src/gateway/snapshot-feed.js';
import type { MeshSnapshot } from '../../src/protocol/mesh/snapshot.js';

/** A feed the test pushes snapshots into; `push` answers the error of a NACK, if any. */
export class TestFeed implements SnapshotFeed {
  #apply: ((s: MeshSnapshot) => void) | undefined;
  readonly #first: MeshSnapshot | undefined;
  closed = false;
  constructor(first?: MeshSnapshot) {
    this.#first = first;
  }
  start(apply: (s: MeshSnapshot) => void): Promise<SnapshotFeedStart> {
    this.#apply = apply;
    if (this.#first === undefined) return Promise.resolve('none');
    apply(this.#first);
    return Promise.resolve('disk');
  }
  push(s: MeshSnapshot): string | undefined {
    try {
      this.#apply?.(s);
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  }
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

/**
 * The flags of a gateway in mesh mode on 127.0.0.1:0 (proxy and admin), silent. `--mtls off`:
 * there is no agent to get a certificate from (test/e2e/gateway-mtls.test.ts runs the gateway's
 * mTLS).
 */
export const MESH_GATEWAY_FLAGS = Object.freeze({
  mesh: true,
  listen: '127.0.0.1:0',
  admin: '127.0.0.1:0',
  logLevel: 'silent',
  mtls: 'off',
});

/** A gateway in mesh mode (MESH_GATEWAY_FLAGS), fed by `feed`. */
export async function startMeshGateway(
  feed: SnapshotFeed,
  deps: GatewayDeps = {},
): Promise<RunningGateway> {
  const options = resolveGatewayOptions({ flags: { ...MESH_GATEWAY_FLAGS } });
  return startGateway(options, silentLogger, { ...deps, snapshotFeed: feed });
}
