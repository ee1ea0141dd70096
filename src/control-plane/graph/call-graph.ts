/**
 * @module CallGraph: the agent's aggregate of its proxies' edge reports (issue 21), and in
 * cluster mode of the other agents' (`merge`, fed by graph-share.ts). Each edge
 * (source -> destination) keeps its counts in two rings of time buckets: 10 s buckets over the
 * last 10 minutes and 60 s buckets over the last hour; a report's counts land in the buckets of
 * the time it arrived. `graph(windowSeconds)` sums the buckets that overlap the window into
 * rps, error rate and p99. An edge nobody reported for longer than an hour is forgotten; one
 * not reported within the window is not in that window's graph. Bounded: at most `maxEdges`
 * edges and `maxProxies` reporting proxies (a report from one more is refused).
 */
import { systemClock, type Clock } from '../../core/clock.js';
import { errors } from '../../core/errors.js';
import {
  EDGE_LATENCY_BUCKETS_MS,
  type EdgeCounts,
  type MeshGraph,
  type MeshGraphEdge,
  type MeshGraphNode,
  type ProxyEdgeReport,
} from '../../protocol/mesh/graph.js';

/** The window of `GET /api/v1/mesh/graph` without `?window=`, and its bounds, seconds. */
export const DEFAULT_GRAPH_WINDOW_SECONDS = 60;
export const MIN_GRAPH_WINDOW_SECONDS = 10;
export const MAX_GRAPH_WINDOW_SECONDS = 3600;

/** The source of calls whose caller had no identity (a node of kind `unknown`). */
const UNKNOWN = 'unknown';

export interface CallGraphOptions {
  readonly clock?: Clock;
  /** At most this many edges are kept (default 4,096); edges beyond are not counted. */
  readonly maxEdges?: number;
  /** At most this many proxies report within an hour (default 10,000); more are refused. */
  readonly maxProxies?: number;
}

export const DEFAULT_CALL_GRAPH_OPTIONS = Object.freeze({ maxEdges: 4096, maxProxies: 10_000 });

const LATENCY_BUCKETS = EDGE_LATENCY_BUCKETS_MS.length + 1;
/** Per time bucket: requests, errors, then the latency histogram. */
const SLOT = 2 + LATENCY_BUCKETS;
const HOUR_MS = 3_600_000;

interface RingShape {
  readonly widthMs: number;
  /** The longest window it answers, ms. */
  readonly spanMs: number;
  /** Buckets kept: the span, the bucket the window starts in, and the current one. */
  readonly slots: number;
}

const shape = (widthMs: number, spanMs: number): RingShape => ({
  widthMs,
  spanMs,
  slots: Math.ceil(spanMs / widthMs) + 2,
});
const FINE = shape(10_000, 600_000);
const COARSE = shape(60_000, HOUR_MS);

/** One edge's counts in time buckets of one width: slot i holds bucket number `numbers[i]`. */
class Ring {
  readonly #shape: RingShape;
  readonly #numbers: Float64Array;
  readonly #counts: Uint32Array;

  constructor(s: RingShape) {
    this.#shape = s;
    this.#numbers = new Float64Array(s.slots).fill(-1);
    this.#counts = new Uint32Array(s.slots * SLOT);
  }

