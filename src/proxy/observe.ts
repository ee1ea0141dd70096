/**
 * @module What the proxy engine tells observers of each request (issue 21): one RequestRecord
 * when a request ends, made only when a listener has observers. Istio's standard metrics,
 * access logs, the per-edge counts of the call graph and the spans of tracing are all made from
 * it, outside the engine (telemetry is not the engine's job; the engine only says what
 * happened). An observer's `start` runs once a route matched, before every filter (a tracer sets
 * `traceparent` there), and what it returns comes back to its `end`.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Endpoint } from '../client/balancers/index.js';
import type { FilterExchange } from './filter.js';
import type { DownstreamSocket } from './peer-identity.js';

/**
 * Envoy's response flags (its access log's `%RESPONSE_FLAGS%`, Istio's `response_flags` label)
 * that this engine can tell: NR no route (or egress refused), UH no healthy upstream, UF
 * upstream connection failure (refused, reset before the head, TLS), UT upstream request timeout
 * (per try or route), UO overflow (connection pool or circuit breaking), URX the last of several
 * attempts failed (retries exhausted), RL rate limited locally, FI fault abort injected, DI fault
 * delay injected, DC the client went away before the response ended, DPE a malformed request,
 * RBAC denied by an AuthorizationPolicy, UC the upstream cut the response body.
 */
export type ResponseFlag =
  'NR' | 'UH' | 'UF' | 'UT' | 'UO' | 'URX' | 'RL' | 'FI' | 'DI' | 'DC' | 'DPE' | 'RBAC' | 'UC';

/** One finished request, as the engine saw it. */
export interface RequestRecord {
  /** Wall-clock ms, sub-ms precise (wallClockMs), when the engine got the request head. */
  readonly startTimeMs: number;
  /**
   * From the head to the response's last bytes going to the socket (or to the request's end,
   * cut), ms, sub-ms precision.
   */
  readonly durationMs: number;
  /** From the head to the response head going downstream; undefined: none went. */
  readonly responseHeadMs: number | undefined;
  readonly method: string;
  /** The request target as it came (path and query), before any rewrite. */
  readonly path: string;
  /** Host (or the absolute-form target's authority); undefined: the request had none. */
  readonly authority: string | undefined;
  /** The downstream request's headers (user-agent, x-request-id, traceparent, ...). */
  readonly headers: IncomingHttpHeaders;
  /** The downstream connection: its peer (remoteAddress) and, over mTLS, peerIdentity(socket). */
  readonly socket: DownstreamSocket;
  /** The route's name; undefined: none matched. */
  readonly route: string | undefined;
  /** The destination service (the cluster's service); undefined: the request reached none. */
  readonly service: string | undefined;
  /** The cluster's name (service, or service|subset); undefined as above. */
  readonly cluster: string | undefined;
  /** The instance of the last attempt; undefined: no attempt was sent. */
  readonly endpoint: Endpoint | undefined;
  /** Attempts sent upstream (0: answered locally). */
  readonly attempts: number;
  /** The status answered downstream; 0: none (the client left first, or the body was cut). */
  readonly status: number;
  /** Empty: none (Envoy's `-`). */
  readonly flags: readonly ResponseFlag[];
  /** The MeshError code of a local reply (MESHWORK_ERR_PROXY_...); undefined otherwise. */
  readonly errorCode: string | undefined;
  /** Request body bytes: its Content-Length (a chunked body counts 0: not read by the engine). */
  readonly requestBytes: number;
  /** Response body bytes written downstream. */
  readonly responseBytes: number;
}

/**
 * Told of every request of the listeners it is given to (ProxyEngineOptions.observers). MUST
 * NOT throw (the engine catches and drops what does, but a throwing observer loses its data).
 * `end` is called once per request, after the response ended or failed, off the response path.
 */
export interface RequestObserver {
  /** A route matched (before any filter): may set request headers; returns state for `end`. */
  start?(x: FilterExchange): unknown;
  /** `state`: what `start` returned (undefined when it did not run: no route matched). */
  end(record: RequestRecord, state: unknown): void;
}
