/**
 * @module The mesh call graph's wire shapes (issue 21): what each proxy reports of the calls it
 * saw, per edge (source service -> destination service), and the graph the control plane
 * aggregates from those reports for the API, the dashboard and `meshwork top`.
 */

import type { ClusterHealth } from './proxy-health.js';

/** A proxy posts its report here (POST, JSON ProxyEdgeReport); answered 204. */
export const MESH_EDGES_PATH = '/api/v1/mesh/edges';
/** The aggregated graph (GET, JSON MeshGraph); `?window=<seconds>` (default 60, 10 to 3600). */
export const MESH_GRAPH_PATH = '/api/v1/mesh/graph';

/**
 * Upper bounds (ms) of the latency histogram every report uses (Istio's
 * istio_request_duration_milliseconds buckets up to 60 s; one more bucket counts the rest), so
 * the reports of many proxies add up bucket by bucket.
 */
export const EDGE_LATENCY_BUCKETS_MS: readonly number[] = Object.freeze([
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000,
]);

/** The calls of one edge seen by one proxy since its previous report. */
export interface EdgeCounts {
  /** The calling service (the caller's workload; `unknown` when the caller has no identity). */
  readonly source: string;
  /** The called service. */
  readonly destination: string;
  readonly requests: number;
  /** Answered 5xx, or not answered at all (a reset, a timeout, the client gone). */
  readonly errors: number;
  /** Counts per bucket of EDGE_LATENCY_BUCKETS_MS, plus one for longer: length 16. */
  readonly latencyBuckets: readonly number[];
}

/** One proxy's report: the edges it saw over `intervalMs` (the time since its previous one). */
export interface ProxyEdgeReport {
  /** The proxy's id (as on the push stream: its snapshot's proxy.id). */
  readonly proxy: string;
  /** source: the caller's sidecar or a gateway; destination: the callee's inbound sidecar. */
  readonly reporter: 'source' | 'destination';
  readonly intervalMs: number;
  readonly edges: readonly EdgeCounts[];
  /**
   * The proxy's clusters with ejected instances or in panic mode, now (proxy-health.ts): it
   * replaces what the agent kept for the proxy ([]: nothing to say any more). Absent: unchanged.
   */
  readonly health?: readonly ClusterHealth[];
}

export interface MeshGraphNode {
  /** The service name (the graph's node id). */
  readonly id: string;
  /** gateway: a gateway proxy's name; unknown: a caller without identity. */
  readonly kind: 'service' | 'gateway' | 'unknown';
}

export interface MeshGraphEdge {
  readonly source: string;
  readonly destination: string;
  /** Requests per second over the window. */
  readonly rps: number;
  /** errors / requests over the window (0 when there were none). */
  readonly errorRate: number;
  /** The p99 latency over the window, ms (the upper bound of its histogram bucket). */
  readonly p99Ms: number;
  readonly requests: number;
  readonly errors: number;
}

/** Who calls whom over the last `windowSeconds`. */
export interface MeshGraph {
  /** RFC 3339. */
  readonly generatedAt: string;
  readonly windowSeconds: number;
  readonly nodes: readonly MeshGraphNode[];
  readonly edges: readonly MeshGraphEdge[];
}
