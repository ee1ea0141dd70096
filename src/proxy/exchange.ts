/**
 * @module Exchange: one downstream request through the proxy engine, and the FilterExchange its
 * route's filters see. It matches the request, runs the filters, sends attempts to the
 * cluster's instances with budgeted retries, streams the answer downstream with backpressure,
 * and turns every failure into a reply (error-reply.ts).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import type { RetryState } from '../client/resilience/index.js';
import { errors, isMeshError, type MeshError } from '../core/errors.js';
import { Attempt, type AttemptOwner } from './attempt.js';
import type { Cluster } from './cluster.js';
import type {
  DownstreamSocket,
  ExchangeContext,
  ProxyRequest,
  ProxyResponse,
  ProxyRoute,
} from './contract.js';
import { replyFor, routeNotFound, sendLocalReply, upstreamFailure } from './error-reply.js';
import { isDelay, type FilterExchange, type LocalReply, type ResponseTap } from './filter.js';
import { ObservedRequest } from './observed-request.js';
import {
  addRequestHeaderExtra,
  responseHeaderList,
  stripResponseHeaders,
  upstreamRequestHeaders,
  type RequestHeaderExtras,
  type ResponseHeaderList,
} from './headers.js';
import type { RouteClusterStats } from './proxy-metrics.js';
import type { RequestTarget } from './request-target.js';
import type { MatchInput } from './route-table.js';

/** A listener without filters of its own (shared: no array per request). */
const NO_FILTERS: ProxyRoute['filters'] = [];

/** The route and cluster label of a request that reached none. */
const NO_CLUSTER = '-';

/** undici's error when the response head did not come in time. */
function isHeadersTimeout(err: unknown): boolean {
  return (err as { code?: unknown }).code === 'UND_ERR_HEADERS_TIMEOUT';
}

/**
 * One downstream request and its attempts. Made by the engine per request: `start()` once,
 * then `closed()` when the downstream response closes.
 */
export class Exchange implements FilterExchange, AttemptOwner {
  readonly #engine: ExchangeContext;
  readonly #req: ProxyRequest;
  readonly #res: ProxyResponse;
  readonly method: string;
  readonly socket: DownstreamSocket;
  readonly headers: IncomingHttpHeaders;
  path: string;
  #extra: RequestHeaderExtras | undefined;
  #remove: Set<string> | undefined;
  #route: ProxyRoute | undefined;
  #filters: ProxyRoute['filters'] = [];
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
  /** How many of #filters are the route's (the rest are the cluster's). */
  #routeFilters = 0;
  /** A fault delay holding the request. */
  #delay: ReturnType<typeof setTimeout> | undefined;
  /** Admitted by the cluster's limits (released when finished). */
  #admitted = false;
  /** Holds one of the cluster's maxRetries slots (released when finished). */
  #retrySlot = false;
  /** Filters watching the response body (a cache filling itself). */
  #taps: ResponseTap[] | undefined;
  /** What the listener's observers are told (undefined: it has none). */
  readonly #observed: ObservedRequest | undefined;

  constructor(engine: ExchangeContext, req: ProxyRequest, res: ProxyResponse) {
    this.#engine = engine;
    this.#req = req;
    this.#res = res;
    this.method = req.method ?? 'GET';
    this.socket = req.socket;
    this.headers = req.headers;
    this.path = req.url ?? '/';
    const h = req.headers;
    // RFC 9112 6.3: a request has a body when it has Content-Length > 0 or Transfer-Encoding.
    this.#hasBody =
      h['transfer-encoding'] !== undefined ||
      (h['content-length'] !== undefined && h['content-length'] !== '0');
    const observers = engine.options.observers;
    if (observers !== undefined && observers.length > 0)
      this.#observed = new ObservedRequest(observers, this.path);
  }

  get authority(): string | undefined {
    return this.#target?.host;
  }

