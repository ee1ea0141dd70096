/**
 * @module TraceObserver: a span per hop (issue 21). At a request's start it reads the caller's
 * trace context (W3C `traceparent`/`tracestate`, else B3), decides sampling (parent-based: the
 * caller's decision; none: the ratio), and for a sampled request makes the hop's span id and
 * sends it upstream as the new `traceparent` (`tracestate` passes as it came; B3 that came in is
 * sent on updated, in the form it came). At the end it hands the span, with the HTTP semantic
 * conventions' attributes and the record's times, to a SpanSink (the OTLP exporter).
 *
 * What an unsampled request costs: a caller's unsampled context passes untouched (no span of
 * ours, so its parent-id stays right); with no context, the hop starts a trace and sends its
 * decision on (`-00`), so later hops do not sample a request the first one did not.
 */
import type { IncomingHttpHeaders } from 'node:http';
import {
  formatTraceparent,
  parseB3Multi,
  parseB3Single,
  parseTraceparent,
  parseTraceState,
  traceparentSampled,
  type B3Header,
  type TraceContext,
} from '../../protocol/trace-context.js';
import type { FinishedSpan, SpanAttributeValue, SpanSink } from '../../telemetry/tracing.js';
import type { FilterExchange } from '../filter.js';
import type { RequestObserver, RequestRecord } from '../observe.js';
import { peerIdentity } from '../peer-identity.js';
import { RandomTraceIds, type TraceIdSource } from './trace-ids.js';

/**
 * The spans a hop makes. `client`: one CLIENT span (a sidecar's outbound); `server`: one SERVER
 * span (a sidecar's inbound); `server-client`: a SERVER span for the request as received and a
 * CLIENT child for the call upstream (a gateway: Envoy's `spawn_upstream_span`, which Envoy
 * recommends for gateways, so a trace that enters at the gateway starts with a server span).
 */
export type HopSpans = 'client' | 'server' | 'server-client';

export interface TraceObserverOptions {
  readonly spans: HopSpans;
  /** Requests with no sampled or unsampled caller sampled at this ratio, 0..1. */
  readonly sampleRatio: number;
  readonly sink: SpanSink;
  /** [0, 1) (tests: seeded). Default Math.random. */
  readonly random?: () => number;
  readonly ids?: TraceIdSource;
}

/** What `start` hands `end` for a sampled request. */
interface SampledHop {
  readonly traceId: string;
  /** The hop's first span (the only one, or the SERVER span of `server-client`). */
  readonly spanId: string;
  /** `server-client`: the CLIENT span, child of spanId, whose id went upstream. */
  readonly clientSpanId: string | undefined;
  readonly parentSpanId: string | undefined;
  readonly traceState: [string, string][] | undefined;
}

/** HTTP methods the conventions name; others are `_OTHER` with the original kept. */
const KNOWN_METHODS = new Set([
  'CONNECT',
  'DELETE',
  'GET',
  'HEAD',
  'OPTIONS',
  'PATCH',
  'POST',
  'PUT',
  'TRACE',
]);

/** The caller's B3 context, from `b3` or else the `x-b3-*` headers. */
function readB3(h: IncomingHttpHeaders): B3Header | undefined {
  const single = h.b3;
  if (single !== undefined) {
    const b3 = parseB3Single(single);
    if (b3 !== undefined) return b3;
  }
  return h['x-b3-traceid'] === undefined &&
    h['x-b3-sampled'] === undefined &&
    h['x-b3-flags'] === undefined
    ? undefined
    : parseB3Multi(h);
}

/** The form of the B3 headers a request carries, if any (read when traceparent came too). */
function b3Form(h: IncomingHttpHeaders): B3Header['form'] | undefined {
  if (h.b3 !== undefined) return 'single';
  return h['x-b3-traceid'] === undefined ? undefined : 'multi';
}

/** The length of the B3 trace id a request carries (16: the 64-bit form). */
function b3TraceIdLength(h: IncomingHttpHeaders, form: B3Header['form']): number {
  const raw = form === 'single' ? h.b3 : h['x-b3-traceid'];
  return typeof raw === 'string' ? (raw.indexOf('-') < 0 ? raw.length : raw.indexOf('-')) : 0;
}

