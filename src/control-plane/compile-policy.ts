/**
 * @module A DestinationRule's trafficPolicy (with a subset's override) as a snapshot cluster's
 * policies: load balancer, connection pool limits, outlier detection with Istio's defaults.
 */
import type { SnapshotCluster, SnapshotLoadBalancer } from '../protocol/mesh/snapshot.js';
import type {
  ConnectionPoolSettings,
  LoadBalancerSettings,
  OutlierDetection,
  TrafficPolicy,
} from '../protocol/mesh/specs.js';
import { compact, durationMs } from './compile-context.js';

/**
 * The policy of a subset: each top-level field the subset sets replaces the rule's whole field
 * (Istio's MergeTrafficPolicy: a subset's `loadBalancer` replaces the rule's, not merged into it).
 */
export function mergeTrafficPolicy(
  rule: TrafficPolicy | undefined,
  subset: TrafficPolicy | undefined,
): TrafficPolicy | undefined {
  if (subset === undefined) return rule;
  if (rule === undefined) return subset;
  return compact({
    loadBalancer: subset.loadBalancer ?? rule.loadBalancer,
    connectionPool: subset.connectionPool ?? rule.connectionPool,
    outlierDetection: subset.outlierDetection ?? rule.outlierDetection,
    tls: subset.tls ?? rule.tls,
  });
}

type ClusterPolicy = Pick<
  SnapshotCluster,
  'loadBalancer' | 'connectionPool' | 'outlierDetection' | 'tls'
>;

/** The cluster fields a traffic policy gives (none set: an empty object). */
export function compileTrafficPolicy(policy: TrafficPolicy | undefined): ClusterPolicy {
  if (policy === undefined) return {};
  return compact({
    loadBalancer: policy.loadBalancer && loadBalancer(policy.loadBalancer),
    connectionPool: policy.connectionPool && connectionPool(policy.connectionPool),
    outlierDetection: policy.outlierDetection && outlierDetection(policy.outlierDetection),
    tls: policy.tls && { mode: policy.tls.mode },
  });
}

/** Istio's names to Meshwork's balancers; UNSPECIFIED and PASSTHROUGH leave the proxy's default. */
function loadBalancer(lb: LoadBalancerSettings): SnapshotLoadBalancer | undefined {
  const hash = lb.consistentHash;
  if (hash !== undefined) {
    const hashOn =
      hash.httpHeaderName !== undefined
        ? { header: hash.httpHeaderName.toLowerCase() }
        : hash.httpCookie !== undefined
          ? compact({
              cookie: hash.httpCookie.name,
              ttlMs: durationMs(hash.httpCookie.ttl),
              path: hash.httpCookie.path,
            })
          : hash.useSourceIp === true
            ? { sourceIp: true as const }
            : hash.httpQueryParameterName !== undefined
              ? { query: hash.httpQueryParameterName }
              : undefined;
    if (hashOn === undefined) return undefined;
    return compact({
      type: hash.maglev !== undefined ? ('maglev' as const) : ('ring-hash' as const),
      hashOn,
      minimumRingSize: hash.ringHash?.minimumRingSize,
    });
  }
  switch (lb.simple) {
    case 'ROUND_ROBIN':
      return { type: 'round-robin' };
    case 'LEAST_REQUEST':
    case 'LEAST_CONN':
      return { type: 'least-request' };
    case 'RANDOM':
      return { type: 'random' };
    default:
      return undefined;
  }
}

function connectionPool(cp: ConnectionPoolSettings): SnapshotCluster['connectionPool'] {
  const out = compact({
    maxConnections: cp.tcp?.maxConnections,
    connectTimeoutMs: durationMs(cp.tcp?.connectTimeout),
    maxPendingRequests: cp.http?.http1MaxPendingRequests,
    maxRequests: cp.http?.http2MaxRequests,
    maxRequestsPerConnection: cp.http?.maxRequestsPerConnection,
    maxRetries: cp.http?.maxRetries,
    idleTimeoutMs: durationMs(cp.http?.idleTimeout),
  });
  return Object.keys(out).length === 0 ? undefined : out;
}

/**
 * Outlier detection with Istio's defaults filled in: interval 10s, base ejection 30s, at most
 * 10% ejected, no minimum healthy share, and 5 consecutive 5xx when no error count is given.
 */
function outlierDetection(od: OutlierDetection): SnapshotCluster['outlierDetection'] {
  const noCount =
    od.consecutive5xxErrors === undefined && od.consecutiveGatewayErrors === undefined;
  return compact({
    consecutive5xxErrors: noCount ? 5 : od.consecutive5xxErrors,
    consecutiveGatewayErrors: od.consecutiveGatewayErrors,
    intervalMs: durationMs(od.interval) ?? 10_000,
    baseEjectionMs: durationMs(od.baseEjectionTime) ?? 30_000,
    maxEjectionPercent: od.maxEjectionPercent ?? 10,
    minHealthPercent: od.minHealthPercent ?? 0,
  });
}
