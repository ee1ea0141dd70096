/**
 * @module The call graph's routes on the agent's HTTP server: proxies post their edge counts
 * (and their cluster health, handed to `onHealth`) to `POST /api/v1/mesh/edges` (204), and `GET /api/v1/mesh/graph?window=<seconds>` answers the
 * MeshGraph this agent aggregated from its proxies' reports.
 */
import type { FastifyInstance } from 'fastify';
import type { Registry as PromRegistry } from 'prom-client';
import { ERROR_CODES, errors, isMeshError } from '../../core/errors.js';
import {
  MESH_EDGES_PATH,
  MESH_GRAPH_PATH,
  type ProxyEdgeReport,
} from '../../protocol/mesh/graph.js';
import {
  CallGraph,
  DEFAULT_GRAPH_WINDOW_SECONDS,
  MAX_GRAPH_WINDOW_SECONDS,
  MIN_GRAPH_WINDOW_SECONDS,
  type GraphNodesSource,
} from './call-graph.js';
import { parseEdgeReport } from './edge-report-body.js';
import { registerCallGraphMetrics } from './call-graph-metrics.js';

export interface CallGraphRoutesOptions {
  readonly graph: CallGraph;
  /** The nodes the graph shows besides the edges' ends: catalog services, gateways. */
  readonly nodes: () => GraphNodesSource;
  /** The agent's metrics registry (meshwork_call_graph_*). */
  readonly metrics: PromRegistry;
  /** Told the cluster health a report carries (the push server's book keeps it per proxy). */
  readonly onHealth?: (proxy: string, health: NonNullable<ProxyEdgeReport['health']>) => void;
}

/** The `?window=` of a graph request, seconds, or a validation error naming `window`. */
export function parseGraphWindow(value: unknown): number {
  if (value === undefined) return DEFAULT_GRAPH_WINDOW_SECONDS;
  const text = Array.isArray(value) ? value[0] : value;
  const n = typeof text === 'string' && /^\d{1,7}$/.test(text) ? Number(text) : Number.NaN;
  if (!(n >= MIN_GRAPH_WINDOW_SECONDS && n <= MAX_GRAPH_WINDOW_SECONDS))
    throw errors.validation(
      'window',
      `must be a whole number of seconds from ${MIN_GRAPH_WINDOW_SECONDS} to ${MAX_GRAPH_WINDOW_SECONDS}`,
    );
  return n;
}

/** The routes, to register on the agent's server (after its request guard). */
export function callGraphRoutes(options: CallGraphRoutesOptions): (app: FastifyInstance) => void {
  const reports = registerCallGraphMetrics(options.metrics, options.graph);
  return (app) => {
    app.post(MESH_EDGES_PATH, async (req, reply) => {
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      try {
        const report = parseEdgeReport(body, req.headers['content-type']);
        // A report with the health alone (the proxy saw no calls) is no reporting proxy's.
        if (report.edges.length > 0 || report.health === undefined) options.graph.record(report);
        if (report.health !== undefined) options.onHealth?.(report.proxy, report.health);
      } catch (err) {
        reports.inc({
          result: isMeshError(err, ERROR_CODES.MESH_EDGE_REPORTERS_FULL) ? 'refused' : 'invalid',
        });
        throw err;
      }
      reports.inc({ result: 'recorded' });
      return reply.status(204).send();
    });
    app.get(MESH_GRAPH_PATH, async (req, reply) => {
      const window = parseGraphWindow((req.query as Record<string, unknown>).window);
      const graph = options.graph.graph(window, options.nodes());
      return reply
        .header('content-type', 'application/json; charset=utf-8')
        .send(JSON.stringify(graph));
    });
  };
}
