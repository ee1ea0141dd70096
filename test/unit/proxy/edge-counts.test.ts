// The call graph's counting in a proxy (issue 21): counts per edge, who counts a call (the
// callee's sidecar, or the caller when no sidecar saw it), the caller's name on the inbound, and
// the reporter that sends the counts and keeps them when a report fails.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../../src/core/logger.js';
import { SOURCE_SERVICE_HEADER } from '../../../src/sidecar/sidecar-proxy.js';
import {
  destinationEdgeObserver,
  EDGE_SOURCE_HEADER,
  EdgeCounter,
  latencyBucket,
  sourceEdgeObserver,
} from '../../../src/proxy/edge-counts.js';
import { EdgeReporter } from '../../../src/proxy/edge-reporter.js';
import type { RequestRecord } from '../../../src/proxy/observe.js';
import { setPeerIdentity } from '../../../src/proxy/peer-identity.js';
import type { FilterExchange } from '../../../src/proxy/filter.js';
import { EDGE_LATENCY_BUCKETS_MS, type ProxyEdgeReport } from '../../../src/protocol/mesh/graph.js';
import { FakeClock, flushMicrotasks } from '../../../src/testing/fake-clock.js';
import { requestRecord, testEndpoint } from '../../helpers/request-record.js';

const sidecarEndpoint = testEndpoint({
  address: '127.0.0.1',
  port: 1,
  meta: { 'sidecar-version': '0.1.0' },
});
const plainEndpoint = { ...sidecarEndpoint, meta: {} };

const record = (over: Partial<RequestRecord> = {}): RequestRecord =>
  requestRecord({
    startTimeMs: 0,
    durationMs: 3,
    responseHeadMs: 2,
    path: '/',
    socket: {},
    route: 'payments',
    endpoint: plainEndpoint,
    responseBytes: 2,
    ...over,
  });

const buckets = (pairs: Record<number, number>): number[] => {
  const out = new Array<number>(EDGE_LATENCY_BUCKETS_MS.length + 1).fill(0);
  for (const [i, n] of Object.entries(pairs)) out[Number(i)] = n;
  return out;
};

describe('EdgeCounter', () => {
  it('puts a duration in the first bucket whose bound holds it', () => {
    assert.equal(latencyBucket(0.2), 0);
    assert.equal(latencyBucket(0.5), 0);
    assert.equal(latencyBucket(0.51), 1);
    assert.equal(latencyBucket(60_000), 14);
    assert.equal(latencyBucket(60_001), 15);
  });

  it('counts requests, errors and latency per edge and zeroes them on drain', () => {
    const c = new EdgeCounter();
    c.count('orders', 'payments', false, 3);
    c.count('orders', 'payments', true, 300);
    c.count('orders', 'users', false, 0.1);
    assert.deepEqual(c.drain(), [
      {
        source: 'orders',
        destination: 'payments',
        requests: 2,
        errors: 1,
        latencyBuckets: buckets({ 2: 1, 8: 1 }),
      },
      {
        source: 'orders',
        destination: 'users',
        requests: 1,
        errors: 0,
        latencyBuckets: buckets({ 0: 1 }),
      },
    ]);
    assert.deepEqual(c.drain(), []);
  });

  it('drops calls on edges past its limit, and forgets idle edges', () => {
    const c = new EdgeCounter(1);
    c.count('a', 'b', false, 1);
    c.count('a', 'c', false, 1);
    assert.equal(c.dropped, 1);
    assert.equal(c.drain().length, 1);
    c.drain(); // a -> b idle for an interval: forgotten, which frees its place
    c.count('a', 'c', false, 1);
    assert.deepEqual(
      c.drain().map((e) => e.destination),
      ['c'],
    );
  });

  it('adds back the counts of a report that failed', () => {
    const c = new EdgeCounter();
    c.count('a', 'b', true, 1);
    const edges = c.drain();
    c.count('a', 'b', false, 1);
    c.add(edges);
    assert.deepEqual(c.drain(), [
      { source: 'a', destination: 'b', requests: 2, errors: 1, latencyBuckets: buckets({ 1: 2 }) },
    ]);
  });
});

