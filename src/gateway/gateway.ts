/**
 * @module startGateway: server-side discovery. Wires the discovery cache (one watch per
 * service, no registry call per request), the route table and clusters, the proxy engine, the
 * edge listener (limits on head size and on malformed requests), the admin listener (/metrics,
 * /health/ready, /health/live) and a graceful drain. Stateless: run as many side by side as
 * you like.
 */
import { createServer } from 'node:http';
import type { AddressInfo, Server, Socket } from 'node:net';
import { isDeepStrictEqual } from 'node:util';
import { Counter } from 'prom-client';
import { Agent } from 'undici';
import { createRegistryClient } from '../client/registry-client.js';
import { ServiceDiscovery } from '../client/discovery.js';
import type { Clock } from '../core/clock.js';
import { errors } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { INSTANCE_STATUSES } from '../core/types.js';
import type { Cluster } from '../proxy/cluster.js';
import {
  ProxyEngine,
  type ProxyRequest,
  type ProxyRequestHead,
  type ProxyResponse,
  type UpstreamDispatcher,
} from '../proxy/engine.js';
import { Http1Agent, isHttp1AgentSupported } from '../proxy/http1-agent.js';
import { Http1Server, isHttp1ServerSupported } from '../proxy/http1-server.js';
import { rawReply, replyFor } from '../proxy/error-reply.js';
import { ProxyMetrics } from '../proxy/proxy-metrics.js';
import { createMetricsRegistry } from '../telemetry/metrics.js';
import { buildGatewayRoutes, type GatewayRoutes } from './gateway-routes.js';
import { GATEWAY_RESTART_KEYS, type GatewayOptions } from './options.js';

export interface RunningGateway {
  /** `http://host:port` of the proxy listener. */
  readonly url: string;
  /** `http://host:port` of the admin listener. */
  readonly adminUrl: string;
  readonly engine: ProxyEngine;
  readonly clusters: () => Iterable<Cluster>;
  /**
   * Swaps in a new, already validated config: a new route table built whole (clusters whose
   * settings did not change are kept, with their endpoints and ejections). Keys that need new
   * listeners or pools (GATEWAY_RESTART_KEYS) keep their old values until a restart.
   */
  reload(next: GatewayOptions): GatewayReload;
  /** Counts and logs a reload whose config was refused (the running one stays). */
  reloadFailed(err: unknown): void;
  /**
   * Stops accepting, lets in-flight requests finish until `drainTimeoutMs`, then closes
   * everything. Resolves true when every request finished in time.
   */
  close(): Promise<boolean>;
}

export interface GatewayReload {
  /** Keys whose new values apply only after a restart. */
  readonly restartNeeded: readonly (typeof GATEWAY_RESTART_KEYS)[number][];
}

export interface GatewayDeps {
  readonly clock?: Clock;
  readonly random?: () => number;
}

function splitHostPort(hp: string): { host: string; port: number } {
  const i = hp.lastIndexOf(':');
  return { host: hp.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(hp.slice(i + 1)) };
}

async function listen(server: Server, hp: string): Promise<string> {
  const { host, port } = splitHostPort(hp);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address() as AddressInfo;
  return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
}

/** node's parser error codes -> the status we answer (the rest are 400). */
export const PARSE_STATUS: Readonly<Record<string, number>> = {
  HPE_HEADER_OVERFLOW: 431,
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 413,
  // The head did not come within headersTimeout (Http1Server's code, then node:http's).
  ERR_HEADERS_TIMEOUT: 408,
  ERR_HTTP_REQUEST_TIMEOUT: 408,
};

const ALL_STATUSES = { status: INSTANCE_STATUSES };

/** The upstream client `options.upstreamClient` asks for (undici where native is unsupported). */
function createUpstreamClient(
  options: GatewayOptions,
): UpstreamDispatcher & { close(): Promise<void> } {
  if (options.upstreamClient === 'native' && isHttp1AgentSupported()) {
    return new Http1Agent({
      connectTimeoutMs: options.connectTimeoutMs,
      keepAliveTimeoutMs: options.upstreamKeepAliveMs,
      connections: options.upstreamConnections,
    });
  }
  return new Agent({
    keepAliveTimeout: options.upstreamKeepAliveMs,
    connect: { timeout: options.connectTimeoutMs },
    ...(options.upstreamConnections > 0 ? { connections: options.upstreamConnections } : {}),
  });
}

