/**
 * @module Access logs (issue 21): one JSON object per request, made from the engine's
 * RequestRecord after the response ended (never on the response path), sampled by a ratio (failed
 * requests always logged), and
 * handed to a sink that writes it off the hot path (telemetry/access-log-writer.ts: batches of
 * lines, one write per 64 KiB or per second). Field names follow Envoy's and Istio's JSON access log
 * (start_time, response_code, response_flags, bytes_received, upstream_host ...), so the log
 * pipelines written for Istio read them.
 */
import { parseB3TraceId, parseTraceparent } from '../protocol/trace-context.js';
import type { RequestObserver, RequestRecord } from './observe.js';
import { peerIdentity } from './peer-identity.js';
import { responseFlags } from './istio-metrics.js';

/** One access log line. `null`: the request had none (no route, no instance, no header). */
export interface AccessLogEntry {
  /** When the request head arrived (ISO 8601, UTC, ms). */
  readonly start_time: string;
  /** The W3C trace id of its `traceparent` header (or its B3 `x-b3-traceid`). */
  readonly trace_id: string | null;
  /** `source` (the sidecar's outbound, the gateway) or `destination` (the sidecar's inbound). */
  readonly reporter: 'source' | 'destination';
  /** The downstream peer's address. */
  readonly downstream_remote_address: string | null;
  /** The downstream peer's SPIFFE ID, when its connection was verified mTLS. */
  readonly source_principal: string | null;
  /** The destination service (the cluster's). */
  readonly destination_service: string | null;
  readonly route_name: string | null;
  readonly upstream_cluster: string | null;
  /** `address:port` of the instance of the last attempt. */
  readonly upstream_host: string | null;
  readonly method: string;
  readonly path: string;
  readonly authority: string | null;
  /** 0: no response went (the client left first, or the body was cut). */
  readonly response_code: number;
  /** Envoy's response flags joined by ',', '-' for none. */
  readonly response_flags: string;
  /** The MeshError code of a local reply. */
  readonly response_code_details: string | null;
  readonly upstream_attempts: number;
  /** From the request head to the end of the response, ms. */
  readonly duration: number;
  /** From the request head to the response head going downstream, ms. */
  readonly response_duration: number | null;
  /** Request body bytes (its Content-Length). */
  readonly bytes_received: number;
  /** Response body bytes sent downstream. */
  readonly bytes_sent: number;
  readonly user_agent: string | null;
  readonly request_id: string | null;
}

/** Where entries go: MUST NOT block (a buffered, asynchronous writer) and MUST NOT throw. */
export interface AccessLogSink {
  write(entry: AccessLogEntry): void;
}

export interface AccessLogOptions {
  readonly sink: AccessLogSink;
  readonly reporter: 'source' | 'destination';
  /** The share of the requests not `alwaysLogged` that are logged, 0..1 (1: every one). */
  readonly sampleRate: number;
  /** Uniform in [0, 1) (tests pass a seeded one). */
  readonly random?: () => number;
}

/**
 * The trace id of a W3C `traceparent` (parseTraceparent: W3C Trace Context, 3.2), else of a B3
 * `x-b3-traceid` (16 or 32 hex digits, logged in the width it came in), else undefined.
 */
export function traceIdOf(
  traceparent: string | string[] | undefined,
  b3: string | string[] | undefined,
): string | undefined {
  const parent = parseTraceparent(traceparent);
  if (parent !== undefined) return parent.traceId;
  // parseB3TraceId pads a 64-bit id to 32 digits; the log keeps the header's own.
  return parseB3TraceId(b3) === undefined ? undefined : (b3 as string);
}

/** 10000-01-01T00:00:00Z. */
const YEAR_10000_MS = 253_402_300_800_000;

/** The second isoTime() formatted last, and its ISO 8601 text up to the milliseconds. */
let lastSecond = Number.NaN;
let lastSecondIso = '';

/**
 * `new Date(ms).toISOString()` for a whole `ms` (Date.now()), with the date and time of its
 * second formatted once per second: a busy proxy logs many requests per second, each of them
 * otherwise a Date and a formatting.
 */
export function isoTime(ms: number): string {
  // Fractions, and years outside 1970-9999 (another length of text): formatted whole.
  if (!Number.isInteger(ms) || ms < 0 || ms >= YEAR_10000_MS) return new Date(ms).toISOString();
  const milli = ms % 1000;
  const second = ms - milli;
  if (second !== lastSecond) {
    lastSecond = second;
    lastSecondIso = new Date(second).toISOString().slice(0, 20);
  }
  return `${lastSecondIso}${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
}

const header = (v: string | string[] | undefined): string | null =>
  typeof v === 'string' ? v : (v?.[0] ?? null);

/** The entry of one request. */
export function accessLogEntry(
  r: RequestRecord,
  reporter: 'source' | 'destination',
): AccessLogEntry {
  const h = r.headers;
  const e = r.endpoint;
  return {
    start_time: isoTime(Math.floor(r.startTimeMs)),
    trace_id: traceIdOf(h.traceparent, h['x-b3-traceid']) ?? null,
    reporter,
    downstream_remote_address: r.socket.remoteAddress ?? null,
    source_principal: peerIdentity(r.socket)?.spiffeId ?? null,
    destination_service: r.service ?? null,
    route_name: r.route ?? null,
    upstream_cluster: r.cluster ?? null,
    upstream_host:
      e === undefined
        ? null
        : e.address.includes(':')
          ? `[${e.address}]:${e.port}`
          : `${e.address}:${e.port}`,
    method: r.method,
    path: r.path,
    authority: r.authority ?? null,
    response_code: r.status,
    response_flags: responseFlags(r.flags),
    response_code_details: r.errorCode ?? null,
    upstream_attempts: r.attempts,
    duration: Math.round(r.durationMs * 1000) / 1000,
    response_duration:
      r.responseHeadMs === undefined ? null : Math.round(r.responseHeadMs * 1000) / 1000,
    bytes_received: r.requestBytes,
    bytes_sent: r.responseBytes,
    user_agent: header(h['user-agent']),
    request_id: header(h['x-request-id']),
  };
}

/**
 * Whether a request is always logged, whatever the sample rate: a server error, no response
 * (status 0), or any response flag (the proxy refused, failed, retried to exhaustion...): the
 * requests an operator looks for.
 */
export function alwaysLogged(r: RequestRecord): boolean {
  return r.status >= 500 || r.status === 0 || r.flags.length > 0;
}

/**
 * An observer writing one access log entry per request it keeps: every failed one
 * (`alwaysLogged`), and `sampleRate` of the others. The decision is a comparison or two and at
 * most one random number (none at rate 1); the entry is built only for a kept request.
 * @example
 * const log = createAccessLogObserver({ sink: writer, reporter: 'source', sampleRate: 0.1 });
 * startGateway(options, logger, { observers: [log] });
 */
export function createAccessLogObserver(options: AccessLogOptions): RequestObserver {
  const { sink, reporter, sampleRate } = options;
  const random = options.random ?? Math.random;
  if (sampleRate >= 1) return { end: (r) => sink.write(accessLogEntry(r, reporter)) };
  return {
    end: (r) => {
      if (alwaysLogged(r) || random() < sampleRate) sink.write(accessLogEntry(r, reporter));
    },
  };
}
