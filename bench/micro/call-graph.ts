/**
 * @module Micro benchmark of the call graph (issue 21): in a proxy, what counting one request on
 * its edge costs (the observers' `end`, steady state: the edge's counts exist); in the agent,
 * what one proxy's edge report costs (the JSON body parsed and validated, then added to the
 * edges' time buckets) with 1,000 proxies reporting 5 edges each over 200 services, and what
 * answering the graph costs then. Setup stays outside timing; results are kept live (mitata's
 * do_not_optimize).
 * Usage: npm run bench:call-graph [-- --quick]
 */
import { cpus, loadavg } from 'node:os';
import { do_not_optimize, measure } from 'mitata';
import { CallGraph } from '../../src/control-plane/graph/call-graph.js';
import { parseEdgeReport } from '../../src/control-plane/graph/edge-report-body.js';
import { EDGE_LATENCY_BUCKETS_MS, type ProxyEdgeReport } from '../../src/protocol/mesh/graph.js';
import {
  destinationEdgeObserver,
  EdgeCounter,
  sourceEdgeObserver,
} from '../../src/proxy/edge-counts.js';
import type { RequestRecord } from '../../src/proxy/observe.js';
import { flags } from '../lib/load.js';

const opts = flags('npm run bench:call-graph [-- --quick]', {
  quick: { default: false, help: 'shorter samples, noisier numbers' },
});
const MIN_CPU_TIME_NS = opts.quick ? 100e6 : 500e6;
const PROXIES = 1000;
const EDGES_PER_PROXY = 5;
const SERVICES = 200;

const record = (over: Partial<RequestRecord>): RequestRecord => ({
  startTimeMs: 0,
  durationMs: 3.2,
  responseHeadMs: 3,
  method: 'GET',
  path: '/',
  authority: 'payments',
  headers: { 'x-meshwork-source-service': 'orders' },
  socket: {},
  route: 'payments',
  service: 'payments',
  cluster: 'payments',
  endpoint: undefined,
  attempts: 1,
  status: 200,
  flags: [],
  errorCode: undefined,
  requestBytes: 0,
  responseBytes: 2,
  ...over,
});

async function nsPer(fn: () => unknown): Promise<number> {
  const stats = await measure(
    function* () {
      yield fn;
    },
    { min_cpu_time: MIN_CPU_TIME_NS },
  );
  return stats.avg;
}

// ---- proxy: one request counted --------------------------------------------------------------
const inbound = destinationEdgeObserver(new EdgeCounter(), 'payments');
const outbound = sourceEdgeObserver(new EdgeCounter(), 'orders');
const inRecord = record({});
const outRecord = record({ service: 'legacy' }); // no endpoint: the caller counts it
inbound.end(inRecord, undefined);
outbound.end(outRecord, undefined);
const perInbound = await nsPer(() => do_not_optimize(inbound.end(inRecord, undefined)));
const perOutbound = await nsPer(() => do_not_optimize(outbound.end(outRecord, undefined)));

// ---- agent: reports of 1,000 proxies ---------------------------------------------------------
const latency = (n: number): number[] => {
  const b = new Array<number>(EDGE_LATENCY_BUCKETS_MS.length + 1).fill(0);
  b[3] = n;
  return b;
};
const bodies: Buffer[] = [];
for (let p = 0; p < PROXIES; p++) {
  const report: ProxyEdgeReport = {
    proxy: `svc-${p % SERVICES}-${p}`,
    reporter: 'destination',
    intervalMs: 10_000,
    edges: Array.from({ length: EDGES_PER_PROXY }, (_, e) => ({
      source: `svc-${(p + e + 1) % SERVICES}`,
      destination: `svc-${p % SERVICES}`,
      requests: 100,
      errors: 1,
      latencyBuckets: latency(100),
    })),
  };
  bodies.push(Buffer.from(JSON.stringify(report)));
}
const graph = new CallGraph();
for (const b of bodies) graph.record(parseEdgeReport(b));
let i = 0;
const perReport = await nsPer(() => {
  const b = bodies[i++ % PROXIES] as Buffer;
  graph.record(parseEdgeReport(b, 'application/json'));
});
const perRecordOnly = await (async () => {
  const parsed = bodies.map((b) => parseEdgeReport(b));
  let j = 0;
  return nsPer(() => graph.record(parsed[j++ % PROXIES] as ProxyEdgeReport));
})();
const nodes = {
  services: Array.from({ length: SERVICES }, (_, s) => `svc-${s}`),
  gateways: [],
};
const perGraph60 = await nsPer(() => do_not_optimize(graph.graph(60, nodes)));
const perGraph3600 = await nsPer(() => do_not_optimize(graph.graph(3600, nodes)));
const heapMb = process.memoryUsage().heapUsed / 1e6;

const load = loadavg()[0]!.toFixed(2);
console.log(
  `\ncall-graph: ${new Date().toISOString()}, nproc ${cpus().length}, ${cpus()[0]?.model ?? '?'}, Node ${process.version}, load average ${load}`,
);
console.log('\n| what | cost |');
console.log('| --- | --: |');
console.log(`| proxy: one request counted, inbound (destination) | ${perInbound.toFixed(0)} ns |`);
console.log(`| proxy: one request counted, outbound (source) | ${perOutbound.toFixed(0)} ns |`);
console.log(
  `| agent: one report of ${EDGES_PER_PROXY} edges, parsed + recorded | ${(perReport / 1000).toFixed(1)} µs |`,
);
console.log(`| agent: the same, recorded only | ${(perRecordOnly / 1000).toFixed(1)} µs |`);
console.log(
  `| agent: GET graph, window 60 s (${graph.edgeCount} edges) | ${(perGraph60 / 1e6).toFixed(2)} ms |`,
);
console.log(`| agent: GET graph, window 3600 s | ${(perGraph3600 / 1e6).toFixed(2)} ms |`);
const reportsPerSecond = (PROXIES * 2) / 10; // both sides of each sidecar, every 10 s
console.log(
  `\n${PROXIES} sidecars reporting both sides every 10 s: ${reportsPerSecond} reports/s = ${((reportsPerSecond * perReport) / 1e7).toFixed(2)}% of a core; heap in use ${heapMb.toFixed(0)} MB`,
);
