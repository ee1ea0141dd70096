/** @module The call graph's Prometheus metrics on the agent (meshwork_call_graph_*). */
import { Counter, Gauge, type Registry as PromRegistry } from 'prom-client';
import type { CallGraph } from './call-graph.js';
import type { GraphShareEvent } from './graph-share.js';

/** Cluster mode: the counter of the share's events, as GraphShareOptions.count takes it. */
export function registerGraphShareMetrics(
  registry: PromRegistry,
): (event: GraphShareEvent) => void {
  const counter = new Counter({
    name: 'meshwork_call_graph_share_events_total',
    help: "Cluster mode: this agent's call graph share written or not (write_failed), and other agents' shares merged, too old to merge (stale) or unreadable (invalid).",
    labelNames: ['event'],
    registers: [registry],
  });
  return (event) => counter.inc({ event });
}

/** Registers the gauges (read from `graph` at each scrape) and returns the report counter. */
export function registerCallGraphMetrics(
  registry: PromRegistry,
  graph: CallGraph,
): Counter<'result'> {
  const registers = [registry];
  new Gauge({
    name: 'meshwork_call_graph_edges',
    help: 'Edges (source -> destination) the call graph keeps (reported within the hour).',
    registers,
    collect() {
      this.set(graph.edgeCount);
    },
  });
  new Gauge({
    name: 'meshwork_call_graph_reporting_proxies',
    help: 'Proxies whose edge reports the call graph keeps (reported within the hour).',
    registers,
    collect() {
      this.set(graph.proxyCount);
    },
  });
  new Counter({
    name: 'meshwork_call_graph_dropped_edges_total',
    help: 'Edge counts of a report not kept because the call graph held its most edges.',
    registers,
    collect() {
      // The graph counts; the counter shows its count at each scrape.
      this.reset();
      this.inc(graph.droppedEdges);
    },
  });
  return new Counter({
    name: 'meshwork_call_graph_reports_total',
    help: 'Edge reports posted by proxies, by result: recorded, invalid (400), refused (429).',
    labelNames: ['result'],
    registers,
  });
}