/**
 * The downstream server `options.downstreamServer` asks for (node:http where native is
 * unsupported). Both speak node:http's events: 'request', 'upgrade', 'clientError'.
 */
function createDownstreamServer(
  options: GatewayOptions,
  onRequest: (req: ProxyRequest, res: ProxyResponse) => void,
): Server & { closeIdleConnections(): void } {
  // Streams may be long (a 1 GB upload): only the head has a deadline.
  const headersTimeoutMs = 30_000;
  if (options.downstreamServer === 'native' && isHttp1ServerSupported()) {
    const server = new Http1Server({
      maxHeaderSize: options.maxHeaderBytes,
      headersTimeoutMs,
      keepAliveTimeoutMs: options.downstreamKeepAliveMs,
    });
    server.on('request', onRequest);
    return server;
  }
  return createServer(
    {
      maxHeaderSize: options.maxHeaderBytes,
      requestTimeout: 0,
      headersTimeout: headersTimeoutMs,
      // The engine applies the Host rules (RFC 9112 3.2) and answers in the gateway's error
      // shape; node:http's own check answers a bare 400, and not to an Upgrade request at all.
      requireHostHeader: false,
      keepAliveTimeout: options.downstreamKeepAliveMs,
    },
    // node:http's request is itself the stream of its body.
    (req, res) => onRequest(Object.assign(req, { body: req }), res),
  );
}

