/**
 * @module The L7 proxy engine shared by the gateway and the sidecar: route match -> filter
 * chain -> cluster (balancer + outlier detection + panic) -> an upstream attempt over keep-alive
 * pools (Http1Agent or undici), with budgeted retries on other instances, streaming both bodies
 * with backpressure, and JSON error replies. Upgrade requests (WebSocket) are tunnelled. The
 * downstream side is any server giving ProxyRequest/ProxyResponse (Http1Server or node:http).
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { Duplex, Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Endpoint } from '../client/balancers/index.js';
import type { RetryPolicy, RetryState } from '../client/resilience/index.js';
import { errors, isMeshError, type MeshError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Cluster } from './cluster.js';
import { rawReply, replyFor, sendLocalReply } from './error-reply.js';
import type { Filter, FilterExchange, LocalReply } from './filter.js';
import {
  responseHeaderList,
  stripResponseHeaders,
  upstreamRequestHeaders,
  type ResponseHeaderList,
} from './headers.js';
import type { ProxyMetrics, RouteClusterStats } from './proxy-metrics.js';
import { requestTarget, type RequestTarget } from './request-target.js';
import type { MatchInput, RouteMatcher } from './route-table.js';

/** A route as the engine runs it: built once from config (see the gateway's route builder). */
export interface ProxyRoute {
  readonly name: string;
  readonly filters: readonly Filter[];
  readonly retry: RetryPolicy;
  /** The cluster of one request (a weighted split across subsets, or the only one). */
  pickCluster(): Cluster;
}

/**
 * What the engine needs of its upstream client: undici's `dispatch` with its raw handler methods
 * (an undici Agent, or the gateway's Http1Agent).
 */
export interface UpstreamDispatcher {
  dispatch(options: Dispatcher.DispatchOptions, handler: UpstreamHandler): boolean;
}

/**
 * undici's raw handler methods, as the engine's attempts implement them. Header names and values
 * come as Buffers from undici and as latin1 strings from Http1Agent; the engine takes either.
 */
export interface UpstreamHandler {
  onConnect(abort: (err?: Error) => void): void;
  onHeaders(
    statusCode: number,
    rawHeaders: readonly (Buffer | string)[],
    resume: () => void,
    statusText: string,
  ): boolean;
  onData(chunk: Buffer): boolean;
  onComplete(trailers: readonly (Buffer | string)[] | null): void;
  onError(err: Error): void;
}

/** A downstream request's head as the engine reads it (node:http's IncomingMessage has it). */
export interface ProxyRequestHead {
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  readonly headers: IncomingHttpHeaders;
  /** Name/value pairs as they came, duplicates kept. */
  readonly rawHeaders: string[];
  readonly httpVersionMajor: number;
  readonly httpVersionMinor: number;
  readonly socket: { readonly remoteAddress?: string | undefined };
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
  end(chunk?: string): unknown;
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
}

const NO_CLUSTER = '-';

/** The retry-stopping abort of a response we throw away. */
const DISCARDED = new Error('meshwork: response discarded for a retry');

/**
 * The proxy engine. `handle` serves one request and never throws; `handleUpgrade` tunnels one
 * Upgrade request. Configured once; the per-request state is one Exchange object plus one
 * small handler object per attempt.
 */
export class ProxyEngine {
  readonly options: ProxyEngineOptions;
  readonly #proto: 'http' | 'https';
  /** Per route, per cluster: its stats (weak: a route or cluster dropped takes its entry along). */
  readonly #stats = new WeakMap<ProxyRoute, WeakMap<Cluster, RouteClusterStats>>();

  constructor(options: ProxyEngineOptions) {
    this.options = options;
    this.#proto = options.proto ?? 'http';
  }

  /** Serves one request. MUST NOT throw: every failure becomes a reply. */
  handle(req: ProxyRequest, res: ProxyResponse): void {
    const metrics = this.options.metrics;
    metrics.requestStarted();
    const exchange = new Exchange(this, req, res);
    // 'on', not 'once': a response closes once, and once() would wrap the listener per request.
    res.on('close', () => exchange.closed());
    exchange.start();
  }