  add(nowMs: number, e: EdgeCounts): void {
    const n = Math.floor(nowMs / this.#shape.widthMs);
    const slot = n % this.#shape.slots;
    const at = slot * SLOT;
    const counts = this.#counts;
    if (this.#numbers[slot] !== n) {
      this.#numbers[slot] = n;
      counts.fill(0, at, at + SLOT);
    }
    counts[at] = Math.min(0xffffffff, (counts[at] as number) + e.requests);
    counts[at + 1] = Math.min(0xffffffff, (counts[at + 1] as number) + e.errors);
    for (let i = 0; i < LATENCY_BUCKETS; i++)
      counts[at + 2 + i] = Math.min(
        0xffffffff,
        (counts[at + 2 + i] as number) + (e.latencyBuckets[i] ?? 0),
      );
  }

  /** Adds the buckets numbered `from` to `to` into `sums` (length SLOT). */
  sum(from: number, to: number, sums: Float64Array): void {
    for (let slot = 0; slot < this.#shape.slots; slot++) {
      const n = this.#numbers[slot] as number;
      if (n < from || n > to) continue;
      const at = slot * SLOT;
      for (let i = 0; i < SLOT; i++) (sums[i] as number) += this.#counts[at + i] as number;
    }
  }
}

interface EdgeEntry {
  readonly source: string;
  readonly destination: string;
  readonly fine: Ring;
  readonly coarse: Ring;
  lastMs: number;
}

/**
 * The p99 of a histogram on EDGE_LATENCY_BUCKETS_MS: the upper bound of the bucket the 99th
 * percentile falls in; calls longer than every bound count as the last bound (60 s).
 */
function p99Of(sums: Float64Array, offset: number, total: number): number {
  const bounds = EDGE_LATENCY_BUCKETS_MS;
  const target = Math.ceil(total * 0.99);
  let seen = 0;
  for (let i = 0; i < bounds.length; i++) {
    seen += sums[offset + i] as number;
    if (seen >= target) return bounds[i] as number;
  }
  return bounds[bounds.length - 1] as number;
}

const round = (x: number, digits: number): number => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

/** What the graph knows besides the reports: the catalog's services, the gateways' names. */
export interface GraphNodesSource {
  readonly services: Iterable<string>;
  readonly gateways: Iterable<string>;
  /**
   * Gateways of other agents (cluster mode): they mark a node the graph has as a gateway, and
   * add none (a gateway gone from another agent is not known to be gone here).
   */
  readonly otherGateways?: Iterable<string>;
}

export class CallGraph {
  readonly #clock: Clock;
  readonly #maxEdges: number;
  readonly #maxProxies: number;
  readonly #edges = new Map<string, EdgeEntry>();
  /** Reporting proxies by id: when each last reported. */
  readonly #proxies = new Map<string, number>();
  #sweptMs = 0;
  #droppedEdges = 0;
  #recorded: ((edges: readonly EdgeCounts[]) => void) | undefined;

  constructor(options: CallGraphOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#maxEdges = options.maxEdges ?? DEFAULT_CALL_GRAPH_OPTIONS.maxEdges;
    this.#maxProxies = options.maxProxies ?? DEFAULT_CALL_GRAPH_OPTIONS.maxProxies;
  }

  /** Edges kept now. */
  get edgeCount(): number {
    return this.#edges.size;
  }

  /** Proxies that reported within the last hour. */
  get proxyCount(): number {
    return this.#proxies.size;
  }

  /** Edge counts not kept because `maxEdges` edges were kept already (since the start). */
  get droppedEdges(): number {
    return this.#droppedEdges;
  }

  /**
   * Adds one proxy's report (parsed: edge-report-body.ts). Throws MESH_EDGE_REPORTERS_FULL (429) when
   * `maxProxies` other proxies reported within the hour.
   */
  record(report: ProxyEdgeReport): void {
    const now = this.#clock.now();
    this.#sweep(now);
    if (!this.#proxies.has(report.proxy) && this.#proxies.size >= this.#maxProxies)
      throw errors.meshEdgeReportersFull(this.#maxProxies);
    this.#proxies.set(report.proxy, now);
    this.#add(now, report.edges);
    this.#recorded?.(report.edges);
  }

  /**
   * Calls `listener` with the edges of every report `record` took (not those `merge` took): what
   * this agent's own proxies counted, for the cluster share (graph-share.ts). One listener.
   */
  onRecorded(listener: (edges: readonly EdgeCounts[]) => void): void {
    this.#recorded = listener;
  }

  /**
   * Adds counts another agent's proxies made (cluster mode: graph-share.ts), as `record` adds a
   * report's, at the time they arrive; they count no reporting proxy here and are not passed
   * to the `onRecorded` listener (an agent shares only its own proxies' counts).
   */
  merge(edges: readonly EdgeCounts[]): void {
    const now = this.#clock.now();
    this.#sweep(now);
    this.#add(now, edges);
  }

  #add(now: number, edges: readonly EdgeCounts[]): void {
    for (const e of edges) {
      if (e.requests === 0) continue;
      const key = `${e.source}\n${e.destination}`;
      let entry = this.#edges.get(key);
      if (entry === undefined) {
        if (this.#edges.size >= this.#maxEdges) {
          this.#droppedEdges++;
          continue;
        }
        entry = {
          source: e.source,
          destination: e.destination,
          fine: new Ring(FINE),
          coarse: new Ring(COARSE),
          lastMs: now,
        };
        this.#edges.set(key, entry);
      }
      entry.lastMs = now;
      entry.fine.add(now, e);
      entry.coarse.add(now, e);
    }
  }

