/**
 * @module startGateway: server-side discovery. Wires the discovery cache (one watch per
 * service, no registry call per request), the route table and clusters, the proxy engine, the
 * edge listener (limits on head size and on malformed requests), the admin listener (/metrics,
 * /health/ready, /health/live) and a graceful drain. Stateless: run as many side by side as
 * you like. In mesh mode (options.mesh) the routes and endpoints come from the control plane's
 * snapshots (a SnapshotFeed) instead of the file's routes and discovery; the admin listener
 * adds /config_dump; with `mtls: auto` and a CA at the agent the gateway gets a mesh identity
 * (a leaf for its service account, renewed, following root rotations) and originates mTLS to
 * sidecars as a sidecar does (proxy/mesh-transport.ts).
 */
import { createServer } from 'node:http';
import { isDeepStrictEqual } from 'node:util';
import { Counter, Gauge } from 'prom-client';
import { createRegistryClient } from '../client/registry-client.js';
import { registryTlsOf } from '../client/tls-files.js';
import { ServiceDiscovery } from '../client/discovery.js';
import { systemClock, type Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { INSTANCE_STATUSES } from '../core/types.js';
import type { RequestObserver } from '../proxy/observe.js';
import type { Cluster } from '../proxy/cluster.js';
import type { UpstreamDispatcher } from '../proxy/contract.js';
import { ProxyEngine } from '../proxy/engine.js';
import { NATIVE_HTTP1_SUPPORT, type NativeHttp1Support } from '../proxy/http1/native-support.js';
import { IstioMetrics } from '../proxy/istio-metrics.js';
import { createAccessLogWriter, registerAccessLogMetrics } from '../telemetry/access-log-writer.js';
import { ProxyMetrics, snapshotVersionGauge } from '../proxy/proxy-metrics.js';
import { chooseTransports } from '../proxy/transport-choice.js';
import {
  createUpstreamClient,
  listen,
  ProxyListener,
  UpstreamPools,
} from '../proxy/proxy-listener.js';
import { createMetricsRegistry } from '../telemetry/metrics.js';
import type { MeshSnapshot } from '../protocol/mesh/snapshot.js';
import { RouteTable } from '../proxy/route-table.js';
import type { UpstreamPoolSettings } from '../proxy/snapshot-routes.js';
import {
  startMeshMtls,
  type MeshIdentityOptions,
  type MeshMtls,
} from '../proxy/mesh-identity/mesh-identity.js';
import {
  createMeshTransports,
  meshTlsCount,
  type MeshTransports,
} from '../proxy/mesh-transport.js';
import { buildGatewayRoutes, type GatewayRoutes } from './gateway-routes.js';
import { buildMeshRoutes } from './mesh-routes.js';
import { gatewayIdentity } from './mesh-feed.js';
import { EdgeCounter } from '../proxy/edge-counts.js';
import { requestObservers } from '../proxy/observer-lists.js';
import { EDGE_REPORT_STOP_WAIT_MS, EdgeReporter } from '../proxy/edge-reporter.js';
import { clusterHealth } from '../proxy/cluster-health.js';
import type { SnapshotFeed } from './snapshot-feed.js';
import { GATEWAY_RESTART_KEYS, gatewayServiceAccount, type GatewayOptions } from './options.js';

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
   * Mesh mode: builds a snapshot's route table whole and swaps it in, or throws (naming each
   * route or cluster and field it cannot run) and leaves the table in force. The feed calls it.
   */
  applySnapshot(snapshot: MeshSnapshot): void;
  /** Mesh mode: the snapshot in force, or undefined before the first. */
  snapshot(): MeshSnapshot | undefined;
  /** Mesh mTLS: the identity in force, or why there is none (always off outside mesh mode). */
  readonly mtls: MeshMtls;
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
  /**
   * Whether the native HTTP/1 server and client can run (default: this runtime's self-test,
   * NATIVE_HTTP1_SUPPORT); tests pass a refusal to run the gateway on its fallback.
   */
  readonly nativeHttp1?: NativeHttp1Support;
  /** Mesh mode: where snapshots come from (required with options.mesh). */
  readonly snapshotFeed?: SnapshotFeed;
  /** Told of every request (proxy/observe.ts): Istio metrics, access logs, spans. */
  readonly observers?: readonly RequestObserver[];
  /** Overrides of the identity manager (tests: a short backoff, a seeded random source). */
  readonly identity?: Partial<
    Pick<MeshIdentityOptions, 'backoff' | 'rotationJitterMs' | 'random' | 'makeCsr'>
  >;
}