describe('sourceEdgeObserver', () => {
  it('counts only the calls no sidecar saw, 5xx and unanswered as errors', () => {
    const c = new EdgeCounter();
    const o = sourceEdgeObserver(c, 'orders');
    o.end(record(), undefined); // no sidecar at the instance
    o.end(record({ status: 503, endpoint: undefined, flags: ['UH'] }), undefined); // none tried
    o.end(record({ status: 0 }), undefined); // the client left
    o.end(record({ endpoint: sidecarEndpoint }), undefined); // the callee's sidecar counts it
    o.end(record({ status: 503, endpoint: sidecarEndpoint, flags: ['UF'] }), undefined); // never reached it
    o.end(record({ service: undefined, status: 404, flags: ['NR'] }), undefined); // no destination
    const [e, ...rest] = c.drain();
    assert.deepEqual(rest, []);
    assert.deepEqual(
      [e?.source, e?.destination, e?.requests, e?.errors],
      ['orders', 'payments', 4, 3],
    );
  });

  it("names the caller in the header the sidecars read (proxy/ cannot import sidecar/'s)", () => {
    assert.equal(EDGE_SOURCE_HEADER, SOURCE_SERVICE_HEADER);
  });

  it('a gateway tags its calls with its name for the callee sidecar', () => {
    const set: [string, string][] = [];
    const x = {
      setRequestHeader: (k: string, v: string) => set.push([k, v]),
    } as unknown as FilterExchange;
    const o = sourceEdgeObserver(new EdgeCounter(), 'edge', { tagCalls: true });
    o.start?.(x);
    assert.deepEqual(set, [['x-meshwork-source-service', 'edge']]);
    assert.equal(sourceEdgeObserver(new EdgeCounter(), 'orders').start, undefined);
  });
});

describe('destinationEdgeObserver', () => {
  it('names the caller by its certificate, else by the header, else unknown', () => {
    const c = new EdgeCounter();
    const o = destinationEdgeObserver(c, 'payments');
    const tls = {};
    setPeerIdentity(tls, {
      mtls: true,
      spiffeId: 'spiffe://cluster.local/ns/default/sa/orders',
      principal: 'cluster.local/ns/default/sa/orders',
      namespace: 'default',
    });
    // The certificate wins over what the header claims.
    o.end(record({ socket: tls, headers: { 'x-meshwork-source-service': 'users' } }), undefined);
    o.end(record({ socket: tls, status: 500 }), undefined);
    o.end(record({ headers: { 'x-meshwork-source-service': 'users' } }), undefined);
    o.end(record({ headers: { 'x-meshwork-source-service': 'Not A Name!' } }), undefined);
    o.end(record(), undefined);
    assert.deepEqual(
      c.drain().map((e) => [e.source, e.destination, e.requests, e.errors]),
      [
        ['orders', 'payments', 2, 1],
        ['users', 'payments', 1, 0],
        ['unknown', 'payments', 2, 0],
      ],
    );
  });
});

describe('EdgeReporter', () => {
  it('sends one report per side with calls, every interval, and keeps a failed one', async () => {
    const clock = new FakeClock();
    const outbound = new EdgeCounter();
    const inbound = new EdgeCounter();
    const sent: ProxyEdgeReport[] = [];
    let fail = false;
    const reporter = new EdgeReporter({
      proxy: 'orders-1',
      sides: [
        { reporter: 'source', counter: outbound },
        { reporter: 'destination', counter: inbound },
      ],
      send: async (r) => {
        if (fail) throw new Error('agent away');
        sent.push(r);
      },
      intervalMs: 5_000,
      clock,
      logger: silentLogger,
    });
    reporter.start();
    clock.advance(5_000);
    await flushMicrotasks();
    assert.equal(sent.length, 0, 'nothing counted: nothing sent');

    inbound.count('users', 'orders', false, 1);
    fail = true;
    clock.advance(5_000);
    await flushMicrotasks();
    assert.equal(reporter.failures, 1);

    fail = false;
    inbound.count('users', 'orders', true, 1);
    outbound.count('orders', 'db', false, 1);
    clock.advance(5_000);
    await flushMicrotasks();
    assert.deepEqual(
      sent.map((r) => [r.proxy, r.reporter, r.intervalMs, r.edges.map((e) => e.requests)]),
      [
        ['orders-1', 'source', 5_000, [1]],
        ['orders-1', 'destination', 5_000, [2]],
      ],
    );
    reporter.close();
    inbound.count('users', 'orders', false, 1);
    clock.advance(20_000);
    await flushMicrotasks();
    assert.equal(sent.length, 2);
  });

  it('sends the last counts on stop, and waits at most the given time for the agent', async () => {
    const clock = new FakeClock();
    const counter = new EdgeCounter();
    const sent: ProxyEdgeReport[] = [];
    const hanging = new EdgeReporter({
      proxy: 'p',
      sides: [{ reporter: 'source', counter }],
      send: () => new Promise<void>(() => undefined), // an agent that never answers
      intervalMs: 10_000,
      clock,
      logger: silentLogger,
    });
    counter.count('a', 'b', false, 1);
    let stopped = false;
    void hanging.stop(1_000).then(() => (stopped = true));
    await flushMicrotasks();
    assert.equal(stopped, false);
    clock.advance(1_000);
    await flushMicrotasks();
    assert.equal(stopped, true);

    const answering = new EdgeReporter({
      proxy: 'p',
      sides: [{ reporter: 'source', counter }],
      send: async (r) => {
        sent.push(r);
      },
      intervalMs: 10_000,
      clock,
      logger: silentLogger,
    });
    counter.count('a', 'b', false, 1);
    await answering.stop(1_000);
    assert.deepEqual(
      sent.map((r) => r.edges.map((e) => e.requests)),
      [[1]],
    );
  });
});