  /** The metrics of a route and cluster, found by identity (no label key built per request). */
  stats(route: ProxyRoute, cluster: Cluster): RouteClusterStats {
    let byCluster = this.#stats.get(route);
    if (byCluster === undefined) this.#stats.set(route, (byCluster = new WeakMap()));
    let stats = byCluster.get(cluster);
    if (stats === undefined) {
      stats = this.options.metrics.stats(route.name, cluster.name);
      byCluster.set(cluster, stats);
    }
    return stats;
  }

  /**
   * Matches a request; answers the route, what it was matched on, and its target (the facts the
   * upstream head needs); or the 400 of a request whose Host or target is refused.
   */
  match(
    req: ProxyRequestHead,
  ): { route: ProxyRoute | undefined; input: MatchInput; target: RequestTarget } | MeshError {
    const target = requestTarget(req, req.socket.remoteAddress ?? '', this.#proto);
    if (typeof target === 'string') return errors.proxyBadRequest(target);
    const path = target.path;
    const q = path.indexOf('?');
    const input: MatchInput = {
      method: req.method ?? 'GET',
      host: target.hostname,
      path: q === -1 ? path : path.slice(0, q),
      query: q === -1 ? '' : path.slice(q + 1),
      headers: req.headers,
    };
    return { route: this.options.table.match(input), input, target };
  }

  /**
   * Tunnels an Upgrade request (WebSocket): the handshake goes to one instance through
   * node:http (undici's pools are for request/response), then bytes flow both ways until
   * either side closes. Not retried: an upgrade is not idempotent in general.
   */
  handleUpgrade(req: ProxyRequestHead, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const matched = this.match(req);
    if (isMeshError(matched)) {
      rawReply(socket, replyFor(matched));
      return;
    }
    const { route, input, target } = matched;
    if (route === undefined) {
      rawReply(socket, replyFor(notFound(input)));
      return;
    }
    const exchange = new UpgradeExchange(req, target.path);
    for (const f of route.filters) {
      const status = f.onRequest?.(exchange);
      if (status !== undefined && status !== 'continue') {
        rawReply(socket, status);
        return;
      }
    }
    const cluster = route.pickCluster();
    const go = (): void => {
      const endpoint = cluster.pick(undefined, undefined);
      if (endpoint === undefined) {
        rawReply(socket, replyFor(errors.proxyNoHealthyUpstream(cluster.name, cluster.total)));
        return;
      }
      const headers = upstreamRequestHeaders(
        req.rawHeaders,
        target,
        exchange.extra,
        exchange.remove,
        true,
      );
      const upstream = httpRequest({
        host: endpoint.address,
        port: endpoint.port,
        method: req.method,
        path: exchange.path,
        headers,
        timeout: this.options.connectTimeoutMs,
      });
      upstream.once('upgrade', (ures, usocket, uhead) => {
        cluster.outliers.report(endpoint.id, true);
        upstream.setTimeout(0);
        usocket.setTimeout(0);
        let headText = `HTTP/1.1 ${ures.statusCode ?? 101} ${ures.statusMessage ?? 'Switching Protocols'}\r\n`;
        const raw = ures.rawHeaders;
        for (let i = 0; i < raw.length; i += 2) headText += `${raw[i]}: ${raw[i + 1]}\r\n`;
        socket.write(`${headText}\r\n`);
        if (uhead.length > 0) socket.write(uhead);
        if (head.length > 0) usocket.write(head);
        usocket.on('error', () => socket.destroy());
        socket.on('close', () => usocket.destroy());
        usocket.on('close', () => socket.destroy());
        usocket.pipe(socket);
        socket.pipe(usocket);
      });
      upstream.once('response', (ures) => {
        // The upstream declined the upgrade: pass its answer on as a plain response.
        cluster.outliers.report(endpoint.id, (ures.statusCode ?? 500) < 500);
        const headers = stripResponseHeaders(ures.rawHeaders.slice());
        let headText = `HTTP/1.1 ${ures.statusCode ?? 502} ${ures.statusMessage ?? ''}\r\n`;
        for (let i = 0; i < headers.length; i += 2)
          headText += `${headers[i]}: ${headers[i + 1]}\r\n`;
        socket.write(`${headText}connection: close\r\n\r\n`);
        ures.pipe(socket);
      });
      upstream.once('timeout', () =>
        upstream.destroy(errors.proxyUpstreamTimeout(cluster.name, this.options.connectTimeoutMs)),
      );
      upstream.once('error', (err) => {
        cluster.outliers.report(endpoint.id, false);
        rawReply(
          socket,
          replyFor(
            isMeshError(err) ? err : errors.proxyUpstreamReset(cluster.name, describe(err), err),
          ),
        );
      });
      socket.once('close', () => upstream.destroy());
      upstream.end();
    };
    if (cluster.loaded) go();
    else
      this.options.ready(cluster).then(
        (found) => {
          if (found) go();
          else rawReply(socket, replyFor(notFound(input)));
        },
        (err: unknown) => rawReply(socket, replyFor(err as Error)),
      );
  }
}

/** The FilterExchange of an Upgrade request. */
class UpgradeExchange implements FilterExchange {
  readonly method: string;
  readonly headers: IncomingHttpHeaders;
  path: string;
  extra: Record<string, string> | undefined;
  remove: Set<string> | undefined;
  constructor(req: ProxyRequestHead, path: string) {
    this.method = req.method ?? 'GET';
    this.headers = req.headers;
    this.path = path;
  }
  setRequestHeader(name: string, value: string): void {
    (this.remove ??= new Set()).add(name);
    (this.extra ??= {})[name] = value;
  }
  removeRequestHeader(name: string): void {
    (this.remove ??= new Set()).add(name);
  }
}

function notFound(input: MatchInput): MeshError {
  return errors.proxyRouteNotFound(input.method, input.host, input.path);
}

function describe(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  return typeof e.code === 'string' ? e.code : String(e.message ?? err);
}

/** undici's error when the response head did not come in time. */
function isHeadersTimeout(err: unknown): boolean {
  return (err as { code?: unknown }).code === 'UND_ERR_HEADERS_TIMEOUT';
}

/** One downstream request and its attempts. */
class Exchange implements FilterExchange {
  readonly #engine: ProxyEngine;
  readonly #req: ProxyRequest;
  readonly #res: ProxyResponse;
  readonly method: string;
  readonly headers: IncomingHttpHeaders;
  path: string;
  #extra: Record<string, string> | undefined;
  #remove: Set<string> | undefined;
  #route: ProxyRoute | undefined;
  #target: RequestTarget | undefined;
  #cluster: Cluster | undefined;
  #state: RetryState | undefined;
  #stats: RouteClusterStats | undefined;
  #tried: Set<string> | undefined;
  #attempt: Attempt | undefined;
  readonly #hasBody: boolean;
  /** The response head went downstream: no more retries, failures just cut the response. */
  #responded = false;
  #finished = false;
  #upstreamHeaders: string[] | undefined;

