/**
 * @module TraceObserver (issue 21): what goes upstream (traceparent, tracestate, B3) and which
 * spans come out, for each kind of caller context and sampling decision; attributes of the HTTP
 * semantic conventions. A fake exchange and sink; ids from a counter, randomness seeded.
 */
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseTraceparent } from '../../../src/protocol/trace-context.js';
import type { FilterExchange } from '../../../src/proxy/filter.js';
import type { RequestRecord } from '../../../src/proxy/observe.js';
import { setPeerIdentity } from '../../../src/proxy/peer-identity.js';
import { RandomTraceIds } from '../../../src/proxy/tracing/trace-ids.js';
import { TraceObserver, type HopSpans } from '../../../src/proxy/tracing/trace-observer.js';
import type { FinishedSpan } from '../../../src/telemetry/tracing.js';
import { requestRecord } from '../../helpers/request-record.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER = '00f067aa0ba902b7';

/** Ids 0000...1, 0000...2, ... */
function counterIds() {
  let n = 0;
  return {
    traceId: () => (++n).toString(16).padStart(32, 'a'),
    spanId: () => (++n).toString(16).padStart(16, 'b'),
  };
}

/** An exchange whose header edits are kept (what the upstream would see). */
function exchange(headers: IncomingHttpHeaders, socket: object = { remoteAddress: '10.0.0.9' }) {
  const upstream: Record<string, string | undefined> = {};
  const x: FilterExchange = {
    method: 'GET',
    socket,
    headers,
    authority: 'payments:8080',
    path: '/pay?x=1',
    setRequestHeader: (n, v) => (upstream[n] = v),
    addRequestHeader: (n, v) => (upstream[n] = v),
    removeRequestHeader: (n) => (upstream[n] = undefined),
  };
  return { x, upstream };
}

/** The record of the exchange's request, 12.5 ms long; `over` on top. */
const record = (x: FilterExchange, over: Partial<RequestRecord> = {}): RequestRecord =>
  requestRecord({
    durationMs: 12.5,
    responseHeadMs: 10,
    method: x.method,
    path: x.path,
    authority: x.authority,
    headers: x.headers,
    socket: x.socket,
    route: 'default',
    cluster: 'payments|v1',
    ...over,
  });

function observer(spans: HopSpans, sampleRatio: number, random = () => 0.5) {
  const exported: FinishedSpan[] = [];
  const o = new TraceObserver({
    spans,
    sampleRatio,
    sink: { export: (s) => exported.push(s) },
    random,
    ids: counterIds(),
  });
  /** Runs one request through start and end. */
  const run = (
    headers: IncomingHttpHeaders,
    over: Partial<RequestRecord> = {},
    socket?: object,
  ) => {
    const { x, upstream } = exchange(headers, socket);
    const state = o.start(x);
    o.end(record(x, over), state);
    return { upstream, state };
  };
  return { o, exported, run };
}

