/**
 * @module The health summary a proxy sends its agent (protocol/mesh/proxy-health.ts): its
 * clusters with ejected instances or in panic mode, read from each cluster's outlier detector
 * and panic flag. A cluster with nothing to say costs two field reads and no allocation, so the
 * edge reporter can look every second.
 */
import {
  MAX_EJECTED_LISTED,
  MAX_HEALTH_CLUSTERS,
  type ClusterHealth,
  type EjectedEndpoint,
} from '../protocol/mesh/proxy-health.js';
import type { Cluster } from './cluster.js';

/**
 * The clusters of `clusters` with ejections or in panic, sorted by name, at most
 * MAX_HEALTH_CLUSTERS of them (each listing at most MAX_EJECTED_LISTED instances, by id).
 */
export function clusterHealth(clusters: Iterable<Cluster>): ClusterHealth[] {
  const out: ClusterHealth[] = [];
  const seen = new Set<string>();
  for (const c of clusters) {
    const ejectedIds = c.outliers.ejected;
    if (!c.panic && ejectedIds.size === 0) continue;
    if (seen.has(c.name)) continue;
    seen.add(c.name);
    const ejected: EjectedEndpoint[] = [];
    for (const id of [...ejectedIds].sort()) {
      if (ejected.length === MAX_EJECTED_LISTED) break;
      ejected.push({ id, address: c.addressOf(id) ?? '' });
    }
    out.push({
      cluster: c.name,
      service: c.service,
      endpoints: c.total,
      available: c.available,
      panic: c.panic,
      ejected,
      ejectedCount: ejectedIds.size,
    });
  }
  out.sort((a, b) => (a.cluster < b.cluster ? -1 : a.cluster > b.cluster ? 1 : 0));
  return out.length > MAX_HEALTH_CLUSTERS ? out.slice(0, MAX_HEALTH_CLUSTERS) : out;
}