  constructor(engine: ProxyEngine, req: ProxyRequest, res: ProxyResponse) {
    this.#engine = engine;
    this.#req = req;
    this.#res = res;
    this.method = req.method ?? 'GET';
    this.headers = req.headers;
    this.path = req.url ?? '/';
    const h = req.headers;
    // RFC 9112 6.3: a request has a body when it has Content-Length > 0 or Transfer-Encoding.
    this.#hasBody =
      h['transfer-encoding'] !== undefined ||
      (h['content-length'] !== undefined && h['content-length'] !== '0');
  }

  setRequestHeader(name: string, value: string): void {
    (this.#remove ??= new Set()).add(name);
    (this.#extra ??= {})[name] = value;
  }
  removeRequestHeader(name: string): void {
    (this.#remove ??= new Set()).add(name);
  }

  stats(): RouteClusterStats | undefined {
    return this.#stats;
  }

  start(): void {
    const matched = this.#engine.match(this.#req);
    if (isMeshError(matched)) {
      // A request refused as malformed ends its connection, as node:http and nginx do.
      this.#res.shouldKeepAlive = false;
      this.#reply(matched, NO_CLUSTER);
      return;
    }
    const { route, input, target } = matched;
    this.path = target.path;
    this.#target = target;
    if (route === undefined) {
      this.#reply(notFound(input), NO_CLUSTER);
      return;
    }
    this.#route = route;
    for (const f of route.filters) {
      const status = f.onRequest?.(this);
      if (status !== undefined && status !== 'continue') {
        this.#localReply(status, route.name, NO_CLUSTER);
        return;
      }
    }
    const cluster = route.pickCluster();
    this.#cluster = cluster;
    this.#state = route.retry.begin({ method: this.method, inherited: this.headers });
    if (cluster.loaded) this.#sendFirst(route, cluster);
    else
      this.#engine.options.ready(cluster).then(
        (found) => {
          if (found) this.#sendFirst(route, cluster);
          // Counted with the other 404s: no stats are kept for a name that leads nowhere.
          else this.#localReply(replyFor(notFound(input)), NO_CLUSTER, NO_CLUSTER);
        },
        (err: unknown) => this.#reply(err as Error, cluster.name),
      );
  }

  /** The route leads to a cluster: its stats from now on, and the first attempt. */
  #sendFirst(route: ProxyRoute, cluster: Cluster): void {
    this.#stats = this.#engine.stats(route, cluster);
    this.#send();
  }

  /** The downstream response closed: finished, or the client went away mid-way. */
  closed(): void {
    if (!this.#finished) {
      // Client disconnect: cancel the upstream request (RFC 9110 9.3: nobody reads the answer).
      this.#attempt?.cancel();
      this.#finish(0);
    }
  }

  #send(): void {
    if (this.#finished) return;
    const cluster = this.#cluster as Cluster;
    const state = this.#state as RetryState;
    const hashKey = this.headers['x-meshwork-hash-key'];
    const endpoint = cluster.pick(this.#tried, typeof hashKey === 'string' ? hashKey : undefined);
    if (endpoint === undefined) {
      this.#reply(errors.proxyNoHealthyUpstream(cluster.name, cluster.total), cluster.name);
      return;
    }
    const panic = cluster.panic;
    cluster.balancerFor(panic).started(endpoint.id);
    const tryTimeoutMs = state.tryTimeoutMs();
    // The forwarded headers are built once; only the attempt/deadline headers change per try.
    this.#upstreamHeaders ??= upstreamRequestHeaders(
      this.#req.rawHeaders,
      this.#target as RequestTarget,
      this.#extra,
      this.#remove,
    );
    const retryHeaders = state.headers();
    const headers = this.#upstreamHeaders.slice();
    for (const k in retryHeaders) headers.push(k, retryHeaders[k] as string);
    const attempt = new Attempt(this, cluster, endpoint, panic, tryTimeoutMs);
    this.#attempt = attempt;
    const idleMs = this.#engine.options.upstreamIdleTimeoutMs;
    const opts: Dispatcher.DispatchOptions = {
      origin: cluster.origin(endpoint),
      path: this.path,
      method: this.method as Dispatcher.HttpMethod,
      headers,
      body: this.#hasBody ? this.#req.body : null,
      headersTimeout: Number.isFinite(tryTimeoutMs) ? Math.max(1, tryTimeoutMs) : 0,
      bodyTimeout: idleMs,
    };
    try {
      this.#engine.options.dispatcher.dispatch(opts, attempt);
    } catch (err) {
      attempt.failed(err as Error);
    }
  }

  /** Whether another attempt may be sent: the body was not read yet (or there is none). */
  #canRetry(): boolean {
    return !this.#hasBody || !this.#req.body.readableDidRead;
  }

