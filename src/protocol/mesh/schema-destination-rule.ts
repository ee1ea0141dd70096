/**
 * @module The DestinationRule spec schema: subsets by labels, and traffic policies (load
 * balancer, connection pool, outlier detection) for the host and per subset.
 */
import { z } from 'zod';
import {
  MESH_LIMITS,
  count,
  dnsLabel,
  duration,
  exactlyOne,
  headerName,
  hostOrWildcard,
  httpToken,
  int,
  selectorLabels,
  text,
  uniqueList,
  unlessFailed,
} from './schema-common.js';
import type {
  ConnectionPoolSettings,
  ConsistentHashLb,
  DestinationRuleSpec,
  LoadBalancerSettings,
  OutlierDetection,
  Subset,
  TrafficPolicy,
} from './specs.js';

const SIMPLE_LB = [
  'UNSPECIFIED',
  'ROUND_ROBIN',
  'LEAST_REQUEST',
  'LEAST_CONN',
  'RANDOM',
  'PASSTHROUGH',
] as const;

const HASH_KEYS = ['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName'];

// Envoy's bounds: a ring of at most 8M entries; a Maglev table size that is a prime below 5M.
const MAX_RING_SIZE = 8_388_608;
const MAX_MAGLEV_TABLE = 5_000_011;

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

const consistentHash = z
  .strictObject({
    httpHeaderName: headerName.optional(),
    httpCookie: z
      .strictObject({
        name: httpToken,
        path: text()
          .refine((s) => s.startsWith('/'), 'must start with /')
          .optional(),
        // "0s" asks for a session cookie, as in Istio.
        ttl: duration(0).optional(),
      })
      .optional(),
    useSourceIp: z
      .boolean()
      .refine((b) => b, 'must be true (omit it to hash on something else)')
      .optional(),
    httpQueryParameterName: text(256).optional(),
    ringHash: z.strictObject({ minimumRingSize: int(1, MAX_RING_SIZE).optional() }).optional(),
    maglev: z
      .strictObject({
        tableSize: int(1, MAX_MAGLEV_TABLE)
          .refine(isPrime, "must be a prime number (Envoy's rule; the default is 65537)")
          .optional(),
      })
      .optional(),
  })
  .superRefine((h, ctx) => {
    exactlyOne(h, HASH_KEYS, ctx);
    if (h.ringHash !== undefined && h.maglev !== undefined) {
      ctx.addIssue({ code: 'custom', message: 'must set only one of ringHash, maglev' });
    }
  }, unlessFailed()) satisfies z.ZodType<ConsistentHashLb>;

const loadBalancer = z
  .strictObject({
    simple: z.enum(SIMPLE_LB).optional(),
    consistentHash: consistentHash.optional(),
  })
  .superRefine(
    (lb, ctx) => exactlyOne(lb, ['simple', 'consistentHash'], ctx),
    unlessFailed(),
  ) satisfies z.ZodType<LoadBalancerSettings>;

const connectionPool = z.strictObject({
  tcp: z
    .strictObject({ maxConnections: count.optional(), connectTimeout: duration().optional() })
    .optional(),
  http: z
    .strictObject({
      http1MaxPendingRequests: count.optional(),
      http2MaxRequests: count.optional(),
      maxRequestsPerConnection: count.optional(),
      maxRetries: count.optional(),
      idleTimeout: duration().optional(),
    })
    .optional(),
}) satisfies z.ZodType<ConnectionPoolSettings>;

/** Outlier detection (`circuitBreaker` in the seeds: ./seed-spellings.ts renames it first). */
const outlierDetection = z.strictObject({
  // 0 turns the detector off, as in Istio.
  consecutive5xxErrors: int(0, MESH_LIMITS.maxCount).optional(),
  consecutiveGatewayErrors: int(0, MESH_LIMITS.maxCount).optional(),
  interval: duration().optional(),
  baseEjectionTime: duration().optional(),
  maxEjectionPercent: int(0, 100).optional(),
  minHealthPercent: int(0, 100).optional(),
}) satisfies z.ZodType<OutlierDetection>;

/** Istio's ClientTLSSettings, the modes the mesh's CA can serve. */
const clientTls = z.strictObject({
  mode: z
    .string()
    .refine((m): m is 'DISABLE' | 'ISTIO_MUTUAL' => m === 'DISABLE' || m === 'ISTIO_MUTUAL', {
      message:
        'must be DISABLE or ISTIO_MUTUAL (SIMPLE and MUTUAL, with certificates of your own, are not supported)',
    }),
});

const trafficPolicy = z.strictObject({
  loadBalancer: loadBalancer.optional(),
  connectionPool: connectionPool.optional(),
  outlierDetection: outlierDetection.optional(),
  tls: clientTls.optional(),
}) satisfies z.ZodType<TrafficPolicy>;

const subset = z.strictObject({
  name: dnsLabel,
  labels: selectorLabels.optional(),
  trafficPolicy: trafficPolicy.optional(),
}) satisfies z.ZodType<Subset>;

/** DestinationRule `spec`. */
export const destinationRuleSpecSchema = z.strictObject({
  host: hostOrWildcard,
  trafficPolicy: trafficPolicy.optional(),
  subsets: uniqueList(subset, MESH_LIMITS.maxSubsets, {
    by: ['name'],
  }).optional(),
}) satisfies z.ZodType<DestinationRuleSpec>;
