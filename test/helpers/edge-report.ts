/** @module Test helpers: a proxy's edge report (POST /api/v1/mesh/edges) with one edge. */
import { EDGE_LATENCY_BUCKETS_MS, type ProxyEdgeReport } from '../../src/protocol/mesh/graph.js';

/**
 * The report of `proxy` (reporter destination, over 10 s): `requests` calls from `source` to
 * `destination`, `errors` of them failed, all in latency bucket `bucket` (2: up to 5 ms).
 */
export function edgeReport(
  proxy: string,
  source: string,
  destination: string,
  requests: number,
  errors = 0,
  bucket = 2,
): ProxyEdgeReport {
  const latencyBuckets = new Array<number>(EDGE_LATENCY_BUCKETS_MS.length + 1).fill(0);
  latencyBuckets[bucket] = requests;
  return {
    proxy,
    reporter: 'destination',
    intervalMs: 10_000,
    edges: [{ source, destination, requests, errors, latencyBuckets }],
  };
}