  /** An attempt answered with a head. Returns false when the response is discarded for a retry. */
  onHead(
    attempt: Attempt,
    status: number,
    rawHeaders: readonly (Buffer | string)[],
    message: string,
  ): boolean {
    const state = this.#state as RetryState;
    if (status === 502 || status === 503 || status === 504) {
      if (!this.#finished && this.#canRetry()) {
        const d = state.decide({ kind: 'response', status });
        if (d.retry) {
          this.#retryLater(attempt, d.delayMs);
          return false;
        }
      }
    }
    if (this.#finished) return false;
    this.#responded = true;
    const route = this.#route as ProxyRoute;
    const headers: ResponseHeaderList = responseHeaderList(rawHeaders);
    for (const f of route.filters) f.onResponseHeaders?.(headers);
    stripResponseHeaders(headers);
    try {
      // A flat name/value list: node writes it as it is (no per-header setHeader, no object).
      this.#res.writeHead(status, message, headers);
    } catch (err) {
      // A header value node refuses (invalid characters from a broken upstream).
      this.#engine.options.logger.debug({ err }, 'invalid upstream response head');
      this.#responded = false;
      attempt.cancel();
      this.#reply(
        errors.proxyUpstreamReset((this.#cluster as Cluster).name, 'invalid response head'),
        (this.#cluster as Cluster).name,
      );
      return false;
    }
    (this.#stats as RouteClusterStats).answered(status);
    return true;
  }

  /** A body chunk: false asks the upstream to pause until the downstream drains. */
  onData(chunk: Buffer): boolean {
    return this.#res.write(chunk);
  }

  onDrain(fn: () => void): void {
    this.#res.once('drain', fn);
  }

  onEnd(): void {
    this.#res.end();
    this.#finish(-1);
  }

  /** An attempt failed before the head (retry or reply), or during the body (cut). */
  onError(attempt: Attempt, err: Error): void {
    if (this.#finished) return;
    const cluster = this.#cluster as Cluster;
    if (this.#responded) {
      // Too late for a status: cut the response so the client sees it incomplete.
      this.#res.destroy(err);
      this.#finish(-1);
      return;
    }
    const state = this.#state as RetryState;
    const timedOut = isHeadersTimeout(err);
    const outcome = timedOut ? errors.clientTimeout('try', attempt.tryTimeoutMs, err) : err;
    if (this.#canRetry()) {
      const d = state.decide({ kind: 'error', error: outcome });
      if (d.retry) {
        this.#retryLater(attempt, d.delayMs);
        return;
      }
    }
    const mapped: MeshError = timedOut
      ? errors.proxyUpstreamTimeout(cluster.name, attempt.tryTimeoutMs)
      : isMeshError(err)
        ? err
        : errors.proxyUpstreamReset(cluster.name, describe(err), err);
    this.#reply(mapped, cluster.name);
  }

  #retryLater(attempt: Attempt, delayMs: number): void {
    (this.#tried ??= new Set()).add(attempt.endpoint.id);
    (this.#stats as RouteClusterStats).retried();
    if (delayMs <= 0) queueMicrotask(() => this.#send());
    else setTimeout(() => this.#send(), delayMs);
  }

  #reply(err: Error, service: string): void {
    this.#localReply(replyFor(err), this.#route?.name ?? NO_CLUSTER, service);
  }

  #localReply(reply: LocalReply, route: string, service: string): void {
    if (this.#finished) return;
    const stats = this.#stats ?? this.#engine.options.metrics.stats(route, service);
    stats.answered(reply.status);
    // The request body is not read: drop the connection after the reply rather than drain it.
    if (this.#hasBody && !this.#req.body.readableEnded) this.#res.shouldKeepAlive = false;
    sendLocalReply(this.#res, reply);
    this.#finish(-1);
  }

  /** `_code` -1: completed; 0: cut by the client. */
  #finish(_code: number): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#engine.options.metrics.requestFinished();
  }
}

/**
 * The undici handler of one attempt: forwards to its Exchange unless discarded. It speaks
 * undici's raw handler interface (onConnect/onHeaders/onData/onComplete/onError), the one
 * undici's client calls natively: a v7 controller handler (onRequestStart/onResponseStart...)
 * is wrapped per request in an UnwrapHandler that parses the raw header Buffers into an
 * object, which the engine then had to turn back into a list for the response head.
 */
class Attempt implements UpstreamHandler {
  readonly #exchange: Exchange;
  readonly #cluster: Cluster;
  readonly endpoint: Endpoint;
  readonly #panic: boolean;
  readonly tryTimeoutMs: number;
  readonly #startedAt = performance.now();
  #abort: ((err?: Error) => void) | undefined;
  /** undici's parser resume (given with the head), for backpressure. */
  #resume: (() => void) | undefined;
  #done = false;
  #discarded = false;
  #cancelled = false;
  /** The per-try deadline for the response head (undici's own timers tick at ~1 s). */
  #timer: NodeJS.Timeout | undefined;

  constructor(
    exchange: Exchange,
    cluster: Cluster,
    endpoint: Endpoint,
    panic: boolean,
    tryTimeoutMs: number,
  ) {
    this.#exchange = exchange;
    this.#cluster = cluster;
    this.endpoint = endpoint;
    this.#panic = panic;
    this.tryTimeoutMs = tryTimeoutMs;
    if (Number.isFinite(tryTimeoutMs)) {
      this.#timer = setTimeout(() => this.#timedOut(), Math.max(1, tryTimeoutMs));
    }
  }

  #timedOut(): void {
    this.#timer = undefined;
    if (this.#done) return;
    const err = Object.assign(new Error(`no response head within ${this.tryTimeoutMs} ms`), {
      code: 'UND_ERR_HEADERS_TIMEOUT',
    });
    // Later callbacks of this attempt are ignored; the exchange retries or replies 504 now.
    // failed() first: the abort below calls onError at once, which settles the attempt.
    this.#discarded = true;
    this.failed(err);
    this.#abort?.(err);
  }

  /** The downstream went away: abort the upstream request. */
  cancel(): void {
    this.#cancelled = true;
    this.#abort?.(new Error('meshwork: downstream closed'));
  }

  onConnect(abort: (err?: Error) => void): void {
    this.#abort = abort;
    if (this.#cancelled) abort(new Error('meshwork: downstream closed'));
    else if (this.#discarded) abort(DISCARDED);
  }

  onHeaders(
    statusCode: number,
    rawHeaders: readonly (Buffer | string)[],
    resume: () => void,
    statusText: string,
  ): boolean {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#discarded) return true;
    this.#resume = resume;
    const seconds = (performance.now() - this.#startedAt) / 1e3;
    this.#cluster.outliers.report(this.endpoint.id, statusCode < 500);
    this.#exchange.stats()?.latency.observe(seconds);
    if (!this.#exchange.onHead(this, statusCode, rawHeaders, statusText)) {
      this.#discarded = true;
      this.#settle();
      this.#abort?.(DISCARDED);
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.#discarded) return true;
    if (this.#exchange.onData(chunk)) return true;
    // Paused until the downstream drains (undici stops reading the upstream socket).
    this.#exchange.onDrain(this.#resume as () => void);
    return false;
  }

  onComplete(): void {
    if (this.#discarded) return;
    this.#settle();
    this.#exchange.onEnd();
  }

  onError(err: Error): void {
    if (this.#discarded) {
      this.#settle();
      return;
    }
    if (this.#cancelled) {
      // Not the instance's fault, but a half-open probe slot MUST be given back (by a report):
      // count it as failed, which keeps the instance out a while longer rather than forever.
      if (!this.#done && this.#cluster.outliers.state(this.endpoint.id) === 'half-open') {
        this.#cluster.outliers.report(this.endpoint.id, false);
      }
      this.#settle();
      return;
    }
    this.failed(err);
  }

  /** A failure of this attempt (also a synchronous dispatch throw). */
  failed(err: Error): void {
    if (this.#done) return;
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    // Connect errors and resets count against the instance; a deadline we set does too.
    this.#cluster.outliers.report(this.endpoint.id, false);
    this.#settle();
    this.#exchange.onError(this, err);
  }

  #settle(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#done) return;
    this.#done = true;
    this.#cluster.balancerFor(this.#panic).finished(this.endpoint.id);
  }
}