const ALL_STATUSES = { status: INSTANCE_STATUSES };

export async function startGateway(
  options: GatewayOptions,
  logger: Logger,
  deps: GatewayDeps = {},
): Promise<RunningGateway> {
  const log = logger.child({ component: 'gateway' });
  const registry = createRegistryClient({
    addresses: options.registry,
    tls: registryTlsOf(options),
    ...(options.token === undefined ? {} : { token: options.token }),
  });
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
  const mesh = options.mesh;
  if (mesh && deps.snapshotFeed === undefined)
    throw new TypeError('startGateway: mesh mode needs deps.snapshotFeed');
  /** Mesh mode: the snapshot in force. */
  let inForce: MeshSnapshot | undefined;
  const build = (o: GatewayOptions, previous?: GatewayRoutes): GatewayRoutes =>
    mesh ? buildMesh(o, previous) : buildFile(o, previous);
  const buildMesh = (o: GatewayOptions, previous?: GatewayRoutes): GatewayRoutes =>
    inForce === undefined
      ? {
          table: new RouteTable({ rules: [] }),
          clusters: new Map(),
          hostOnly: () => false,
          dropHostOnly: () => false,
        }
      : buildMeshRoutes(inForce, o, {
          clock: deps.clock,
          random: deps.random,
          previous: previous?.clusters,
          dispatcherFor,
          endpointTransport: meshTransports?.endpointTransport,
        });
  const buildFile = (o: GatewayOptions, previous?: GatewayRoutes): GatewayRoutes =>
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
  const chosen = chooseTransports(
    options,
    deps.nativeHttp1 ?? NATIVE_HTTP1_SUPPORT,
    'gateway',
    metricsRegistry,
    log,
  );
  // Istio's standard metrics (issue 21): an ingress gateway reports as reporter="source" (it is
  // the client of the services it routes to), its workload the gateway's name.
  const istio =
    options.istioMetrics === 'off'
      ? undefined
      : new IstioMetrics(metricsRegistry, {
          component: 'gateway',
          workload: { name: options.name, namespace: options.namespace },
        });
  // Access logs (issue 21): off by default at the gateway; reporter="source", as its metrics.
  const accessLog =
    options.accessLog === 'off' ? undefined : createAccessLogWriter(options.accessLog);
  if (accessLog !== undefined) registerAccessLogMetrics(metricsRegistry, 'gateway', accessLog);
  const dispatcher = createUpstreamClient(options, chosen);
  // Mesh mode: one more pool per pool settings a DestinationRule sets (connectionPool).
  const timeoutPools = new UpstreamPools(options, chosen);
  const dispatcherFor = (settings: UpstreamPoolSettings): UpstreamDispatcher =>
    timeoutPools.for(settings);
  // Mesh mTLS (issue 20): outbound only (clients reach the gateway in plaintext), counted.
  const countTls = meshTlsCount(
    metricsRegistry,
    'gateway',
    'mTLS outcomes per new outbound connection to a sidecar: mtls|resumed|handshake_failed|identity_mismatch',
    log,
  );
  const mtlsGauge = new Gauge({
    name: 'meshwork_gateway_mtls_enabled',
    help: '1 while the gateway originates mesh mTLS to sidecars with its own certificate (mesh mode, --mtls auto, a CA at the agent)',
    registers: [metricsRegistry],
  });
  mtlsGauge.set(0);
  /** Mesh mode, once the identity is in force: how endpoints of sidecars are reached. */
  let meshTransports: MeshTransports | undefined;
  let mtls: MeshMtls = { state: 'off', reason: 'not in mesh mode' };
  // Mesh mode: the call graph's edges from this gateway (reporter source), named by the gateway
  // for the callees' sidecars too (proxy/edge-counts.ts).
  const edgeCounter = mesh && options.edgeReportIntervalMs > 0 ? new EdgeCounter() : undefined;
  const edgeReporter =
    edgeCounter === undefined
      ? undefined
      : new EdgeReporter({
          proxy: gatewayIdentity(options).id,
          sides: [{ reporter: 'source', counter: edgeCounter }],
          send: (report) => registry.meshReportEdges(report),
          health: () => clusterHealth(clusters()),
          intervalMs: options.edgeReportIntervalMs,
          clock: deps.clock ?? systemClock,
          logger: log,
        });
  const observers = requestObservers('source', {
    istio,
    accessLog:
      accessLog === undefined
        ? undefined
        : { sink: accessLog, sampleRate: options.accessLogSample, random: deps.random },
    extra: deps.observers,
    edges: edgeCounter && { counter: edgeCounter, service: options.name, tagCalls: true },
  });
  const engine = new ProxyEngine({
    table: { match: (input) => routes.table.match(input) },
    dispatcher,
    metrics,
    logger: log,
    upstreamIdleTimeoutMs: options.upstreamIdleTimeoutMs,
    connectTimeoutMs: options.connectTimeoutMs,
    observers,
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
  const listener = new ProxyListener(
    engine,
    metrics,
    {
      maxHeaderBytes: options.maxHeaderBytes,
      downstreamKeepAliveMs: options.downstreamKeepAliveMs,
      maxMalformedPerSecond: () => current.maxMalformedPerSecond,
    },
    chosen,
  );

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
    if (path === '/config_dump' && mesh) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          name: options.name,
          namespace: options.namespace,
          version: inForce?.version ?? null,
          appliedAt: appliedAt ?? null,
          snapshot: inForce ?? null,
          // The leaf's public facts (never its key).
          mtls:
            mtls.state === 'on'
              ? { state: 'on', ...mtls.identity.info() }
              : { state: 'off', reason: mtls.reason },
        }),
      );
      return;
    }
    if (path === '/health/ready' || path === '/ready') {
      // Mesh mode: not before a snapshot is in force (until then every request is a 404).
      const ready = !draining && (!mesh || inForce !== undefined);
      res.writeHead(ready ? 200 : 503, { 'content-type': 'application/json' });
      const status = ready ? 'ready' : draining ? 'draining' : 'no-snapshot';
      res.end(JSON.stringify({ status }));
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

  /**
   * Lets go of everything the gateway holds, in this order: the listener (its connections), the
   * call graph's last report, the watches, the snapshot feed, the identity, then the pools, the
   * admin server, the registry client and the access log together. The one way out: close after
   * the drain, and a start that failed (what was not started yet closes as a no-op).
   */
  const release = async (): Promise<void> => {
    listener.destroy();
    await edgeReporter?.stop(EDGE_REPORT_STOP_WAIT_MS);
    discovery.close();
    await deps.snapshotFeed?.close();
    if (mtls.state === 'on') mtls.identity.close();
    meshTransports?.close();
    await Promise.allSettled([
      dispatcher.close(),
      timeoutPools.close(),
      new Promise((r) => admin.close(r)),
      registry.close(),
      accessLog?.close(),
    ]);
  };

  // Watch every routed service from the start, so the first request finds a warm cache.
  const warm = (): void => {
    if (mesh) return; // endpoints come with the snapshots
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
    try {
      routes = build(next, routes);
    } catch (err) {
      // Mesh mode: the snapshot in force does not build under the new options.
      reloadFailed(err);
      return { restartNeeded: [] };
    }
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

  const snapshots = new Counter({
    name: 'meshwork_gateway_snapshots_total',
    help: 'Mesh snapshots by result: applied, or refused (NACKed; the table in force stays)',
    labelNames: ['result'],
    registers: [metricsRegistry],
  });
  const snapshotVersion = snapshotVersionGauge(metricsRegistry);
  let appliedAt: number | undefined;
  const applySnapshot = (snapshot: MeshSnapshot): void => {
    if (!mesh) throw new TypeError('applySnapshot: the gateway is not in mesh mode');
    let next: GatewayRoutes;
    try {
      next = buildMeshRoutes(snapshot, current, {
        clock: deps.clock,
        random: deps.random,
        previous: routes.clusters,
        dispatcherFor,
        endpointTransport: meshTransports?.endpointTransport,
      });
    } catch (err) {
      snapshots.inc({ result: 'refused' });
      log.warn({ version: snapshot.version, err }, 'snapshot refused: the one in force stays');
      throw err;
    }
    routes = next;
    inForce = snapshot;
    appliedAt = (deps.clock ?? systemClock).now();
    // A root rotation: the new bundle at once, a leaf from the new root soon.
    if (mtls.state === 'on') mtls.identity.applyTrust(snapshot.ca);
    snapshots.inc({ result: 'applied' });
    snapshotVersion.reset();
    snapshotVersion.set({ version: snapshot.version }, snapshot.index);
    log.info(
      { version: snapshot.version, routes: snapshot.routes.length, clusters: next.clusters.size },
      'snapshot applied',
    );
  };

  // Mesh mode: the identity (when the agent has a CA), then the persisted snapshot (or the
  // agent's), are in force before the first request.
  if (mesh) {
    let from: string;
    try {
      mtls = await startMeshMtls(options, {
        component: 'gateway',
        service: gatewayServiceAccount(options),
        namespace: options.namespace,
        client: registry,
        logger: log,
        ...(deps.clock === undefined ? {} : { clock: deps.clock }),
        metrics: metricsRegistry,
        ...deps.identity,
      });
      if (mtls.state === 'on') {
        meshTransports = createMeshTransports({
          identity: mtls.identity,
          pools: timeoutPools,
          connectTimeoutMs: options.connectTimeoutMs,
          count: countTls,
        });
        mtlsGauge.set(1);
        log.info(
          { spiffeId: mtls.identity.spiffeId },
          'mesh mTLS on: originating mTLS to sidecars',
        );
      }
      from = await (deps.snapshotFeed as SnapshotFeed).start(applySnapshot);
    } catch (err) {
      await release();
      throw err;
    }
    if (from === 'none')
      log.warn({}, 'no snapshot yet (none persisted, no agent answered): 404 until one arrives');
    else log.info({ from, version: inForce?.version }, 'mesh snapshot feed started');
  }
  const url = await listener.listen(options.listen);
  let adminUrl: string;
  try {
    adminUrl = await listen(admin, options.admin);
  } catch (err) {
    await release();
    throw err;
  }
  log.info({ url, adminUrl, routes: options.routes.length }, 'gateway listening');
  edgeReporter?.start();

  let closing: Promise<boolean> | undefined;
  const close = (): Promise<boolean> =>
    (closing ??= (async () => {
      draining = true;
      // Finish what is in flight; keep-alive connections close after their current response.
      const clean = await listener.drain(
        Date.now() + current.drainTimeoutMs,
        () => metrics.activeRequests > 0,
      );
      if (!clean) log.warn({ inFlight: metrics.activeRequests }, 'drain deadline passed');
      await release();
      return clean;
    })());

  return {
    url,
    adminUrl,
    engine,
    clusters,
    reload,
    reloadFailed,
    applySnapshot,
    snapshot: () => inForce,
    get mtls() {
      return mtls;
    },
    close,
  };
}