export async function startGateway(
  options: GatewayOptions,
  logger: Logger,
  deps: GatewayDeps = {},
): Promise<RunningGateway> {
  const log = logger.child({ component: 'gateway' });
  const registry = createRegistryClient({ addresses: options.registry });
  const discovery = new ServiceDiscovery({
    registry,
    ...(deps.clock === undefined ? {} : { clock: deps.clock }),
  });
  const onCluster = (cluster: Cluster): void => {
    const cached = discovery.cached(cluster.service, ALL_STATUSES);
    if (cached !== undefined) cluster.update(cached);
    cluster.onChange((c) => {
      if (c.panic)
        log.warn({ cluster: c.name, available: c.available, total: c.total }, 'panic mode');
    });
  };
  const build = (o: GatewayOptions, previous?: GatewayRoutes): GatewayRoutes =>
    buildGatewayRoutes(o, {
      clock: deps.clock,
      random: deps.random,
      onCluster,
      // A kept cluster's service may have been forgotten at the reload (host routes are made on
      // first use): watch it again.
      onKept: (cluster) => discovery.cached(cluster.service),
      previous: previous?.clusters,
    });
  // The live config: a reload builds a complete new route table and swaps it in whole.
  let current = options;
  let routes = build(options);
  discovery.on('change', (service, instances) => {
    for (const c of routes.clusters.values()) if (c.service === service) c.update(instances);
  });
  discovery.on('stale', (service, error) =>
    log.warn({ service, err: error.message }, 'registry watch lost: serving last-known instances'),
  );
  const clusters = (): Iterable<Cluster> => routes.clusters.values();

  const metricsRegistry = createMetricsRegistry();
  const metrics = new ProxyMetrics(metricsRegistry, 'gateway', clusters);
  const dispatcher = createUpstreamClient(options);
  const engine = new ProxyEngine({
    table: { match: (input) => routes.table.match(input) },
    dispatcher,
    metrics,
    logger: log,
    upstreamIdleTimeoutMs: options.upstreamIdleTimeoutMs,
    connectTimeoutMs: options.connectTimeoutMs,
    ready: async (cluster) => {
      // A Host may name any service: one the registry does not know (no instance at all) is a
      // 404, and its route, cluster and watch go at once, so made-up Hosts leave nothing behind.
      // The watch goes too, unless another cluster (a rule's subset) still needs it.
      const drop = (): void => {
        if (routes.dropHostOnly(cluster)) discovery.forget(cluster.service);
      };
      const hostOnly = routes.hostOnly(cluster);
      try {
        await discovery.ready(cluster.service);
      } catch (err) {
        if (hostOnly) drop(); // the registry did not answer: start afresh on the next request
        throw err;
      }
      const instances = discovery.cached(cluster.service, ALL_STATUSES) ?? [];
      if (hostOnly && instances.length === 0) {
        drop();
        return false;
      }
      if (!cluster.loaded) cluster.update(instances);
      return true;
    },
  });

  let draining = false;
  const sockets = new Set<Socket>();
  // Malformed requests per client address in the current second; over the limit, connections
  // from that address are dropped without an answer (a cheap brake on parser fuzzing).
  let malformed = new Map<string, number>();
  const window = setInterval(() => (malformed = new Map()), 1_000);
  window.unref();

  const server = createDownstreamServer(options, (req, res) => {
    if (draining) res.shouldKeepAlive = false;
    engine.handle(req, res);
  });
  server.on('upgrade', (req: ProxyRequestHead, socket: Socket, head: Buffer) =>
    engine.handleUpgrade(req, socket, head),
  );
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    metrics.connectionOpened();
    socket.once('close', () => {
      sockets.delete(socket);
      metrics.connectionClosed();
    });
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const address = socket.remoteAddress ?? '';
    const count = (malformed.get(address) ?? 0) + 1;
    malformed.set(address, count);
    if (count > current.maxMalformedPerSecond || !socket.writable || err.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const reply = replyFor(errors.proxyBadRequest(err.code ?? 'malformed request'));
    rawReply(socket, { ...reply, status: PARSE_STATUS[err.code ?? ''] ?? reply.status });
  });

  const admin = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/metrics') {
      metricsRegistry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': metricsRegistry.contentType });
          res.end(text + discovery.metricsText());
        },
        (err: unknown) => {
          res.writeHead(500);
          res.end(String(err));
        },
      );
      return;
    }
    if (path === '/health/ready' || path === '/ready') {
      const ready = !draining;
      res.writeHead(ready ? 200 : 503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: ready ? 'ready' : 'draining' }));
      return;
    }
    if (path === '/health/live' || path === '/live') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"status":"live"}');
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code: 'MESHWORK_ERR_API_ROUTE_NOT_FOUND', path } }));
  });

  // Watch every routed service from the start, so the first request finds a warm cache.
  const warm = (): void => {
    for (const c of routes.clusters.values()) discovery.cached(c.service);
  };
  warm();
  const reloads = new Counter({
    name: 'meshwork_gateway_config_reloads_total',
    help: 'Config reloads (SIGHUP), by result: applied, or invalid (the running config stays)',
    labelNames: ['result'],
    registers: [metricsRegistry],
  });

  const reload = (next: GatewayOptions): GatewayReload => {
    const restartNeeded = GATEWAY_RESTART_KEYS.filter(
      (k) => !isDeepStrictEqual(next[k], current[k]),
    );
    const before = new Set([...routes.clusters.values()].map((c) => c.service));
    routes = build(next, routes);
    current = next;
    warm();
    // Services no route leads to any more: stop their watches (host routes watch again on use).
    for (const c of routes.clusters.values()) before.delete(c.service);
    for (const service of before) discovery.forget(service);
    reloads.inc({ result: 'applied' });
    log.info({ routes: next.routes.length, restartNeeded }, 'config reloaded');
    if (restartNeeded.length > 0)
      log.warn({ keys: restartNeeded }, 'config reloaded: these keys take effect on restart');
    return { restartNeeded };
  };
  const reloadFailed = (err: unknown): void => {
    reloads.inc({ result: 'invalid' });
    log.error({ err }, 'config reload refused: the running config stays');
  };

  const url = await listen(server, options.listen);
  let adminUrl: string;
  try {
    adminUrl = await listen(admin, options.admin);
  } catch (err) {
    server.close();
    throw err;
  }
  log.info({ url, adminUrl, routes: options.routes.length }, 'gateway listening');

  let closing: Promise<boolean> | undefined;
  const close = (): Promise<boolean> =>
    (closing ??= (async () => {
      draining = true;
      server.close();
      server.closeIdleConnections();
      const deadline = Date.now() + current.drainTimeoutMs;
      // Finish what is in flight; keep-alive connections close after their current response.
      while (metrics.activeRequests > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
        server.closeIdleConnections();
      }
      const clean = metrics.activeRequests === 0;
      if (!clean) log.warn({ inFlight: metrics.activeRequests }, 'drain deadline passed');
      for (const s of sockets) s.destroy();
      clearInterval(window);
      discovery.close();
      await Promise.allSettled([dispatcher.close(), new Promise((r) => admin.close(r))]);
      return clean;
    })());

  return { url, adminUrl, engine, clusters, reload, reloadFailed, close };
}
