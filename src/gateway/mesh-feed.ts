/**
 * @module The gateway's SnapshotFeed in a running mesh: the SDK's MeshSubscriber (one push
 * stream to any agent of `registry`, ACK/NACK, the last good snapshot persisted under the
 * gateway's data dir and started from when no agent answers).
 */
import { hostname } from 'node:os';
import { MeshSubscriber } from '../client/mesh-subscriber.js';
import { registryTlsOf } from '../client/tls-files.js';
import type { Logger } from '../core/logger.js';
import type { ProxyIdentity } from '../protocol/mesh/snapshot.js';
import type { GatewayOptions } from './options.js';
import type { SnapshotFeed } from './snapshot-feed.js';

/** Who this gateway is to the control plane: its name and namespace, one id per process. */
export function gatewayIdentity(options: GatewayOptions): ProxyIdentity {
  return {
    id: `${options.name}~${hostname()}~${process.pid}`,
    kind: 'gateway',
    name: options.name,
    namespace: options.namespace,
  };
}

/** A feed from the control plane's push stream (see MeshSubscriber). */
export function createMeshFeed(options: GatewayOptions, logger: Logger): SnapshotFeed {
  let subscriber: MeshSubscriber | undefined;
  return {
    start(apply) {
      subscriber = new MeshSubscriber({
        registry: options.registry,
        registryTls: registryTlsOf(options),
        proxy: gatewayIdentity(options),
        dataDir: options.dataDir,
        apply,
        logger,
      });
      return subscriber.start();
    },
    async close() {
      await subscriber?.close();
    },
  };
}
