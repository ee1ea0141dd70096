/**
 * @module The gateway's side of a mesh snapshot: proxy/snapshot-routes.ts builds the table and
 * clusters (the sidecar runs the same); this gives it the gateway's defaults and turns host
 * routing off (only the snapshot's routes route).
 */
import type { BalancerSpec } from '../client/balancers/index.js';
import type { RetryPolicyOptions } from '../client/resilience/index.js';
import type { MeshSnapshot } from '../protocol/mesh/snapshot.js';
import {
  buildSnapshotRoutes,
  type SnapshotRouteOptions,
  type SnapshotRoutesDeps,
} from '../proxy/snapshot-routes.js';
import type { GatewayRoutes } from './gateway-routes.js';
import type { GatewayOptions } from './options.js';

export type MeshRoutesDeps = SnapshotRoutesDeps;

/** The gateway's defaults as the snapshot compiler takes them. */
export function snapshotRouteOptions(options: GatewayOptions): SnapshotRouteOptions {
  return {
    proxy: 'gateway',
    balancer: options.balancer as BalancerSpec,
    retry: options.retry as Partial<RetryPolicyOptions>,
    outlierDetection: options.outlierDetection,
    panicThresholdPercent: options.panicThresholdPercent,
    requestTimeoutMs: options.requestTimeoutMs,
    connectTimeoutMs: options.connectTimeoutMs,
  };
}

/**
 * The gateway's route table and clusters for a snapshot. Host routing is off: only the
 * snapshot's routes route. Throws CONFIG_INVALID listing every problem (each naming its route or
 * cluster and field) when any part cannot run here; then nothing was changed.
 */
export function buildMeshRoutes(
  snapshot: MeshSnapshot,
  options: GatewayOptions,
  deps: MeshRoutesDeps = {},
): GatewayRoutes {
  const { table, clusters } = buildSnapshotRoutes(snapshot, snapshotRouteOptions(options), deps);
  return { table, clusters, hostOnly: () => false, dropHostOnly: () => false };
}
