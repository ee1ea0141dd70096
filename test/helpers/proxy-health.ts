/** @module Test helpers for the cluster health proxies report (protocol/mesh/proxy-health.ts). */
import type { ClusterHealth, EjectedEndpoint } from '../../src/protocol/mesh/proxy-health.js';

/**
 * The health of cluster `service` with `ejected` out of `endpoints` instances, every other one
 * available, in panic under the default 50% threshold.
 */
export function ejectedHealth(
  service: string,
  endpoints: number,
  ejected: readonly EjectedEndpoint[],
): ClusterHealth {
  const available = endpoints - ejected.length;
  return {
    cluster: service,
    service,
    endpoints,
    available,
    panic: available * 100 < endpoints * 50,
    ejected,
    ejectedCount: ejected.length,
  };
}