  setRequestHeader(name: string, value: string): void {
    (this.#remove ??= new Set()).add(name);
    (this.#extra ??= {})[name] = value;
  }
  addRequestHeader(name: string, value: string): void {
    this.#extra = addRequestHeaderExtra(this.#extra, name, value);
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
      this.#reply(routeNotFound(input), NO_CLUSTER);
      return;
    }
    this.#route = route;
    // Picked before the filters: a backend may carry its own (header edits per destination).
    const cluster = route.pickCluster();
    const observed = this.#observed;
    if (observed !== undefined) {
      observed.service = cluster.service;
      observed.cluster = cluster.name;
      observed.started(this, route.name);
    }
    const filters = route.filtersFor?.(cluster) ?? route.filters;
    // The listener's own filters first (the sidecar's source identity, policy hooks).
    for (const f of this.#engine.options.filters ?? NO_FILTERS) {
      const status = f.onRequest?.(this);
      if (status !== undefined && status !== 'continue' && !isDelay(status)) {
        this.#localReply(status, route.name, NO_CLUSTER);
        return;
      }
    }
    this.#routeFilters = filters.length;
    this.#filters = cluster.chain(filters);
    this.#runFilters(0, route, cluster, input);
  }

  /** Runs the filters from `from` on: a reply ends the request, a delay holds it a while. */
  #runFilters(from: number, route: ProxyRoute, cluster: Cluster, input: MatchInput): void {
    const filters = this.#filters;
    for (let i = from; i < filters.length; i++) {
      const status = (filters[i] as (typeof filters)[number]).onRequest?.(this);
      if (status === undefined || status === 'continue') continue;
      // Replies of the cluster's own filters (rate limit, cache) count under its name.
      const service = i < this.#routeFilters ? NO_CLUSTER : cluster.name;
      if (isDelay(status)) {
        this.#observed?.flag('DI');
        this.#delay = setTimeout(() => {
          this.#delay = undefined;
          if (this.#finished) return;
          if (status.reply !== undefined) this.#localReply(status.reply, route.name, service);
          else this.#runFilters(i + 1, route, cluster, input);
        }, status.delayMs);
        return;
      }
      this.#localReply(status, route.name, service);
      return;
    }
    this.#proceed(route, cluster, input);
  }

  /** The filters let the request through: the cluster's limits, then the first attempt. */
  #proceed(route: ProxyRoute, cluster: Cluster, input: MatchInput): void {
    this.#cluster = cluster;
    const limits = cluster.limits;
    if (limits !== undefined) {
      if (!limits.admit()) {
        cluster.counts.overflow++;
        this.#reply(limits.overflow(cluster.name), cluster.name);
        return;
      }
      this.#admitted = true;
    }
    this.#state = route.retry.begin({ method: this.method, inherited: this.headers });
    if (cluster.loaded) this.#sendFirst(route, cluster);
    else
      this.#engine.options.ready(cluster).then(
        (found) => {
          if (found) this.#sendFirst(route, cluster);
          else {
            // Counted with the other 404s: no stats are kept for a name that leads nowhere, and
            // observers see no service either (made-up Hosts must not grow their series).
            const observed = this.#observed;
            if (observed !== undefined) observed.service = observed.cluster = undefined;
            this.#localReply(replyFor(routeNotFound(input)), NO_CLUSTER, NO_CLUSTER);
          }
        },
        (err: unknown) => this.#reply(err as Error, cluster.name),
      );
  }

  /** The route leads to a cluster: its stats from now on, and the first attempt. */
  #sendFirst(route: ProxyRoute, cluster: Cluster): void {
    this.#stats = this.#engine.stats(route, cluster);
    const mirror = route.mirror;
    if (mirror !== undefined && mirror.pick()) {
      if (this.#hasBody) mirror.cluster.counts.mirrorSkipped++;
      else mirror.send(this.#engine.options.dispatcher, this.method, this.path, this.#headers());
    }
    this.#send();
  }

  /** The forwarded headers, built once; only the attempt/deadline headers change per try. */
  #headers(): string[] {
    return (this.#upstreamHeaders ??= upstreamRequestHeaders(
      this.#req.rawHeaders,
      this.#target as RequestTarget,
      this.#extra,
      this.#remove,
    ));
  }

  /** Whether a retry the policy allows may go: the cluster's maxRetries in flight. */
  #retryAllowed(): boolean {
    const limits = this.#cluster?.limits;
    if (limits === undefined || this.#retrySlot) return true;
    if (limits.tryRetry()) {
      this.#retrySlot = true;
      return true;
    }
    (this.#cluster as Cluster).counts.retryOverflow++;
    return false;
  }

  /** The retry budget refused a retry the policy wanted (counted per cluster). */
  #budgetRefused(): void {
    if (this.#cluster !== undefined) this.#cluster.counts.retryBudgetExhausted++;
  }

  /** The downstream response closed: finished, or the client went away mid-way. */
  closed(): void {
    if (this.#delay !== undefined) clearTimeout(this.#delay);
    if (!this.#finished) {
      // Client disconnect: cancel the upstream request (RFC 9110 9.3: nobody reads the answer).
      this.#observed?.flag('DC');
      this.#attempt?.cancel();
      this.#finish(0);
    }
  }

  #send(): void {
    if (this.#finished) return;
    const cluster = this.#cluster as Cluster;
    const state = this.#state as RetryState;
    const endpoint = cluster.pick(
      this.#tried,
      cluster.hashKey(this.headers, this.#target as RequestTarget),
    );
    if (endpoint === undefined) {
      this.#reply(errors.proxyNoHealthyUpstream(cluster.name, cluster.total), cluster.name);
      return;
    }
    const panic = cluster.panic;
    cluster.balancerFor(panic).started(endpoint.id);
    const tryTimeoutMs = state.tryTimeoutMs();
    const retryHeaders = state.headers();
    const headers = this.#headers().slice();
    for (const k in retryHeaders) headers.push(k, retryHeaders[k] as string);
    const attempt = new Attempt(this, cluster, endpoint, panic, tryTimeoutMs);
    this.#attempt = attempt;
    const observed = this.#observed;
    if (observed !== undefined) {
      observed.endpoint = endpoint;
      observed.attempts++;
    }
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
      (cluster.dispatcherOf(endpoint) ?? this.#engine.options.dispatcher).dispatch(opts, attempt);
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
    if ((this.#route as ProxyRoute).retry.retriesOnStatus(status)) {
      if (!this.#finished && this.#canRetry()) {
        const d = state.decide({ kind: 'response', status });
        if (d.retry && this.#retryAllowed()) {
          this.#retryLater(attempt, d.delayMs);
          return false;
        }
        if (d.reason === 'budget-exhausted') this.#budgetRefused();
      }
    }
    if (this.#finished) return false;
    this.#responded = true;
    const headers: ResponseHeaderList = responseHeaderList(rawHeaders);
    for (const f of this.#filters) f.onResponseHeaders?.(headers);
    for (const f of this.#engine.options.filters ?? NO_FILTERS) f.onResponseHeaders?.(headers);
    stripResponseHeaders(headers);
    for (const f of this.#filters) {
      const tap = f.onResponse?.(this, status, headers);
      if (tap !== undefined) (this.#taps ??= []).push(tap);
    }
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
    this.#observed?.responded(status);
    return true;
  }

  /** A body chunk: false asks the upstream to pause until the downstream drains. */
  onData(chunk: Buffer): boolean {
    const taps = this.#taps;
    if (taps !== undefined) for (const t of taps) t.onData(chunk);
    if (this.#observed !== undefined) this.#observed.responseBytes += chunk.length;
    return this.#res.write(chunk);
  }

  onDrain(fn: () => void): void {
    this.#res.once('drain', fn);
  }

  onEnd(): void {
    const taps = this.#taps;
    if (taps !== undefined) for (const t of taps) t.onEnd();
    this.#observed?.lastBytes();
    this.#res.end();
    this.#finish(-1);
  }

  /** An attempt failed before the head (retry or reply), or during the body (cut). */
  onError(attempt: Attempt, err: Error): void {
    if (this.#finished) return;
    const cluster = this.#cluster as Cluster;
    if (this.#responded) {
      // Too late for a status: cut the response so the client sees it incomplete.
      this.#observed?.flag('UC');
      this.#res.destroy(err);
      this.#finish(-1);
      return;
    }
    const state = this.#state as RetryState;
    const timedOut = isHeadersTimeout(err);
    const outcome = timedOut ? errors.clientTimeout('try', attempt.tryTimeoutMs, err) : err;
    if (this.#canRetry()) {
      const d = state.decide({ kind: 'error', error: outcome });
      if (d.retry && this.#retryAllowed()) {
        this.#retryLater(attempt, d.delayMs);
        return;
      }
      if (d.reason === 'budget-exhausted') this.#budgetRefused();
    }
    const mapped: MeshError = timedOut
      ? errors.proxyUpstreamTimeout(cluster.name, attempt.tryTimeoutMs)
      : upstreamFailure(cluster.name, err);
    // Envoy's URX: the last of several attempts failed.
    if (this.#observed !== undefined && this.#observed.attempts > 1) this.#observed.flag('URX');
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
    this.#observed?.lastBytes();
    const bytes = sendLocalReply(this.#res, reply);
    const observed = this.#observed;
    if (observed !== undefined) {
      observed.replied(reply);
      observed.responseBytes += bytes;
    }
    this.#finish(-1);
  }

  /** `_code` -1: completed; 0: cut by the client. */
  #finish(_code: number): void {
    if (this.#finished) return;
    this.#finished = true;
    const limits = this.#cluster?.limits;
    if (limits !== undefined) {
      if (this.#admitted) limits.release();
      if (this.#retrySlot) limits.releaseRetry();
    }
    this.#engine.options.metrics.requestFinished();
    if (this.#observed !== undefined) {
      const length = Number(this.headers['content-length']);
      this.#observed.ended(this, Number.isFinite(length) ? length : 0);
    }
  }
}