/** Host and port of an authority (`host`, `host:port`, `[v6]:port`). */
function splitAuthority(authority: string): { host: string; port: number | undefined } {
  const close = authority.lastIndexOf(']');
  const colon = authority.lastIndexOf(':');
  if (colon > close) {
    const port = Number(authority.slice(colon + 1));
    return {
      host: authority.slice(authority.startsWith('[') ? 1 : 0, close > 0 ? close : colon),
      port: Number.isInteger(port) && port > 0 && port <= 65535 ? port : undefined,
    };
  }
  return { host: close > 0 ? authority.slice(1, close) : authority, port: undefined };
}

/** See the module comment. */
export class TraceObserver implements RequestObserver {
  readonly #spans: HopSpans;
  readonly #ratio: number;
  readonly #sink: SpanSink;
  readonly #random: () => number;
  readonly #ids: TraceIdSource;

  constructor(options: TraceObserverOptions) {
    this.#spans = options.spans;
    this.#ratio = options.sampleRatio;
    this.#sink = options.sink;
    this.#random = options.random ?? Math.random;
    this.#ids = options.ids ?? new RandomTraceIds();
  }

  start(x: FilterExchange): SampledHop | undefined {
    const h = x.headers;
    const rawParent = h.traceparent;
    const sampledParent = traceparentSampled(rawParent);
    // An unsampled caller: nothing of ours to point at; its context goes on untouched.
    if (sampledParent === false) return undefined;
    if (sampledParent === true) {
      const parent = parseTraceparent(rawParent) as TraceContext;
      return this.#sampled(x, parent.traceId, parent.spanId, parseTraceState(h.tracestate));
    }
    // A malformed traceparent is ignored, with the tracestate that belonged to it (§3.3.1.1).
    const malformed = rawParent !== undefined;
    if (malformed) x.removeRequestHeader('tracestate');
    const b3 = readB3(h);
    const ctx = b3?.context;
    const sampled = b3?.sampled ?? this.#random() < this.#ratio;
    if (ctx !== undefined) {
      if (sampled) return this.#sampled(x, ctx.traceId, ctx.spanId, undefined, b3);
      // Unsampled B3 passes as it came; a malformed traceparent beside it is replaced by it.
      if (malformed)
        x.setRequestHeader('traceparent', formatTraceparent(ctx.traceId, ctx.spanId, false));
      return undefined;
    }
    // No context: this hop starts the trace, and sends its decision on either way.
    const traceId = this.#ids.traceId();
    if (sampled) return this.#sampled(x, traceId, undefined, undefined, b3);
    x.setRequestHeader('traceparent', formatTraceparent(traceId, this.#ids.spanId(), false));
    return undefined;
  }

  /** A sampled request: the hop's span ids, sent upstream. */
  #sampled(
    x: FilterExchange,
    traceId: string,
    parentSpanId: string | undefined,
    traceState: [string, string][] | undefined,
    b3?: B3Header,
  ): SampledHop {
    const spanId = this.#ids.spanId();
    const clientSpanId = this.#spans === 'server-client' ? this.#ids.spanId() : undefined;
    const upstreamId = clientSpanId ?? spanId;
    const upstreamParent = clientSpanId === undefined ? parentSpanId : spanId;
    x.setRequestHeader('traceparent', formatTraceparent(traceId, upstreamId, true));
    const form = b3?.form ?? b3Form(x.headers);
    if (form !== undefined) {
      // B3 came in (with traceparent or without): B3 goes on too, updated, for B3-only apps
      // upstream (as Envoy's Zipkin tracer does), in the form and width it came in.
      const short = b3?.shortTraceId ?? b3TraceIdLength(x.headers, form) === 16;
      const b3TraceId = short ? traceId.slice(16) : traceId;
      if (form === 'single') {
        const tail = upstreamParent === undefined ? '' : `-${upstreamParent}`;
        x.setRequestHeader('b3', `${b3TraceId}-${upstreamId}-1${tail}`);
      } else {
        x.setRequestHeader('x-b3-traceid', b3TraceId);
        x.setRequestHeader('x-b3-spanid', upstreamId);
        x.setRequestHeader('x-b3-sampled', '1');
        if (upstreamParent === undefined) x.removeRequestHeader('x-b3-parentspanid');
        else x.setRequestHeader('x-b3-parentspanid', upstreamParent);
      }
    }
    return { traceId, spanId, clientSpanId, parentSpanId, traceState };
  }

  end(record: RequestRecord, state: unknown): void {
    if (state === undefined) return;
    const hop = state as SampledHop;
    const error = record.status === 0 || record.status >= 500 || record.errorCode !== undefined;
    const name = KNOWN_METHODS.has(record.method) ? record.method : 'HTTP';
    if (this.#spans !== 'client') {
      const a = this.#attributes(record, error);
      this.#serverAttributes(record, a);
      this.#sink.export(
        this.#span(record, hop, name, error, 'server', hop.spanId, hop.parentSpanId, a),
      );
    }
    if (this.#spans !== 'server') {
      const a = this.#attributes(record, error);
      this.#clientAttributes(record, a);
      const [spanId, parentSpanId] =
        hop.clientSpanId === undefined
          ? [hop.spanId, hop.parentSpanId]
          : [hop.clientSpanId, hop.spanId];
      this.#sink.export(this.#span(record, hop, name, error, 'client', spanId, parentSpanId, a));
    }
  }

