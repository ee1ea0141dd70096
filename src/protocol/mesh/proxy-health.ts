/**
 * @module What a proxy tells its agent of its clusters' health (issue 21): per cluster with
 * something to say, the instances its outlier detection ejected and whether it is in panic
 * mode. Sent with the proxy's edge reports (ProxyEdgeReport.health), kept by the agent per
 * connected proxy and shown in `GET /api/v1/mesh/proxies` and the dashboard.
 */

/** A report names at most this many clusters (those with ejections or in panic). */
export const MAX_HEALTH_CLUSTERS = 256;
/** A cluster lists at most this many ejected instances (`ejectedCount` counts them all). */
export const MAX_EJECTED_LISTED = 64;

/** One instance a proxy's outlier detection took out of rotation. */
export interface EjectedEndpoint {
  /** The instance id (the catalog's). */
  readonly id: string;
  /** `address:port` the proxy sends to. */
  readonly address: string;
}

/** The health of one cluster as one proxy sees it. */
export interface ClusterHealth {
  /** The cluster's name: the service, or `service{version=v2}` for a subset. */
  readonly cluster: string;
  readonly service: string;
  /** Instances in the cluster (maintenance excluded). */
  readonly endpoints: number;
  /** Instances that may take traffic outside panic: healthy in the registry and not ejected. */
  readonly available: number;
  /** True while the cluster spreads over every instance (too few available). */
  readonly panic: boolean;
  /** The ejected instances (at most MAX_EJECTED_LISTED, by id). */
  readonly ejected: readonly EjectedEndpoint[];
  /** How many instances are ejected (all of them, listed or not). */
  readonly ejectedCount: number;
}
