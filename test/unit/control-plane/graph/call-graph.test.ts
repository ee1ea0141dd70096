// The call graph's aggregation (issue 21): windows over time buckets, p99 from the merged
// histograms of several proxies, edges aging out, and the bounds on edges and proxies.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CallGraph } from '../../../../src/control-plane/graph/call-graph.js';
import { isMeshError, ERROR_CODES } from '../../../../src/core/errors.js';
import {
  EDGE_LATENCY_BUCKETS_MS,
  type EdgeCounts,
  type ProxyEdgeReport,
} from '../../../../src/protocol/mesh/graph.js';
import { FakeClock } from '../../../../src/testing/fake-clock.js';

const NO_NODES = { services: [], gateways: [] };

/** An edge with `requests` calls, all in the latency bucket of `bound` ms. */
function edge(
  source: string,
  destination: string,
  requests: number,
  errors = 0,
  bound = 5,
): EdgeCounts {
  const latencyBuckets = new Array<number>(EDGE_LATENCY_BUCKETS_MS.length + 1).fill(0);
  latencyBuckets[EDGE_LATENCY_BUCKETS_MS.indexOf(bound)] = requests;
  return { source, destination, requests, errors, latencyBuckets };
}

const report = (proxy: string, ...edges: EdgeCounts[]): ProxyEdgeReport => ({
  proxy,
  reporter: 'destination',
  intervalMs: 10_000,
  edges,
});

/** A clock at the start of a 10 s bucket (and of a 60 s one). */
const clockAtBucketStart = (): FakeClock => new FakeClock(Date.UTC(2026, 0, 1, 12, 0, 0));

describe('CallGraph', () => {
  it('sums the reports of the window into requests, rps and error rate', () => {
    const clock = clockAtBucketStart();
    const graph = new CallGraph({ clock });
    for (let i = 0; i < 6; i++) {
      clock.advance(10_000);
      graph.record(report('p1', edge('orders', 'payments', 100, 5)));
    }
    const g = graph.graph(60, NO_NODES);
    assert.equal(g.windowSeconds, 60);
    assert.equal(g.edges.length, 1);
    const e = g.edges[0]!;
    assert.deepEqual(
      [e.source, e.destination, e.requests, e.errors],
      ['orders', 'payments', 600, 30],
    );
    assert.equal(e.errorRate, 0.05);
    // The window reaches back to a bucket boundary 60 s ago: 600 calls over 60 s.
    assert.equal(e.rps, 10);
  });

  it('leaves out what came before the window, and keeps it for a longer one', () => {
    const clock = clockAtBucketStart();
    const graph = new CallGraph({ clock });
    graph.record(report('p1', edge('orders', 'payments', 1000)));
    clock.advance(120_000);
    graph.record(report('p1', edge('orders', 'payments', 10)));
    assert.equal(graph.graph(60, NO_NODES).edges[0]!.requests, 10);
    assert.equal(graph.graph(300, NO_NODES).edges[0]!.requests, 1010);
    // Past 10 minutes the 60 s buckets answer.
    clock.advance(600_000);
    graph.record(report('p1', edge('orders', 'payments', 1)));
    assert.equal(graph.graph(3600, NO_NODES).edges[0]!.requests, 1011);
    assert.equal(graph.graph(60, NO_NODES).edges[0]!.requests, 1);
  });

  it('adds up the edge of several proxies, p99 from the merged histograms', () => {
    const clock = clockAtBucketStart();
    const graph = new CallGraph({ clock });
    clock.advance(5_000);
    // 990 fast calls from one proxy, 10 slow ones from another: the 99th is still fast.
    graph.record(report('p1', edge('orders', 'payments', 990, 0, 5)));
    graph.record(report('p2', edge('orders', 'payments', 10, 10, 1_000)));
    let e = graph.graph(60, NO_NODES).edges[0]!;
    assert.deepEqual([e.requests, e.errors, e.p99Ms], [1000, 10, 5]);
    // One more slow call tips the 99th percentile into the slow bucket.
    graph.record(report('p2', edge('orders', 'payments', 1, 0, 1_000)));
    e = graph.graph(60, NO_NODES).edges[0]!;
    assert.equal(e.p99Ms, 1_000);
    assert.equal(graph.proxyCount, 2);
  });

  it('counts calls longer than every bound at the last bound', () => {
    const clock = clockAtBucketStart();
    const graph = new CallGraph({ clock });
    const slow = edge('a', 'b', 3);
    const buckets = new Array<number>(EDGE_LATENCY_BUCKETS_MS.length + 1).fill(0);
    buckets[EDGE_LATENCY_BUCKETS_MS.length] = 3;
    graph.record(report('p1', { ...slow, latencyBuckets: buckets }));
    assert.equal(graph.graph(60, NO_NODES).edges[0]!.p99Ms, 60_000);
  });

  it('ages out the edges of proxies that stopped reporting', () => {
    const clock = clockAtBucketStart();
    const graph = new CallGraph({ clock });
    graph.record(report('p1', edge('orders', 'payments', 10)));
    graph.record(report('p2', edge('users', 'payments', 10)));
    clock.advance(90_000);
    graph.record(report('p2', edge('users', 'payments', 10)));
    assert.deepEqual(
      graph.graph(60, NO_NODES).edges.map((e) => e.source),
      ['users'],
    );
    assert.equal(graph.edgeCount, 2);
    // After an hour and more, p1's edge and p1 itself are forgotten.
    clock.advance(3_600_000);
    graph.record(report('p2', edge('users', 'payments', 1)));
    assert.equal(graph.edgeCount, 1);
    assert.equal(graph.proxyCount, 1);
    assert.equal(graph.graph(3600, NO_NODES).edges.length, 1);
  });

  it('names the catalog services, gateways and unknown callers as nodes', () => {
    const clock = clockAtBucketStart();
    const graph = new CallGraph({ clock });
    graph.record(report('p1', edge('unknown', 'payments', 1), edge('edge', 'orders', 2)));
    const g = graph.graph(60, { services: ['orders', 'payments', 'users'], gateways: ['edge'] });
    assert.deepEqual(g.nodes, [
      { id: 'edge', kind: 'gateway' },
      { id: 'orders', kind: 'service' },
      { id: 'payments', kind: 'service' },
      { id: 'unknown', kind: 'unknown' },
      { id: 'users', kind: 'service' },
    ]);
    assert.deepEqual(
      g.edges.map((e) => `${e.source}->${e.destination}`),
      ['edge->orders', 'unknown->payments'],
    );
    assert.equal(g.generatedAt, new Date(clock.now()).toISOString());
  });

  it('keeps at most maxEdges edges and refuses reports from more than maxProxies proxies', () => {
    const clock = clockAtBucketStart();
    const graph = new CallGraph({ clock, maxEdges: 2, maxProxies: 2 });
    graph.record(report('p1', edge('a', 'b', 1), edge('a', 'c', 1), edge('a', 'd', 1)));
    assert.equal(graph.edgeCount, 2);
    assert.equal(graph.droppedEdges, 1);
    graph.record(report('p2', edge('a', 'b', 1)));
    assert.throws(
      () => graph.record(report('p3', edge('a', 'b', 1))),
      (err) => isMeshError(err, ERROR_CODES.MESH_EDGE_REPORTERS_FULL),
    );
    // A proxy already known still reports.
    graph.record(report('p1', edge('a', 'b', 1)));
    assert.equal(graph.graph(60, NO_NODES).edges.find((e) => e.destination === 'b')!.requests, 3);
  });
});
