/**
 * @module requestObservers (issue 21): which observers a proxy side gets for the parts that are
 * on, and in what order (Istio metrics, access log, the caller's own, tracing, edge counts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import type { AccessLogEntry } from '../../../src/proxy/access-log.js';
import { EDGE_SOURCE_HEADER, EdgeCounter } from '../../../src/proxy/edge-counts.js';
import type { FilterExchange } from '../../../src/proxy/filter.js';
import { IstioMetrics } from '../../../src/proxy/istio-metrics.js';
import type { RequestObserver } from '../../../src/proxy/observe.js';
import { requestObservers } from '../../../src/proxy/observer-lists.js';
import { TraceObserver } from '../../../src/proxy/tracing/trace-observer.js';
import type { FinishedSpan } from '../../../src/telemetry/tracing.js';
import { requestRecord } from '../../helpers/request-record.js';

/** Every part on; what they write goes to the arrays returned. */
function allOn(service = 'orders') {
  const istio = new IstioMetrics(new Registry(), {
    component: 'sidecar',
    workload: { name: service, namespace: 'default' },
  });
  const logged: AccessLogEntry[] = [];
  const spans: FinishedSpan[] = [];
  const counter = new EdgeCounter();
  const extra: RequestObserver = { end: () => undefined };
  const parts = {
    istio,
    accessLog: { sink: { write: (e: AccessLogEntry) => logged.push(e) }, sampleRate: 1 },
    extra: [extra],
    tracing: { sink: { export: (s: FinishedSpan) => spans.push(s) }, sampleRatio: 1 },
    edges: { counter, service },
  };
  return { parts, istio, logged, spans, counter, extra };
}

/** Runs one request through `observers` as the engine does: every start, then every end. */
function run(observers: readonly RequestObserver[]): Record<string, string | undefined> {
  const headers: Record<string, string> = {};
  const x: FilterExchange = {
    method: 'GET',
    socket: { remoteAddress: '127.0.0.1' },
    headers: {},
    authority: 'payments',
    path: '/pay',
    setRequestHeader: (n, v) => (headers[n] = v),
    addRequestHeader: (n, v) => (headers[n] = v),
    removeRequestHeader: (n) => delete headers[n],
  };
  const states = observers.map((o) => o.start?.(x));
  observers.forEach((o, i) => o.end(requestRecord({ headers: x.headers }), states[i]));
  return headers;
}

describe('requestObservers', () => {
  it('gives nothing when every part is off, and only the extra observers when they come alone', () => {
    assert.deepEqual(requestObservers('source', {}), []);
    const extra: RequestObserver = { end: () => undefined };
    assert.deepEqual(requestObservers('destination', { extra: [extra] }), [extra]);
    assert.deepEqual(requestObservers('source', { istio: undefined, accessLog: undefined }), []);
  });

  // The record reached no sidecar: the caller's side counts the call; the callee's side, with no
  // verified or named caller, counts it from `unknown`.
  for (const [reporter, service, spanKind, caller] of [
    ['source', 'orders', 'client', 'orders'],
    ['destination', 'payments', 'server', 'unknown'],
  ] as const) {
    it(`orders the ${reporter} side: Istio metrics, access log, extra, ${spanKind} spans, edges`, () => {
      const { parts, istio, logged, spans, counter, extra } = allOn(service);
      const list = requestObservers(reporter, parts);
      assert.equal(list.length, 5);
      assert.equal(list[0], istio[reporter]);
      assert.equal(list[2], extra);
      assert.ok(list[3] instanceof TraceObserver);
      run(list);
      assert.deepEqual(
        logged.map((e) => e.reporter),
        [reporter],
      );
      assert.deepEqual(
        spans.map((s) => s.kind),
        [spanKind],
      );
      assert.deepEqual(
        [...istio.series()].map((s) => s.labels.reporter),
        [reporter],
      );
      assert.deepEqual(
        counter.drain().map((e) => [e.source, e.destination, e.requests]),
        [[caller, 'payments', 1]],
      );
    });
  }

  it("names the caller to the callee's sidecar only when asked to (the gateway's tagCalls)", () => {
    const counter = new EdgeCounter();
    const edges = { counter, service: 'edge' };
    assert.equal(run(requestObservers('source', { edges }))[EDGE_SOURCE_HEADER], undefined);
    const tagged = run(requestObservers('source', { edges: { ...edges, tagCalls: true } }));
    assert.equal(tagged[EDGE_SOURCE_HEADER], 'edge');
  });

  it('leaves out each part that is off, keeping the order of the others', () => {
    const { parts, istio, extra } = allOn();
    const noLog = requestObservers('source', { ...parts, accessLog: undefined, edges: undefined });
    assert.equal(noLog.length, 3);
    assert.equal(noLog[0], istio.source);
    assert.equal(noLog[1], extra);
    assert.ok(noLog[2] instanceof TraceObserver);
    const noIstio = requestObservers('source', { ...parts, istio: undefined, tracing: undefined });
    assert.equal(noIstio.length, 3);
    assert.equal(noIstio[1], extra);
  });
});
