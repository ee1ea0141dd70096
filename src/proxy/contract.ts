/**
 * @module The proxy engine's contracts: the routes it runs, the upstream client it dispatches
 * to, the downstream request and response it serves, and its options. Types only: the engine,
 * its exchanges and the HTTP/1 transport all import them from here, and none from each other.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { RetryPolicy } from '../client/resilience/index.js';
import type { MeshError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Cluster } from './cluster.js';
import type { Filter } from './filter.js';
import type { RequestObserver } from './observe.js';
import type { DownstreamSocket } from './peer-identity.js';
import type { RouteMirror } from './filters/mirror/route-mirror.js';
import type { ProxyMetrics, RouteClusterStats } from './proxy-metrics.js';
import type { RequestTarget } from './request-target.js';
import type { UpstreamDispatcher } from './upstream-dispatcher.js';
import type { MatchInput, RouteMatcher } from './route-table.js';

/** A route as the engine runs it: built once from config (see the gateway's route builder). */
export interface ProxyRoute {
  readonly name: string;
  readonly filters: readonly Filter[];
  readonly retry: RetryPolicy;
  /** The cluster of one request (a weighted split across subsets, or the only one). */
  pickCluster(): Cluster;
  /**
   * The filters of a request sent to `cluster` (the route's, then that backend's own), when the
   * route has per-backend filters; absent: `filters` for every backend. MUST NOT throw.
   */
  filtersFor?(cluster: Cluster): readonly Filter[];
  /** Copies of some of its requests go to another cluster (filters/mirror/). */
  readonly mirror?: RouteMirror | undefined;
}

export type { UpstreamDispatcher, UpstreamHandler } from './upstream-dispatcher.js';
export type { DownstreamSocket } from './peer-identity.js';

/** A downstream request's head as the engine reads it (node:http's IncomingMessage has it). */
export interface ProxyRequestHead {
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  readonly headers: IncomingHttpHeaders;
  /** Name/value pairs as they came, duplicates kept. */
  readonly rawHeaders: string[];
  readonly httpVersionMajor: number;
  readonly httpVersionMinor: number;
  readonly socket: DownstreamSocket;
}

/**
 * A downstream request: the gateway's Http1Request, or node:http's IncomingMessage with `body`
 * set to itself. `body` is asked for only when the head announces one (Http1Request makes no
 * stream for a request without a body).
 */
export interface ProxyRequest extends ProxyRequestHead {
  readonly body: Readable;
}

/** A downstream response as the engine writes it: node:http's ServerResponse or Http1Response. */
export interface ProxyResponse {
  readonly headersSent: boolean;
  readonly destroyed: boolean;
  /** False: close the connection after this response. */
  shouldKeepAlive: boolean;
  /** `headers`: a flat `[name, value, ...]` list, written as it is. */
  writeHead(status: number, message: string | undefined, headers: string[]): unknown;
  write(chunk: Buffer): boolean;
  end(chunk?: string | Buffer): unknown;
  once(event: 'drain', fn: () => void): unknown;
  /**
   * The connection went away before the response ended (node:http also calls it after a normal
   * end, Http1Response does not; the engine acts only on the first).
   */
  on(event: 'close', fn: () => void): unknown;
  destroy(err?: Error): unknown;
}

export interface ProxyEngineOptions {
  readonly table: RouteMatcher<ProxyRoute>;
  /** Keep-alive pools to the upstreams (with the connect timeout set). */
  readonly dispatcher: UpstreamDispatcher;
  readonly metrics: ProxyMetrics;
  readonly logger: Logger;
  /**
   * Resolves once the cluster's first snapshot is in: true, or false when the route turned out
   * to lead nowhere (a host-routed service the registry does not know), which is answered 404
   * as if no route had matched. Rejects if the registry never answered.
   */
  readonly ready: (cluster: Cluster) => Promise<boolean>;
  /** The longest an upstream may stay silent in the middle of a response body; 0 = no limit. */
  readonly upstreamIdleTimeoutMs: number;
  /** Connect timeout for Upgrade tunnels (undici's pools carry their own). */
  readonly connectTimeoutMs: number;
  /** The downstream protocol, for X-Forwarded-Proto. */
  readonly proto?: 'http' | 'https';
  /**
   * The listener's own filters: run on every request a route matched, before the route's
   * (onRequest), and on every upstream response head after them (onResponseHeaders). A
   * sidecar's identity headers and (later) its inbound policy; absent: none.
   */
  readonly filters?: readonly Filter[];
  /**
   * Told of every request (observe.ts): Istio metrics, access logs, edge counts, spans. Absent
   * or empty: no record is made (nothing is spent on it per request).
   */
  readonly observers?: readonly RequestObserver[];
}

/** A request matched: its route (none: 404), what it was matched on, and its target. */
export interface MatchedRequest {
  readonly route: ProxyRoute | undefined;
  readonly input: MatchInput;
  readonly target: RequestTarget;
}

/**
 * What an exchange (a request, or an Upgrade's tunnel) asks of the engine that runs it: the
 * engine's options, the match of a request head, and the stats of a route and cluster. The
 * engine implements it; `match` and `stats` are synchronous, MUST NOT throw, and are called
 * once per request (stats: once per request that reaches a cluster).
 */
export interface ExchangeContext {
  readonly options: ProxyEngineOptions;
  /** The route of a request head, or the 400 of a request whose Host or target is refused. */
  match(req: ProxyRequestHead): MatchedRequest | MeshError;
  /** The metrics of a route and cluster, found by identity. */
  stats(route: ProxyRoute, cluster: Cluster): RouteClusterStats;
}
