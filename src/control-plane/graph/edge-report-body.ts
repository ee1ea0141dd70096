/**
 * @module The body of `POST /api/v1/mesh/edges`: one proxy's ProxyEdgeReport, checked whole
 * (counts are whole numbers >= 0, errors at most requests, the latency buckets add up to the
 * requests) so that the graph never adds up nonsense; and its cluster health, if any (bounded:
 * MAX_HEALTH_CLUSTERS clusters, MAX_EJECTED_LISTED instances each, counts consistent).
 */
import { z } from 'zod';
import { EDGE_LATENCY_BUCKETS_MS, type ProxyEdgeReport } from '../../protocol/mesh/graph.js';
import { MAX_EJECTED_LISTED, MAX_HEALTH_CLUSTERS } from '../../protocol/mesh/proxy-health.js';
import { printable } from '../../protocol/registration.js';
import { parseOrThrow } from '../../protocol/validation.js';
import { parseJsonBody } from '../json-body.js';

/** At most this many edges in one report (a proxy counts at most 1,024 per side). */
export const MAX_REPORT_EDGES = 1024;

/** A report covers at most this long (a proxy that could not report for an hour starts over). */
export const MAX_REPORT_INTERVAL_MS = 3_600_000;

const LATENCY_BUCKETS = EDGE_LATENCY_BUCKETS_MS.length + 1;

const count = z
  .number()
  .int('must be a whole number')
  .min(0, 'must be >= 0')
  .max(Number.MAX_SAFE_INTEGER, 'must be a safe integer');

/** One edge's counts (a report's, or an agent's share in cluster mode: graph-share.ts). */
export const edgeSchema = z
  .object({
    source: printable(256, 1),
    destination: printable(256, 1),
    requests: count,
    errors: count,
    latencyBuckets: z
      .array(count)
      .length(LATENCY_BUCKETS, `must hold ${LATENCY_BUCKETS} counts (one per bucket and one more)`),
  })
  .strict()
  .superRefine((e, ctx) => {
    if (e.errors > e.requests)
      ctx.addIssue({ code: 'custom', path: ['errors'], message: 'must not exceed requests' });
    let sum = 0;
    for (const n of e.latencyBuckets) sum += n;
    if (sum !== e.requests)
      ctx.addIssue({
        code: 'custom',
        path: ['latencyBuckets'],
        message: `must add up to requests (${e.requests}), not ${sum}`,
      });
  });

const clusterHealthSchema = z
  .object({
    cluster: printable(512, 1),
    service: printable(256, 1),
    endpoints: count,
    available: count,
    panic: z.boolean(),
    ejected: z
      .array(z.object({ id: printable(256, 1), address: printable(300) }).strict())
      .max(MAX_EJECTED_LISTED, `at most ${MAX_EJECTED_LISTED} instances`),
    ejectedCount: count,
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.available > c.endpoints)
      ctx.addIssue({ code: 'custom', path: ['available'], message: 'must not exceed endpoints' });
    if (c.ejectedCount < c.ejected.length || c.ejectedCount > c.endpoints)
      ctx.addIssue({
        code: 'custom',
        path: ['ejectedCount'],
        message: 'must be from the instances listed in ejected to endpoints',
      });
  });

const reportSchema = z
  .object({
    proxy: printable(256, 1),
    reporter: z.enum(['source', 'destination']),
    intervalMs: z
      .number()
      .int('must be a whole number')
      .min(1, 'must be >= 1')
      .max(MAX_REPORT_INTERVAL_MS, `must be at most ${MAX_REPORT_INTERVAL_MS}`),
    edges: z.array(edgeSchema).max(MAX_REPORT_EDGES, `at most ${MAX_REPORT_EDGES} edges`),
    health: z
      .array(clusterHealthSchema)
      .max(MAX_HEALTH_CLUSTERS, `at most ${MAX_HEALTH_CLUSTERS} clusters`)
      .optional(),
  })
  .strict();

/**
 * Parses an edge report (raw bytes, JSON). Throws a MeshError: 415 for a Content-Type other
 * than JSON, 400 malformed for bytes that are no JSON, 400 validation naming the field
 * (`edges[2].errors: must not exceed requests`).
 */
export function parseEdgeReport(body: Buffer | string, contentType?: string): ProxyEdgeReport {
  return parseOrThrow(reportSchema, parseJsonBody(body, contentType));
}