  /**
   * The graph over the last `windowSeconds` (MIN_ to MAX_GRAPH_WINDOW_SECONDS): the edges with
   * calls in it, and as nodes every service and gateway `nodes` names plus every edge's ends.
   */
  graph(windowSeconds: number, nodes: GraphNodesSource): MeshGraph {
    const now = this.#clock.now();
    this.#sweep(now);
    const windowMs = windowSeconds * 1000;
    const s = windowMs <= FINE.spanMs ? FINE : COARSE;
    // Every bucket the window overlaps: the oldest only partly, so the rate is over the time
    // from that bucket's start (between the window and a bucket more).
    const from = Math.floor((now - windowMs) / s.widthMs);
    const to = Math.floor(now / s.widthMs);
    const coveredSeconds = (now - from * s.widthMs) / 1000;
    const sums = new Float64Array(SLOT);
    const edges: MeshGraphEdge[] = [];
    for (const entry of this.#edges.values()) {
      if (entry.lastMs < from * s.widthMs) continue;
      sums.fill(0);
      (s === FINE ? entry.fine : entry.coarse).sum(from, to, sums);
      const requests = sums[0] as number;
      if (requests === 0) continue;
      const errorCount = sums[1] as number;
      edges.push({
        source: entry.source,
        destination: entry.destination,
        rps: round(requests / coveredSeconds, 3),
        errorRate: round(errorCount / requests, 4),
        p99Ms: p99Of(sums, 2, requests),
        requests,
        errors: errorCount,
      });
    }
    edges.sort((a, b) =>
      a.source === b.source
        ? a.destination < b.destination
          ? -1
          : 1
        : a.source < b.source
          ? -1
          : 1,
    );
    return {
      generatedAt: new Date(now).toISOString(),
      windowSeconds,
      nodes: nodesOf(edges, nodes),
      edges,
    };
  }

  /** Forgets edges and proxies silent for over an hour (at most once a minute). */
  #sweep(now: number): void {
    if (now - this.#sweptMs < 60_000) return;
    this.#sweptMs = now;
    const before = now - HOUR_MS - COARSE.widthMs;
    for (const [key, e] of this.#edges) if (e.lastMs < before) this.#edges.delete(key);
    for (const [id, at] of this.#proxies) if (at < before) this.#proxies.delete(id);
  }
}

function nodesOf(edges: readonly MeshGraphEdge[], from: GraphNodesSource): MeshGraphNode[] {
  const kinds = new Map<string, MeshGraphNode['kind']>();
  for (const s of from.services) kinds.set(s, 'service');
  for (const e of edges) {
    for (const id of [e.source, e.destination])
      if (!kinds.has(id)) kinds.set(id, id === UNKNOWN ? 'unknown' : 'service');
  }
  // A gateway's name is its node's, whatever else named it.
  for (const g of from.gateways) kinds.set(g, 'gateway');
  for (const g of from.otherGateways ?? []) if (kinds.has(g)) kinds.set(g, 'gateway');
  return [...kinds]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([id, kind]) => ({ id, kind }));
}
