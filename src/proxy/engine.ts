/**
 * @module ProxyEngine: the L7 proxy engine shared by the gateway and the sidecar: route match ->
 * filter chain -> cluster (balancer + outlier detection + panic) -> an upstream attempt over
 * keep-alive pools (Http1Agent or undici), with budgeted retries on other instances, streaming
 * both bodies with backpressure, and JSON error replies. One Exchange (exchange.ts) per request,
 * one Attempt (attempt.ts) per try; Upgrade requests (WebSocket) are tunnelled
 * (upgrade-tunnel.ts). The downstream side is any server giving ProxyRequest/ProxyResponse
 * (Http1Server or node:http); the contracts are in contract.ts.
 */
import type { Duplex } from 'node:stream';
import { errors, type MeshError } from '../core/errors.js';
import type { Cluster } from './cluster.js';
import type {
  ExchangeContext,
  MatchedRequest,
  ProxyEngineOptions,
  ProxyRequest,
  ProxyRequestHead,
  ProxyResponse,
  ProxyRoute,
} from './contract.js';
import { Exchange } from './exchange.js';
import type { RouteClusterStats } from './proxy-metrics.js';
import { requestTarget } from './request-target.js';
import type { MatchInput } from './route-table.js';
import { tunnelUpgrade } from './upgrade-tunnel.js';

/**
 * The proxy engine. `handle` serves one request and never throws; `handleUpgrade` tunnels one
 * Upgrade request. Configured once; the per-request state is one Exchange object plus one
 * small handler object per attempt.
 */
export class ProxyEngine implements ExchangeContext {
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
  match(req: ProxyRequestHead): MatchedRequest | MeshError {
    const target = requestTarget(req, req.socket.remoteAddress ?? '', this.#proto);
    if (typeof target === 'string') return errors.proxyBadRequest(target);
    const path = target.path;
    const q = path.indexOf('?');
    const input: MatchInput = {
      method: req.method ?? 'GET',
      host: target.hostname,
      authority: target.host,
      path: q === -1 ? path : path.slice(0, q),
      query: q === -1 ? '' : path.slice(q + 1),
      headers: req.headers,
    };
    return { route: this.options.table.match(input), input, target };
  }

  /**
   * Tunnels an Upgrade request (WebSocket) to one instance (see upgrade-tunnel.ts). Not retried:
   * an upgrade is not idempotent in general.
   */
  handleUpgrade(req: ProxyRequestHead, socket: Duplex, head: Buffer): void {
    tunnelUpgrade(this, req, socket, head);
  }
}