  #span(
    r: RequestRecord,
    hop: SampledHop,
    name: string,
    error: boolean,
    kind: FinishedSpan['kind'],
    spanId: string,
    parentSpanId: string | undefined,
    attributes: Record<string, SpanAttributeValue>,
  ): FinishedSpan {
    return {
      name,
      kind,
      traceId: hop.traceId,
      spanId,
      parentSpanId,
      traceState: hop.traceState,
      startTimeMs: r.startTimeMs,
      durationMs: r.durationMs,
      attributes,
      error,
    };
  }

  /** Attributes of every span of the hop: request, response, and Meshwork's own. */
  #attributes(r: RequestRecord, error: boolean): Record<string, SpanAttributeValue> {
    const a: Record<string, SpanAttributeValue> = {};
    if (KNOWN_METHODS.has(r.method)) a['http.request.method'] = r.method;
    else {
      a['http.request.method'] = '_OTHER';
      a['http.request.method_original'] = r.method;
    }
    if (r.status > 0) a['http.response.status_code'] = r.status;
    const ua = r.headers['user-agent'];
    if (typeof ua === 'string') a['user_agent.original'] = ua;
    const requestId = r.headers['x-request-id'];
    if (typeof requestId === 'string') a['meshwork.request_id'] = requestId;
    if (r.route !== undefined) a['meshwork.route'] = r.route;
    if (r.cluster !== undefined) a['meshwork.upstream_cluster'] = r.cluster;
    if (r.endpoint !== undefined)
      a['meshwork.upstream_host'] = `${r.endpoint.address}:${r.endpoint.port}`;
    a['meshwork.attempts'] = r.attempts;
    if (r.flags.length > 0) a['meshwork.response_flags'] = r.flags.join(',');
    if (r.requestBytes > 0) a['http.request.body.size'] = r.requestBytes;
    a['http.response.body.size'] = r.responseBytes;
    if (error) a['error.type'] = r.errorCode ?? r.flags[0] ?? String(r.status);
    return a;
  }

  /** A SERVER span's own attributes: the request as this hop received it. */
  #serverAttributes(r: RequestRecord, a: Record<string, SpanAttributeValue>): void {
    const q = r.path.indexOf('?');
    a['url.path'] = q < 0 ? r.path : r.path.slice(0, q);
    if (q >= 0) a['url.query'] = r.path.slice(q + 1);
    const peer = peerIdentity(r.socket);
    a['url.scheme'] = peer?.mtls === true ? 'https' : 'http';
    if (r.authority !== undefined) {
      const { host, port } = splitAuthority(r.authority);
      a['server.address'] = host;
      if (port !== undefined) a['server.port'] = port;
    }
    const remote = r.socket.remoteAddress;
    if (remote !== undefined) {
      a['client.address'] = remote;
      a['network.peer.address'] = remote;
    }
    if (peer?.principal !== undefined) a['meshwork.peer.principal'] = peer.principal;
  }

  /** A CLIENT span's own attributes: the call this hop made upstream. */
  #clientAttributes(r: RequestRecord, a: Record<string, SpanAttributeValue>): void {
    const authority = r.authority ?? r.service;
    if (authority !== undefined) {
      const { host, port } = splitAuthority(authority);
      a['server.address'] = host;
      a['server.port'] = port ?? 80;
      a['url.full'] = `http://${authority}${r.path}`;
    }
    if (r.endpoint !== undefined) {
      a['network.peer.address'] = r.endpoint.address;
      a['network.peer.port'] = r.endpoint.port;
    }
    if (r.service !== undefined) a['meshwork.upstream_service'] = r.service;
  }
}