describe('TraceObserver', () => {
  it('continues a sampled W3C caller: a child span, its id upstream, tracestate kept', () => {
    const { exported, run } = observer('client', 0);
    const { upstream } = run({
      traceparent: `00-${TRACE}-${CALLER}-01`,
      tracestate: 'congo=t61rcWkgMzE',
      'user-agent': 'curl/8',
    });
    assert.equal(exported.length, 1);
    const span = exported[0] as FinishedSpan;
    assert.equal(span.kind, 'client');
    assert.equal(span.traceId, TRACE);
    assert.equal(span.parentSpanId, CALLER);
    assert.deepEqual(span.traceState, [['congo', 't61rcWkgMzE']]);
    assert.equal(upstream.traceparent, `00-${TRACE}-${span.spanId}-01`);
    assert.equal('tracestate' in upstream, false, 'tracestate passes as it came');
    assert.equal(span.name, 'GET');
    assert.equal(span.startTimeMs, 1_700_000_000_000);
    assert.equal(span.durationMs, 12.5);
    assert.equal(span.error, false);
    assert.deepEqual(span.attributes, {
      'http.request.method': 'GET',
      'http.response.status_code': 200,
      'user_agent.original': 'curl/8',
      'meshwork.route': 'default',
      'meshwork.upstream_cluster': 'payments|v1',
      'meshwork.upstream_host': '10.0.0.7:15006',
      'meshwork.attempts': 1,
      'http.response.body.size': 8,
      'server.address': 'payments',
      'server.port': 8080,
      'url.full': 'http://payments:8080/pay?x=1',
      'network.peer.address': '10.0.0.7',
      'network.peer.port': 15006,
      'meshwork.upstream_service': 'payments',
    });
  });

  it('leaves an unsampled W3C caller untouched and makes no span', () => {
    const { exported, run } = observer('client', 1);
    const { upstream, state } = run({ traceparent: `00-${TRACE}-${CALLER}-00` });
    assert.equal(state, undefined);
    assert.deepEqual(upstream, {});
    assert.equal(exported.length, 0);
  });

  it('starts a trace when none came: sampled by ratio, the decision sent on either way', () => {
    const sampled = observer('client', 0.3, () => 0.2);
    const s = sampled.run({});
    const span = sampled.exported[0] as FinishedSpan;
    assert.equal(span.parentSpanId, undefined);
    assert.equal(s.upstream.traceparent, `00-${span.traceId}-${span.spanId}-01`);

    const not = observer('client', 0.3, () => 0.3);
    const n = not.run({});
    assert.equal(not.exported.length, 0);
    assert.match(n.upstream.traceparent as string, /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
  });

  it('ignores a malformed traceparent: a new trace, and its tracestate dropped', () => {
    const { exported, run } = observer('server', 1);
    const { upstream } = run({ traceparent: `00-${TRACE}-${CALLER}-1`, tracestate: 'a=1' });
    const span = exported[0] as FinishedSpan;
    assert.notEqual(span.traceId, TRACE);
    assert.equal(span.parentSpanId, undefined);
    assert.equal(upstream.traceparent, `00-${span.traceId}-${span.spanId}-01`);
    assert.ok('tracestate' in upstream && upstream.tracestate === undefined, 'tracestate removed');
  });

  it('joins a B3 caller (single header) and sends B3 on in its form and width', () => {
    const { exported, run } = observer('client', 0);
    const { upstream } = run({ b3: `a3ce929d0e0e4736-${CALLER}-1` });
    const span = exported[0] as FinishedSpan;
    assert.equal(span.traceId, '0000000000000000a3ce929d0e0e4736');
    assert.equal(span.parentSpanId, CALLER);
    assert.equal(upstream.traceparent, `00-${span.traceId}-${span.spanId}-01`);
    assert.equal(upstream.b3, `a3ce929d0e0e4736-${span.spanId}-1-${CALLER}`);
  });

  it('joins a B3 caller (x-b3-* headers), ratio deciding when B3 deferred', () => {
    const { exported, run } = observer('server', 1);
    const { upstream } = run({ 'x-b3-traceid': TRACE, 'x-b3-spanid': CALLER });
    const span = exported[0] as FinishedSpan;
    assert.equal(span.traceId, TRACE);
    assert.equal(span.parentSpanId, CALLER);
    assert.equal(upstream['x-b3-traceid'], TRACE);
    assert.equal(upstream['x-b3-spanid'], span.spanId);
    assert.equal(upstream['x-b3-parentspanid'], CALLER);
    assert.equal(upstream['x-b3-sampled'], '1');

    const off = observer('server', 0);
    const o = off.run({ 'x-b3-traceid': TRACE, 'x-b3-spanid': CALLER, 'x-b3-sampled': '0' });
    assert.equal(off.exported.length, 0);
    assert.deepEqual(o.upstream, {}, 'an unsampled B3 caller passes untouched');
  });

  it('follows a B3 sampling state that came without ids', () => {
    const yes = observer('client', 0);
    const y = yes.run({ b3: '1' });
    const span = yes.exported[0] as FinishedSpan;
    assert.equal(span.parentSpanId, undefined);
    assert.equal(y.upstream.b3, `${span.traceId}-${span.spanId}-1`);
    const no = observer('client', 1);
    const n = no.run({ 'x-b3-sampled': '0' });
    assert.equal(no.exported.length, 0);
    assert.match(n.upstream.traceparent as string, /-00$/);
  });

  it('updates the B3 headers that came beside a traceparent (a B3 app upstream)', () => {
    const { exported, run } = observer('client', 0);
    const { upstream } = run({
      traceparent: `00-${TRACE}-${CALLER}-01`,
      'x-b3-traceid': TRACE.slice(16),
      'x-b3-spanid': CALLER,
    });
    const span = exported[0] as FinishedSpan;
    assert.equal(upstream['x-b3-traceid'], TRACE.slice(16), 'in the width it came');
    assert.equal(upstream['x-b3-spanid'], span.spanId);
    assert.equal(upstream['x-b3-parentspanid'], CALLER);
    const single = observer('client', 0).run({
      traceparent: `00-${TRACE}-${CALLER}-01`,
      b3: `${TRACE}-${CALLER}-1`,
    });
    assert.match(single.upstream.b3 as string, new RegExp(`^${TRACE}-[0-9a-f]{16}-1-${CALLER}$`));
  });

  it('prefers a valid traceparent to B3', () => {
    const { exported, run } = observer('client', 0);
    run({ traceparent: `00-${TRACE}-${CALLER}-01`, b3: `a3ce929d0e0e4736-e457b5a2e4d86bd1-0` });
    assert.equal(exported[0]?.traceId, TRACE);
  });

  it('makes a SERVER span with the request as received (inbound)', () => {
    const { exported, run } = observer('server', 0);
    const socket = { remoteAddress: '10.0.0.3' };
    setPeerIdentity(socket, { mtls: true, principal: 'cluster.local/ns/default/sa/orders' });
    run({ traceparent: `00-${TRACE}-${CALLER}-01` }, {}, socket);
    const a = exported[0]?.attributes ?? {};
    assert.equal(exported[0]?.kind, 'server');
    assert.equal(a['url.path'], '/pay');
    assert.equal(a['url.query'], 'x=1');
    assert.equal(a['url.scheme'], 'https');
    assert.equal(a['server.address'], 'payments');
    assert.equal(a['server.port'], 8080);
    assert.equal(a['client.address'], '10.0.0.3');
    assert.equal(a['network.peer.address'], '10.0.0.3');
    assert.equal(a['meshwork.peer.principal'], 'cluster.local/ns/default/sa/orders');
  });

  it('makes a SERVER span and its CLIENT child at a gateway; the child goes upstream', () => {
    const { exported, run } = observer('server-client', 0);
    const { upstream } = run({ traceparent: `00-${TRACE}-${CALLER}-01` });
    const [server, client] = exported as [FinishedSpan, FinishedSpan];
    assert.equal(server.kind, 'server');
    assert.equal(server.parentSpanId, CALLER);
    assert.equal(client.kind, 'client');
    assert.equal(client.parentSpanId, server.spanId);
    assert.equal(upstream.traceparent, `00-${TRACE}-${client.spanId}-01`);
  });

  it('marks failures: status ERROR and error.type from the error code, flag or status', () => {
    const { exported, run } = observer('client', 1);
    run({}, { status: 503, flags: ['UH'], errorCode: 'MESHWORK_ERR_PROXY_NO_HEALTHY_UPSTREAM' });
    run({}, { status: 502, flags: ['URX'] });
    run({}, { status: 500 });
    run({}, { status: 0, flags: ['DC'] });
    run({}, { status: 404 });
    assert.deepEqual(
      exported.map((s) => [
        s.error,
        s.attributes['error.type'],
        s.attributes['meshwork.response_flags'],
      ]),
      [
        [true, 'MESHWORK_ERR_PROXY_NO_HEALTHY_UPSTREAM', 'UH'],
        [true, 'URX', 'URX'],
        [true, '500', undefined],
        [true, 'DC', 'DC'],
        [false, undefined, undefined],
      ],
    );
  });

  it('names unknown methods _OTHER and keeps the original', () => {
    const { exported, o } = observer('client', 1);
    const { x } = exchange({});
    const state = o.start(x);
    o.end(record(x, { method: 'PURGE' }), state);
    assert.equal(exported[0]?.name, 'HTTP');
    assert.equal(exported[0]?.attributes['http.request.method'], '_OTHER');
    assert.equal(exported[0]?.attributes['http.request.method_original'], 'PURGE');
  });

  it('samples about the ratio of requests with no context (seeded, 20000 requests)', () => {
    // A seeded LCG: the count is binomial(20000, 0.1): sd = 42; 4 sd = 170.
    let seed = 12345;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const { exported, run } = observer('client', 0.1, random);
    for (let i = 0; i < 20_000; i++) run({});
    assert.ok(Math.abs(exported.length - 2_000) < 170, String(exported.length));
  });
});

describe('TraceObserver on any headers (property)', () => {
  const hex = (n: number) => fc.stringMatching(new RegExp(`^[0-9a-f]{${n}}$`));
  const near = fc
    .tuple(
      fc.constantFrom('00', '01', 'ff', 'zz'),
      hex(32),
      hex(16),
      fc.constantFrom('00', '01', '1'),
    )
    .map(([v, t, s, f]) => `${v}-${t}-${s}-${f}`);
  const header = (valid: fc.Arbitrary<string>) =>
    fc.option(fc.oneof(valid, fc.string({ maxLength: 60 })), { nil: undefined });

  it('never throws; sends a valid traceparent or leaves a valid one untouched; spans chain', () => {
    fc.assert(
      fc.property(
        header(near),
        header(fc.tuple(hex(16), hex(16)).map(([t, s]) => `${t}-${s}-1`)),
        header(hex(32)),
        header(hex(16)),
        header(fc.constantFrom('0', '1', 'd')),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.constantFrom<HopSpans>('client', 'server', 'server-client'),
        (traceparent, b3, traceId, spanId, sampled, ratio, spans) => {
          const headers: IncomingHttpHeaders = {};
          if (traceparent !== undefined) headers.traceparent = traceparent;
          if (b3 !== undefined) headers.b3 = b3;
          if (traceId !== undefined) headers['x-b3-traceid'] = traceId;
          if (spanId !== undefined) headers['x-b3-spanid'] = spanId;
          if (sampled !== undefined) headers['x-b3-sampled'] = sampled;
          const { exported, run } = observer(spans, ratio, () => 0.5);
          const { upstream } = run(headers);
          const sent = 'traceparent' in upstream ? upstream.traceparent : traceparent;
          const ctx = parseTraceparent(sent);
          const incoming = parseTraceparent(traceparent);
          // Either a valid context goes upstream, or the request had only an unsampled B3
          // context, which passes as it came.
          if (ctx === undefined) assert.ok(incoming === undefined && exported.length === 0);
          if (exported.length > 0) {
            const last = exported.at(-1) as FinishedSpan;
            assert.equal(ctx?.sampled, true);
            assert.equal(ctx?.traceId, last.traceId);
            assert.equal(ctx?.spanId, last.spanId, 'upstream continues the last span');
            assert.equal(exported.length, spans === 'server-client' ? 2 : 1);
            if (incoming?.sampled === true)
              assert.equal(exported[0]?.parentSpanId, incoming.spanId);
          } else if (incoming !== undefined) {
            assert.equal(sent, traceparent, 'an unsampled caller passes untouched');
          }
        },
      ),
      { numRuns: 3000, seed: 21 },
    );
  });
});

describe('RandomTraceIds', () => {
  it('makes lowercase hex ids of the right length, different each time', () => {
    const ids = new RandomTraceIds();
    const seen = new Set<string>();
    for (let i = 0; i < 2_000; i++) {
      const t = ids.traceId();
      const s = ids.spanId();
      assert.match(t, /^[0-9a-f]{32}$/);
      assert.match(s, /^[0-9a-f]{16}$/);
      seen.add(t).add(s);
    }
    assert.equal(seen.size, 4_000);
  });
});
