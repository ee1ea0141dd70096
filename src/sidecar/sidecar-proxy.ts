/**
 * @module startSidecarProxy: the sidecar's data path. An OUTBOUND listener (the app's calls to
 * other services, routed by Host, absolute-form target or a fixed `--upstream` port through the
 * snapshot's routes, with the egress policy for hosts the mesh does not know) and an INBOUND
 * listener (other sidecars' calls, forwarded to the app on loopback, under the snapshot's
 * AuthorizationPolicies and inbound rate limit), both on the shared proxy engine, fed by the control plane's MeshSnapshots (applied whole or refused). Registration,
 * health checks, the app's lifecycle and the admin port are the `meshwork sidecar` command's.
 */
import { networkInterfaces } from 'node:os';
import type { BalancerSpec } from '../client/balancers/index.js';
import {
  createRetryPolicy,
  DEFAULT_CIRCUIT_BREAKER_OPTIONS,
  DEFAULT_RETRY_POLICY_OPTIONS,
  type RetryPolicyOptions,
} from '../client/resilience/index.js';
import { systemClock, type Clock } from '../core/clock.js';
import { errors, type MeshError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { resolveMeshHost } from '../protocol/mesh/references.js';
import type {
  MeshSnapshot,
  SnapshotCluster,
  SnapshotEndpoint,
  SnapshotRoute,
} from '../protocol/mesh/snapshot.js';
import { SERVICE_NAME } from '../protocol/registration.js';
import { Cluster } from '../proxy/cluster.js';
import type { ProxyRoute, UpstreamDispatcher } from '../proxy/contract.js';
import { ProxyEngine } from '../proxy/engine.js';
import { replyFor } from '../proxy/error-reply.js';
import type { Filter, FilterExchange } from '../proxy/filter.js';
import {
  AuthorizationCounts,
  createAuthorizationFilter,
  registerAuthorizationMetrics,
} from '../proxy/filters/authorization/authorization-filter.js';
import {
  compileAuthorization,
  isAuthorizationProblems,
} from '../proxy/filters/authorization/authorization-policy.js';
import {
  createLocalRateLimitFilter,
  localRateLimitProblems,
} from '../proxy/filters/local-rate-limit/local-rate-limit-filter.js';
import { NATIVE_HTTP1_SUPPORT, type NativeHttp1Support } from '../proxy/http1/native-support.js';
import {
  createUpstreamClient,
  ProxyListener,
  splitHostPort,
  UpstreamPools,
} from '../proxy/proxy-listener.js';
import { ProxyMetrics } from '../proxy/proxy-metrics.js';
import type { MatchInput, RouteMatcher } from '../proxy/route-table.js';
import {
  buildSnapshotRoutes,
  type SnapshotRouteOptions,
  type SnapshotRoutes,
  type UpstreamPoolSettings,
} from '../proxy/snapshot-routes.js';
import { chooseTransports } from '../proxy/transport-choice.js';
import type { InboundTlsOptions } from '../proxy/mesh-tls.js';
import { createMeshTransports, meshTlsCount } from '../proxy/mesh-transport.js';
import type { RequestObserver } from '../proxy/observe.js';
import { peerIdentity } from '../proxy/peer-identity.js';
import { parseSpiffeId } from '../protocol/mesh/ca.js';
import type { MtlsMode } from '../protocol/mesh/specs.js';
import type { MeshTlsIdentity } from '../proxy/tls-identity.js';
import { splitOriginalDestination, type OriginalDestinationSplit } from './original-destination.js';
import { createMetricsRegistry } from '../telemetry/metrics.js';

/**
 * The header that tells the app which service called it. The caller's outbound sidecar sets it
 * (replacing whatever its app sent); the inbound sidecar passes on a valid service name and
 * drops anything else. Until mTLS (issue 20) fills it from the peer certificate, it is only as
 * trustworthy as the network: any client that reaches the inbound port directly can claim a
 * name.
 */
export const SOURCE_SERVICE_HEADER = 'x-meshwork-source-service';

/**
 * The header that tells the app the verified identity of its caller: the SPIFFE principal of the
 * client certificate of an mTLS connection (`cluster.local/ns/default/sa/orders`). Set by the
 * inbound sidecar from the handshake only; a value a client sent is always removed, and a
 * plaintext request has none.
 */
export const SOURCE_PRINCIPAL_HEADER = 'x-meshwork-source-principal';

/** Auto mTLS (proxy/mesh-transport.ts): the meta of an instance whose sidecar has an identity. */
export { TLS_MODE_ISTIO, TLS_MODE_META } from '../proxy/mesh-transport.js';

/** What the data path runs with; the `meshwork sidecar` command builds it from its options. */
export interface SidecarProxyOptions {
  /** The service the sidecar fronts (its app's). */
  readonly service: string;
  readonly namespace: string;
  /** Where the app listens: loopback (`127.0.0.1`). */
  readonly appHost: string;
  readonly appPort: number;
  /** `host:port` of the inbound listener (port 0: any free one). */
  readonly inbound: string;
  /** `host:port` of the outbound listener (port 0: any free one). */
  readonly outbound: string;
  /** Fixed local ports, one service each (`--upstream payments=127.0.0.1:9191`). */
  readonly upstreams: readonly { readonly service: string; readonly listen: string }[];
  readonly connectTimeoutMs: number;
  /** A route's deadline when it sets none; also the inbound side's, to the app. */
  readonly requestTimeoutMs: number;
  /** How long close() and stopInbound() wait for in-flight requests. */
  readonly drainTimeoutMs: number;
  readonly upstreamIdleTimeoutMs?: number;
  readonly upstreamKeepAliveMs?: number;
  readonly upstreamConnections?: number;
  readonly downstreamKeepAliveMs?: number;
  readonly maxHeaderBytes?: number;
  readonly maxMalformedPerSecond?: number;
  readonly upstreamClient?: 'native' | 'undici';
  readonly downstreamServer?: 'native' | 'node';
  /** The balancer of a cluster that names none. */
  readonly balancer?: BalancerSpec;
  /** Retry options under a route's own (the SDK's RetryPolicyOptions). */
  readonly retry?: Readonly<Partial<RetryPolicyOptions>>;
  readonly outlierDetection?: Readonly<Record<string, unknown>>;
  readonly panicThresholdPercent?: number;
  /**
   * Issue 20 (mTLS): the sidecar's leaf, key and trust bundle (its identity manager). Present:
   * the inbound side takes mTLS per the snapshot's PeerAuthentication and the outbound side
   * originates mTLS to sidecars; absent: plaintext only, and STRICT is refused (NACK).
   */
  readonly tls?: MeshTlsIdentity;
  /**
   * Asked once per inbound request the snapshot's AuthorizationPolicies let through, before it
   * goes to the app; a MeshError is answered (replyFor) instead. MUST NOT throw.
   */
  readonly inboundPolicy?: (req: FilterExchange) => MeshError | undefined;
}

/** The defaults of SidecarProxyOptions' optional settings (the gateway's, for the same keys). */
export const DEFAULT_SIDECAR_PROXY_SETTINGS = Object.freeze({
  upstreamIdleTimeoutMs: 60_000,
  upstreamKeepAliveMs: 4_000,
  upstreamConnections: 0,
  downstreamKeepAliveMs: 5_000,
  maxHeaderBytes: 16_384,
  maxMalformedPerSecond: 20,
  upstreamClient: 'native' as const,
  downstreamServer: 'native' as const,
  balancer: 'round-robin' as BalancerSpec,
  retry: Object.freeze({ ...DEFAULT_RETRY_POLICY_OPTIONS }) as Readonly<
    Partial<RetryPolicyOptions>
  >,
  outlierDetection: Object.freeze({ ...DEFAULT_CIRCUIT_BREAKER_OPTIONS }) as Readonly<
    Record<string, unknown>
  >,
  panicThresholdPercent: 50,
});

export interface RunningSidecarProxy {
  /** `http://host:port` of the inbound listener. */
  readonly inboundUrl: string;
  /** `http://host:port` of the outbound listener. */
  readonly outboundUrl: string;
  /** Service -> `http://host:port` of its fixed upstream listener. */
  readonly upstreamUrls: ReadonlyMap<string, string>;
  /**
   * Builds the snapshot's outbound routes and inbound policy whole and swaps them in, or throws
   * (a CONFIG_INVALID MeshError naming each route, cluster or field it cannot run: NACK it) and
   * leaves the one in force.
   */
  applySnapshot(snapshot: MeshSnapshot): void;
  /** The snapshot in force, or undefined before the first. */
  snapshot(): MeshSnapshot | undefined;
  /** The clusters in force, outbound and inbound (for the health the sidecar reports). */
  clusters(): Iterable<Cluster>;
  /** The Prometheus text of the data path's metrics (meshwork_sidecar_*). */
  metricsText(): Promise<string>;
  /** Stops accepting inbound and waits (drainTimeoutMs) for inbound requests in flight. */
  stopInbound(): Promise<void>;
  /** Stops everything, drains until drainTimeoutMs; true when nothing was cut. */
  close(): Promise<boolean>;
  /** Requests in flight, both directions. */
  readonly activeRequests: number;
  /** The data path speaks mTLS (it was given an identity): register with TLS_MODE_META. */
  readonly mtls: boolean;
}

export interface SidecarProxyDeps {
  readonly clock?: Clock;
  readonly random?: () => number;
  /** Whether the native HTTP/1 server and client can run (tests pass a refusal). */
  readonly nativeHttp1?: NativeHttp1Support;
  /**
   * Told of every request of the outbound and fixed-port listeners (the app's calls: Istio's
   * reporter="source"; proxy/observe.ts).
   */
  readonly outboundObservers?: readonly RequestObserver[];
  /** Told of every request of the inbound listener (calls to the app: reporter="destination"). */
  readonly inboundObservers?: readonly RequestObserver[];
}

/** No routes, no clusters: what is in force before the first snapshot. */
const EMPTY_SNAPSHOT: MeshSnapshot = {
  version: '',
  index: 0,
  proxy: { id: '', kind: 'sidecar', name: '', namespace: 'default' },
  routes: [],
  clusters: [],
  egress: { mode: 'ALLOW_ANY' },
};

/** Distinct pass-through destinations kept (random Hosts must not grow it without bound). */
const MAX_PASSTHROUGH = 1024;

/**
 * The names a listener bound to `host` is reached by: itself, `localhost` for loopback, and
 * every address of the machine for a wildcard (0.0.0.0, ::).
 */
function ownNames(host: string): string[] {
  const names = [host];
  if (host.startsWith('127.') || host === '::1') names.push('localhost', '127.0.0.1');
  if (host === '0.0.0.0' || host === '::') {
    names.push('localhost');
    for (const list of Object.values(networkInterfaces()))
      for (const a of list ?? []) names.push(a.family === 'IPv6' ? `[${a.address}]` : a.address);
  }
  return names;
}

/** The port of an authority (`host:port`, `[v6]:port`), or `fallback` when it names none or one out of range. */
export function authorityPort(authority: string, fallback: number): number {
  const m = /:(\d{1,5})$/.exec(authority);
  if (m === null || authority.endsWith(']')) return fallback;
  const port = Number(m[1]);
  return port >= 1 && port <= 65_535 ? port : fallback;
}

/** A passing endpoint. */
function endpoint(id: string, address: string, port: number): SnapshotEndpoint {
  return {
    id,
    address,
    port,
    status: 'passing',
    tags: [],
    meta: {},
    weights: { passing: 1, warning: 1 },
  };
}

/** A one-route, one-cluster snapshot: the inbound route to the app, a pass-through egress. */
function singleRouteSnapshot(
  name: string,
  cluster: SnapshotCluster,
  route: Partial<SnapshotRoute>,
): MeshSnapshot {
  return {
    version: name,
    index: 0,
    proxy: { id: name, kind: 'sidecar', name, namespace: 'default' },
    routes: [
      {
        name,
        hosts: ['*'],
        match: [],
        backends: [{ cluster: cluster.name, weight: 100 }],
        ...route,
      },
    ],
    clusters: [cluster],
    egress: { mode: 'ALLOW_ANY' },
  };
}

/** The parts of an inbound side the sidecar cannot run (without an identity): each a problem. */
function inboundProblems(snapshot: MeshSnapshot, service: string, mtls: boolean): string[] {
  const problems: string[] = [];
  if (snapshot.proxy.kind !== 'sidecar')
    problems.push(`proxy.kind: "${snapshot.proxy.kind}" snapshot sent to a sidecar`);
  if (snapshot.proxy.name !== service)
    problems.push(
      `proxy.name: "${snapshot.proxy.name}" is not this sidecar's service "${service}"`,
    );
  const inbound = snapshot.inbound;
  if (inbound === undefined) return problems;
  if (inbound.rateLimit !== undefined)
    problems.push(...localRateLimitProblems(inbound.rateLimit, 'inbound.rateLimit'));
  const noIdentity =
    'needs an mTLS identity (a certificate from the mesh CA) and this sidecar has none: it cannot honour it';
  if (!mtls && inbound.mtls === 'STRICT') problems.push(`inbound.mtls: STRICT ${noIdentity}`);
  for (const [port, mode] of Object.entries(inbound.portLevelMtls ?? {}))
    if (!mtls && mode === 'STRICT')
      problems.push(`inbound.portLevelMtls.${port}: STRICT ${noIdentity}`);
  return problems;
}

/**
 * Starts the sidecar's outbound, fixed-upstream and inbound listeners. Outbound routes nothing
 * (404) until the first snapshot is applied; inbound forwards to the app from the start.
 * @example
 * const proxy = await startSidecarProxy({ service: 'orders', namespace: 'default',
 *   appHost: '127.0.0.1', appPort: 8081, inbound: '0.0.0.0:15006', outbound: '127.0.0.1:15001',
 *   upstreams: [], connectTimeoutMs: 1000, requestTimeoutMs: 15000, drainTimeoutMs: 10000 }, logger);
 * proxy.applySnapshot(snapshot); // throws: NACK it
 */
export async function startSidecarProxy(
  options: SidecarProxyOptions,
  logger: Logger,
  deps: SidecarProxyDeps = {},
): Promise<RunningSidecarProxy> {
  const o = { ...DEFAULT_SIDECAR_PROXY_SETTINGS, ...stripUndefined(options) };
  const log = logger.child({ component: 'sidecar' });
  const clock = deps.clock ?? systemClock;
  const routeOptions: SnapshotRouteOptions = {
    proxy: 'sidecar',
    balancer: o.balancer,
    retry: o.retry,
    outlierDetection: o.outlierDetection,
    panicThresholdPercent: o.panicThresholdPercent,
    requestTimeoutMs: o.requestTimeoutMs,
    connectTimeoutMs: o.connectTimeoutMs,
  };
  const routeDeps = { clock: deps.clock, random: deps.random };

  /** The outbound table in force (empty before the first snapshot). */
  let inForce: MeshSnapshot | undefined;
  let routes: SnapshotRoutes | undefined;
  /** Hosts of `resolution: NONE` ServiceEntries: passed through, not routed. */
  let originalDestination: OriginalDestinationSplit = splitOriginalDestination(EMPTY_SNAPSHOT);
  /** ALLOW_ANY: a route per `host:port` passed through, made on first use. */
  let passthrough = new Map<string, ProxyRoute>();

  // The inbound side: every request to the app, one try (the caller's sidecar retries; a second
  // layer of retries here would multiply them), never ejected (it is the only instance).
  const inbound = buildSnapshotRoutes(
    singleRouteSnapshot(
      `inbound|${o.service}`,
      {
        name: `inbound|${o.service}`,
        service: o.service,
        endpoints: [endpoint(`${o.service}-app`, o.appHost, o.appPort)],
        outlierDetection: {
          consecutive5xxErrors: 0,
          intervalMs: 10_000,
          baseEjectionMs: 30_000,
          maxEjectionPercent: 0,
          minHealthPercent: 0,
        },
      },
      { retries: { attempts: 0, retryOn: [] }, timeoutMs: o.requestTimeoutMs },
    ),
    routeOptions,
    routeDeps,
  );

  const metricsRegistry = createMetricsRegistry();
  const clusters = function* (): Iterable<Cluster> {
    if (routes !== undefined) yield* routes.clusters.values();
    yield* inbound.clusters.values();
    for (const r of passthrough.values()) yield r.pickCluster();
  };
  const metrics = new ProxyMetrics(metricsRegistry, 'sidecar', clusters);
  const chosen = chooseTransports(
    o,
    deps.nativeHttp1 ?? NATIVE_HTTP1_SUPPORT,
    'sidecar',
    metricsRegistry,
    log,
  );
  const dispatcher = createUpstreamClient(o, chosen);
  // One more pool per connect timeout a DestinationRule sets (connectionPool.tcp).
  const timeoutPools = new UpstreamPools(o, chosen);
  const dispatcherFor = (settings: UpstreamPoolSettings): UpstreamDispatcher =>
    timeoutPools.for(settings);

  // mTLS (issue 20): outcomes counted; the outbound side's transports (proxy/mesh-transport.ts:
  // auto mTLS, one connector per destination identity, its pools among timeoutPools).
  const identity = o.tls;
  const countTls = meshTlsCount(
    metricsRegistry,
    'sidecar',
    'mTLS outcomes per new connection: inbound mtls|plaintext|refused_plaintext|handshake_failed, outbound mtls|resumed|handshake_failed|identity_mismatch',
    log,
  );
  const meshTransports =
    identity === undefined
      ? undefined
      : createMeshTransports({
          identity,
          pools: timeoutPools,
          connectTimeoutMs: o.connectTimeoutMs,
          count: countTls,
        });
  const endpointTransport = meshTransports?.endpointTransport;

  // The egress routes: a refusal (REGISTRY_ONLY), and a pass-through per destination (ALLOW_ANY).
  const noRetry = createRetryPolicy({ maxAttempts: 1 });
  const nowhere = new Cluster({
    name: 'egress-denied',
    service: 'egress-denied',
    balancer: 'round-robin',
    outlierDetection: {},
    panicThresholdPercent: 0,
  });
  /** A route answering `err` itself (made per request: only refusals take it). */
  const refusal = (err: MeshError): ProxyRoute => {
    const reply = replyFor(err);
    return {
      name: 'egress-refused',
      filters: [{ name: 'egress-refused', onRequest: () => reply }],
      retry: noRetry,
      pickCluster: () => nowhere,
    };
  };
  const passThrough = (input: MatchInput): ProxyRoute | undefined => {
    const host = input.host;
    // No destination; IPv6 literals are not passed through (yet): both answer 404.
    if (host === '' || host.startsWith('[')) return undefined;
    const port = authorityPort(input.authority ?? host, 80);
    const key = `${host}:${port}`;
    let route = passthrough.get(key);
    if (route === undefined) {
      if (passthrough.size >= MAX_PASSTHROUGH) passthrough = new Map();
      const built = buildSnapshotRoutes(
        singleRouteSnapshot(
          `passthrough|${key}`,
          {
            name: key,
            service: host,
            port,
            endpoints: [endpoint(key, host, port)],
            external: { resolution: 'DNS' },
          },
          {},
        ),
        routeOptions,
        { ...routeDeps, dispatcherFor },
      );
      route = built.table.match(input) as ProxyRoute;
      passthrough.set(key, route);
    }
    return route;
  };

  /** `host:port` of the sidecar's own listeners: never a pass-through destination (a loop). */
  const own = new Set<string>();
  const outboundRoute = (input: MatchInput, fixed: boolean): ProxyRoute | undefined => {
    const table = routes?.table;
    if (table === undefined || inForce === undefined) return undefined;
    // Hosts compare as the snapshot names them: `payments.<ns>.svc.cluster.local` is `payments`.
    const host = input.host.includes('.') ? resolveMeshHost(input.host, o.namespace) : input.host;
    const normalised = host === input.host ? input : { ...input, host };
    const route = table.match(normalised);
    if (route !== undefined || fixed) return route;
    if (inForce.egress.mode === 'REGISTRY_ONLY' && !originalDestination.passThrough(normalised))
      return refusal(errors.proxyEgressDenied(input.host, 'REGISTRY_ONLY'));
    if (own.has(`${input.host}:${authorityPort(input.authority ?? input.host, 80)}`))
      return refusal(
        errors.proxyBadRequest(
          `"${input.authority ?? input.host}" is this sidecar: passing it through would loop`,
        ),
      );
    return passThrough(input);
  };

  const sourceService: Filter = {
    name: 'source-service',
    onRequest: (x) => {
      x.setRequestHeader(SOURCE_SERVICE_HEADER, o.service);
      return 'continue';
    },
  };
  const inboundFilters: Filter[] = [
    {
      name: 'source-service',
      onRequest: (x) => {
        // mTLS: who the caller is comes from its certificate, whatever it claims.
        const peer = peerIdentity(x.socket);
        if (peer?.principal !== undefined) {
          x.setRequestHeader(SOURCE_PRINCIPAL_HEADER, peer.principal);
          const service = parseSpiffeId(peer.spiffeId ?? '')?.service;
          if (service !== undefined && SERVICE_NAME.test(service)) {
            x.setRequestHeader(SOURCE_SERVICE_HEADER, service);
            return 'continue';
          }
        } else x.removeRequestHeader(SOURCE_PRINCIPAL_HEADER);
        const claimed = x.headers[SOURCE_SERVICE_HEADER];
        if (typeof claimed === 'string' && SERVICE_NAME.test(claimed))
          x.setRequestHeader(SOURCE_SERVICE_HEADER, claimed);
        else x.removeRequestHeader(SOURCE_SERVICE_HEADER);
        return 'continue';
      },
    },
  ];
  // The snapshot's inbound.rateLimit: one bucket for every request to the app, after the
  // policy (a refused request takes no token). Replaced when its settings change, kept when not.
  let inboundLimit: { readonly key: string; readonly filter: Filter } | undefined;
  const inboundCounts = [...inbound.clusters.values()][0]?.counts;
  inboundFilters.unshift({
    name: 'inbound-rate-limit',
    onRequest: (x) => inboundLimit?.filter.onRequest?.(x) ?? 'continue',
  });
  const limitFor = (
    limit: NonNullable<MeshSnapshot['inbound']>['rateLimit'],
  ): typeof inboundLimit => {
    if (limit === undefined) return undefined;
    const key = JSON.stringify([limit.maxTokens, limit.tokensPerFill, limit.fillIntervalMs]);
    if (inboundLimit?.key === key) return inboundLimit;
    return { key, filter: createLocalRateLimitFilter(limit, deps.clock, inboundCounts) };
  };
  // The snapshot's AuthorizationPolicies, first of all (before the hook and the rate limit):
  // a denied request reaches nothing else.
  const authzCounts = new AuthorizationCounts();
  let authorization: Filter | undefined;
  const policy = o.inboundPolicy;
  if (policy !== undefined)
    inboundFilters.unshift({
      name: 'inbound-policy',
      onRequest: (x) => {
        const refused = policy(x);
        return refused === undefined ? 'continue' : replyFor(refused);
      },
    });
  inboundFilters.unshift({
    name: 'authorization',
    onRequest: (x) => authorization?.onRequest?.(x) ?? 'continue',
  });
  registerAuthorizationMetrics(metricsRegistry, authzCounts);

  const engineFor = (
    table: RouteMatcher<ProxyRoute>,
    filters: readonly Filter[],
    observers: readonly RequestObserver[] | undefined,
  ): ProxyEngine =>
    new ProxyEngine({
      table,
      dispatcher,
      metrics,
      logger: log,
      upstreamIdleTimeoutMs: o.upstreamIdleTimeoutMs,
      connectTimeoutMs: o.connectTimeoutMs,
      // Every cluster gets its endpoints with its snapshot (or at once: pass-through, inbound).
      ready: () => Promise.resolve(true),
      filters,
      observers,
    });
  const listenerOptions = {
    maxHeaderBytes: o.maxHeaderBytes,
    downstreamKeepAliveMs: o.downstreamKeepAliveMs,
    maxMalformedPerSecond: () => o.maxMalformedPerSecond,
  };
  const listenerFor = (engine: ProxyEngine, inboundTls?: InboundTlsOptions): ProxyListener =>
    new ProxyListener(engine, metrics, { ...listenerOptions, inboundTls }, chosen);
  /**
   * The inbound side's mTLS mode for a new connection: the snapshot's PeerAuthentication, its
   * port-level mode for the app's port first (Istio keys it by the workload's port);
   * PERMISSIVE before the first snapshot (Istio's default).
   */
  const inboundMode = (): MtlsMode => {
    const inbound = inForce?.inbound;
    if (inbound === undefined) return 'PERMISSIVE';
    const mode = inbound.portLevelMtls?.[String(o.appPort)] ?? inbound.mtls;
    return mode === 'UNSET' ? 'PERMISSIVE' : mode;
  };

  const outboundListener = listenerFor(
    engineFor(
      { match: (input) => outboundRoute(input, false) },
      [sourceService],
      deps.outboundObservers,
    ),
  );
  const inboundListener = listenerFor(
    engineFor(inbound.table, inboundFilters, deps.inboundObservers),
    identity === undefined ? undefined : { identity, mode: inboundMode, count: countTls },
  );
  const fixedListeners = o.upstreams.map((u) => ({
    service: u.service,
    listen: u.listen,
    listener: listenerFor(
      engineFor(
        // Every request on this port goes to its service, whatever its Host.
        { match: (input) => outboundRoute({ ...input, host: u.service }, true) },
        [sourceService],
        deps.outboundObservers,
      ),
    ),
  }));
  const all = [outboundListener, inboundListener, ...fixedListeners.map((f) => f.listener)];

  // Snapshots are counted by the command (meshwork_sidecar_snapshots_total), which NACKs them.
  const applySnapshot = (snapshot: MeshSnapshot): void => {
    let next: SnapshotRoutes;
    let split: OriginalDestinationSplit;
    let nextAuthorization: Filter | undefined;
    try {
      const problems = inboundProblems(snapshot, o.service, identity !== undefined);
      const compiled = compileAuthorization(snapshot.inbound?.authorization ?? []);
      if (isAuthorizationProblems(compiled)) problems.push(...compiled.problems);
      else
        nextAuthorization = compiled.empty
          ? undefined
          : createAuthorizationFilter({
              compiled,
              destinationPort: o.appPort,
              counts: authzCounts,
              logger: log,
            });
      if (problems.length > 0) throw errors.configInvalid(problems);
      split = splitOriginalDestination(snapshot);
      next = buildSnapshotRoutes(split.routed, routeOptions, {
        ...routeDeps,
        previous: routes?.clusters,
        dispatcherFor,
        endpointTransport,
      });
    } catch (err) {
      log.warn({ version: snapshot.version, err }, 'snapshot refused: the one in force stays');
      throw err;
    }
    routes = next;
    inboundLimit = limitFor(snapshot.inbound?.rateLimit);
    authorization = nextAuthorization;
    originalDestination = split;
    inForce = snapshot;
    // A ServiceEntry may now cover a host passed through so far, or the mode changed.
    passthrough = new Map();
    log.info(
      {
        version: snapshot.version,
        routes: snapshot.routes.length,
        clusters: next.clusters.size,
        egress: snapshot.egress.mode,
        passThrough: split.hosts,
        at: clock.now(),
      },
      'snapshot applied',
    );
  };

  const upstreamUrls = new Map<string, string>();
  let inboundUrl: string;
  let outboundUrl: string;
  try {
    outboundUrl = await outboundListener.listen(o.outbound);
    inboundUrl = await inboundListener.listen(o.inbound);
    for (const f of fixedListeners) upstreamUrls.set(f.service, await f.listener.listen(f.listen));
  } catch (err) {
    for (const l of all) l.destroy();
    await dispatcher.close();
    throw err;
  }
  for (const url of [outboundUrl, inboundUrl, ...upstreamUrls.values()]) {
    const { host, port } = splitHostPort(new URL(url).host);
    for (const name of ownNames(host)) own.add(`${name}:${port}`);
  }
  log.info(
    { outboundUrl, inboundUrl, upstreams: Object.fromEntries(upstreamUrls) },
    'sidecar proxy listening',
  );

  let inboundStopped: Promise<void> | undefined;
  const stopInbound = (): Promise<void> =>
    (inboundStopped ??= (async () => {
      const clean = await inboundListener.drain(Date.now() + o.drainTimeoutMs);
      if (!clean)
        log.warn({ connections: inboundListener.connections }, 'inbound drain deadline passed');
    })());

  let closing: Promise<boolean> | undefined;
  const close = (): Promise<boolean> =>
    (closing ??= (async () => {
      const deadline = Date.now() + o.drainTimeoutMs;
      for (const l of all) l.stopAccepting();
      const drained = await Promise.all(
        all.map((l) => l.drain(deadline, () => metrics.activeRequests > 0)),
      );
      const clean = drained.every(Boolean);
      if (!clean) log.warn({ inFlight: metrics.activeRequests }, 'drain deadline passed');
      for (const l of all) l.destroy();
      meshTransports?.close();
      await Promise.allSettled([dispatcher.close(), timeoutPools.close()]);
      return clean;
    })());

  return {
    inboundUrl,
    outboundUrl,
    upstreamUrls,
    applySnapshot,
    snapshot: () => inForce,
    clusters,
    metricsText: () => metricsRegistry.metrics(),
    stopInbound,
    close,
    get activeRequests() {
      return metrics.activeRequests;
    },
    mtls: identity !== undefined,
  };
}

/** `o` without its undefined fields (so they do not hide the defaults). */
function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
