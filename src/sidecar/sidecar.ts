/**
 * @module startSidecar: the control side of `meshwork sidecar`. Composes the data path (inbound
 * and outbound listeners), the snapshot subscription (static stability from the persisted
 * snapshot), third-party registration with the app's health reported through a TTL check, the
 * app's lifecycle (`-- CMD`), and the admin listener; runs the stop sequence on SIGTERM, on
 * `POST /quitquitquit` and when the app exits.
 */
import { randomBytes } from 'node:crypto';
import { Counter, Gauge, Registry } from 'prom-client';
import { MeshSubscriber, type MeshSubscriberOptions } from '../client/mesh-subscriber.js';
import { RegistryClient } from '../client/registry-client.js';
import { registryTlsOf } from '../client/tls-files.js';
import { SelfRegistration } from '../client/self-registration.js';
import { systemClock, type Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { MeshSnapshot, ProxyIdentity } from '../protocol/mesh/snapshot.js';
import type { RegistrationInput } from '../protocol/registration.js';
import { AppHealthCheck, httpAppProbe, tcpAppProbe, type AppProbe } from './app-health.js';
import { snapshotVersionGauge } from '../proxy/proxy-metrics.js';
import { IstioMetrics } from '../proxy/istio-metrics.js';
import {
  createAccessLogWriter,
  registerAccessLogMetrics,
  type AccessLogWriter,
} from '../telemetry/access-log-writer.js';
import { listen } from '../proxy/proxy-listener.js';
import { EdgeCounter } from '../proxy/edge-counts.js';
import { EDGE_REPORT_STOP_WAIT_MS, EdgeReporter } from '../proxy/edge-reporter.js';
import { clusterHealth } from '../proxy/cluster-health.js';
import { requestObservers } from '../proxy/observer-lists.js';
import { startOtlpTracing, type SpanExporterHandle } from '../telemetry/tracing.js';
import { AppProcess } from './app-process.js';
import { registeredAddress, type SidecarOptions } from './options.js';
import { watchMemoryFallbacks, type MemoryFallbackChecks } from './memory-fallbacks.js';
import { createSidecarAdmin } from './sidecar-admin.js';
import {
  startMeshMtls,
  type MeshIdentityOptions,
  type MeshMtls,
} from '../proxy/mesh-identity/mesh-identity.js';
import {
  startSidecarProxy,
  TLS_MODE_ISTIO,
  TLS_MODE_META,
  type RunningSidecarProxy,
  type SidecarProxyDeps,
} from './sidecar-proxy.js';

/** Put in the instance's meta as `sidecar-version`. */
export const SIDECAR_VERSION = '0.1.0';

/** The id of the TTL check the sidecar heartbeats with the app's health. */
export const APP_CHECK_ID = 'sidecar-app';

/** Mesh mTLS as the start left it: a certificate in force, or why not. */
export type SidecarMtls = MeshMtls;

export interface SidecarDeps {
  /** The data path's dependencies (clock, randomness, HTTP/1 implementation). */
  readonly dataPath?: SidecarProxyDeps;
  readonly clock?: Clock;
  /** Overrides of the snapshot subscription (tests: a short start timeout). */
  readonly subscriber?: Partial<Pick<MeshSubscriberOptions, 'startTimeoutMs' | 'backoff'>>;
  /** Overrides the app's health probe (tests). */
  readonly probe?: AppProbe;
  /** Stand-ins for the checks of the memory savings (tests). */
  readonly memoryFallbacks?: MemoryFallbackChecks;
  /** Overrides of the identity manager (tests: a short backoff, a seeded random source). */
  readonly identity?: Partial<
    Pick<MeshIdentityOptions, 'backoff' | 'rotationJitterMs' | 'random' | 'makeCsr'>
  >;
}

/** A running sidecar. */
export interface RunningSidecar {
  readonly instanceId: string;
  readonly adminUrl: string;
  readonly inboundUrl: string;
  readonly outboundUrl: string;
  /**
   * Resolves with the exit code once the sidecar has stopped: 0 after `stop()` (SIGTERM,
   * `POST /quitquitquit`), the app's exit code when the app ended on its own.
   */
  readonly ended: Promise<number>;
  /** The app, once started (`-- CMD`). */
  readonly app: AppProcess | undefined;
  /** The data path. */
  readonly proxy: RunningSidecarProxy;
  /** Mesh mTLS: the identity in force, or why there is none. */
  readonly mtls: SidecarMtls;
  /** Runs the stop sequence (once); resolves like `ended`. */
  stop(reason: string): Promise<number>;
}

/**
 * Starts a sidecar: data path listeners, admin listener, snapshot subscription, registration and
 * health check at once; the app (`options.command`) once a snapshot is in force.
 */
export async function startSidecar(
  options: SidecarOptions,
  logger: Logger,
  deps: SidecarDeps = {},
): Promise<RunningSidecar> {
  const log = logger.child({ component: 'sidecar', service: options.service });
  const clock = deps.clock ?? systemClock;
  const instanceId = `${options.service}-${randomBytes(6).toString('hex')}`;

  const metrics = new Registry();
  const registeredGauge = new Gauge({
    name: 'meshwork_sidecar_registered',
    help: '1 while the registry has the app registered (acknowledged, not lost since)',
    registers: [metrics],
  });
  const registrations = new Counter({
    name: 'meshwork_sidecar_registrations_total',
    help: 'Registrations of the app acknowledged by the registry (re-registrations included)',
    registers: [metrics],
  });
  const appHealthGauge = new Gauge({
    name: 'meshwork_sidecar_app_health',
    help: "The app's health as the sidecar decided it: 1 passing, 0 critical",
    registers: [metrics],
  });
  const probeCounter = new Counter({
    name: 'meshwork_sidecar_app_probes_total',
    help: "The sidecar's probes of the app, by result (passed, failed)",
    labelNames: ['result'],
    registers: [metrics],
  });
  const snapshotInfo = new Gauge({
    name: 'meshwork_sidecar_snapshot_info',
    help: 'The snapshot in force: 1 with its version and where it came from (agent, disk)',
    labelNames: ['version', 'from'],
    registers: [metrics],
  });
  const snapshotCounter = new Counter({
    name: 'meshwork_sidecar_snapshots_total',
    help: 'Snapshots by result: applied, or refused (NACKed; the one in force stays)',
    labelNames: ['result'],
    registers: [metrics],
  });

  const snapshotVersion = snapshotVersionGauge(metrics);
  const mtlsGauge = new Gauge({
    name: 'meshwork_sidecar_mtls_enabled',
    help: " 1 while the data path serves and originates mesh mTLS with the sidecar's certificate",
    registers: [metrics],
  });

  // Short requests: a deregistration on SIGTERM must not hold the stop sequence for long.
  const registryTls = registryTlsOf(options);
  const registry = new RegistryClient({
    addresses: options.registry,
    timeoutMs: 5_000,
    tls: registryTls,
    ...(options.token === undefined ? {} : { token: options.token }),
  });
  let mtls: SidecarMtls;
  try {
    // The first leaf before the listeners take traffic (startMeshMtls logs why there is none).
    mtls = await startMeshMtls(options, {
      component: 'sidecar',
      service: options.service,
      namespace: options.namespace,
      client: registry,
      logger: log,
      clock,
      metrics,
      ...deps.identity,
    });
  } catch (err) {
    await registry.close();
    throw err;
  }
  const meshIdentity = mtls.state === 'on' ? mtls.identity : undefined;
  const served = meshIdentity !== undefined;
  mtlsGauge.set(served ? 1 : 0);

  // The call graph: the app's calls (outbound, reporter source) and the calls to it (inbound,
  // reporter destination), counted per edge and reported to the agent (proxy/edge-counts.ts).
  const edges =
    options.edgeReportIntervalMs > 0
      ? { outbound: new EdgeCounter(), inbound: new EdgeCounter() }
      : undefined;
  // Tracing: the SDK is loaded only when an endpoint is set; without one, no observer at all.
  let tracing: SpanExporterHandle | undefined;
  if (options.tracingEndpoint !== undefined) {
    const spansCounter = new Counter({
      name: 'meshwork_sidecar_trace_spans_total',
      help: 'Spans sent to the tracing endpoint, by result (exported, failed: the batch was lost)',
      labelNames: ['result'],
      registers: [metrics],
    });
    tracing = await startOtlpTracing({
      onExport: (result, spans) => spansCounter.inc({ result }, spans),
      endpoint: options.tracingEndpoint,
      serviceName: options.service,
      serviceNamespace: options.namespace,
      serviceInstanceId: instanceId,
      version: SIDECAR_VERSION,
      logger,
    });
  }
  // Istio's standard metrics (issue 21): outbound requests as reporter="source", inbound ones
  // as reporter="destination".
  const istio =
    options.istioMetrics === 'off'
      ? undefined
      : new IstioMetrics(metrics, {
          component: 'sidecar',
          workload: {
            name: options.service,
            namespace: options.namespace,
            version: options.meta['version'],
          },
          trustDomain: meshIdentity?.trustDomain,
        });
  // Access logs (issue 21): both directions, sampled, written off the hot path.
  const accessLog: AccessLogWriter | undefined =
    options.accessLog === 'off' ? undefined : createAccessLogWriter(options.accessLog);
  if (accessLog !== undefined) registerAccessLogMetrics(metrics, 'sidecar', accessLog);
  const parts = {
    istio,
    accessLog:
      accessLog === undefined
        ? undefined
        : { sink: accessLog, sampleRate: options.accessLogSample, random: deps.dataPath?.random },
    tracing:
      tracing === undefined
        ? undefined
        : { sink: tracing, sampleRatio: options.tracingSampleRatio },
  };
  const dataPathDeps: SidecarProxyDeps = {
    ...deps.dataPath,
    outboundObservers: requestObservers('source', {
      ...parts,
      extra: deps.dataPath?.outboundObservers,
      edges: edges && { counter: edges.outbound, service: options.service },
    }),
    inboundObservers: requestObservers('destination', {
      ...parts,
      extra: deps.dataPath?.inboundObservers,
      edges: edges && { counter: edges.inbound, service: options.service },
    }),
  };
  let dataPath: RunningSidecarProxy;
  try {
    dataPath = await startSidecarProxy(
      {
        service: options.service,
        namespace: options.namespace,
        appHost: options.appHost,
        appPort: options.appPort,
        inbound: options.inbound,
        outbound: options.outbound,
        upstreams: options.upstreams,
        connectTimeoutMs: options.connectTimeoutMs,
        requestTimeoutMs: options.requestTimeoutMs,
        drainTimeoutMs: options.drainTimeoutMs,
        ...(served ? { tls: meshIdentity } : {}),
      },
      logger,
      dataPathDeps,
    );
  } catch (err) {
    await tracing?.shutdown();
    if (mtls.state === 'on') mtls.identity.close();
    await registry.close();
    await accessLog?.close();
    throw err;
  }
  const memoryFallbacks = watchMemoryFallbacks(metrics, log, clock, deps.memoryFallbacks);

  // The snapshot in force, where it came from, and when.
  let inForce: { snapshot: MeshSnapshot; from: 'disk' | 'agent'; appliedAt: number } | undefined;
  let stopping: string | undefined;
  let app: AppProcess | undefined;

  const identity: ProxyIdentity = {
    id: instanceId,
    kind: 'sidecar',
    name: options.service,
    namespace: options.namespace,
    ...(options.upstreams.length === 0
      ? {}
      : { upstreams: [...new Set(options.upstreams.map((u) => u.service))] }),
  };
  const subscriber = new MeshSubscriber({
    registry: options.registry,
    registryTls,
    ...(options.token === undefined ? {} : { token: options.token }),
    proxy: identity,
    dataDir: options.dataDir,
    apply: (snapshot) => {
      try {
        dataPath.applySnapshot(snapshot);
      } catch (err) {
        snapshotCounter.inc({ result: 'refused' });
        throw err;
      }
      snapshotCounter.inc({ result: 'applied' });
    },
    logger,
    clock,
    ...deps.subscriber,
  });
  const edgeReporter =
    edges === undefined
      ? undefined
      : new EdgeReporter({
          proxy: instanceId,
          sides: [
            { reporter: 'source', counter: edges.outbound },
            { reporter: 'destination', counter: edges.inbound },
          ],
          send: (report) => registry.meshReportEdges(report),
          health: () => clusterHealth(dataPath.clusters()),
          intervalMs: options.edgeReportIntervalMs,
          clock,
          logger: log,
        });
  const snapshotApplied = new Promise<void>((resolve) => {
    subscriber.on('applied', (snapshot, from) => {
      inForce = { snapshot, from, appliedAt: clock.now() };
      // A root rotation: the new bundle at once, a leaf from the new root soon.
      if (mtls.state === 'on') mtls.identity.applyTrust(snapshot.ca);
      snapshotInfo.reset();
      snapshotInfo.set({ version: snapshot.version, from }, 1);
      snapshotVersion.reset();
      snapshotVersion.set({ version: snapshot.version }, snapshot.index);
      log.info({ version: snapshot.version, from }, 'snapshot in force');
      resolve();
    });
  });

  const health = new AppHealthCheck({
    probe:
      deps.probe ??
      (options.appHealth === undefined
        ? tcpAppProbe(options.appHost, options.appPort)
        : httpAppProbe(options.appHost, options.appPort, options.appHealth)),
    health: options.health,
    clock,
    logger,
  });
  appHealthGauge.set(0);

  const inboundPort = Number(new URL(dataPath.inboundUrl).port);
  const instance: RegistrationInput = {
    id: instanceId,
    service: options.service,
    address: registeredAddress(options),
    port: inboundPort,
    tags: [...options.tags],
    meta: {
      ...options.meta,
      ...(options.namespace === 'default' ? {} : { namespace: options.namespace }),
      'app-port': String(options.appPort),
      'sidecar-version': SIDECAR_VERSION,
      protocol: 'http',
      // Auto mTLS: other sidecars reach this one over mTLS when it has an identity.
      ...(dataPath.mtls ? { [TLS_MODE_META]: TLS_MODE_ISTIO } : {}),
    },
    source: 'sidecar',
    checks: [
      {
        id: APP_CHECK_ID,
        name: `${options.service} app health, checked by its sidecar`,
        kind: 'ttl',
        ttlMs: options.health.ttlMs,
        notes:
          options.appHealth === undefined
            ? `TCP connect to ${options.appHost}:${options.appPort}`
            : `HTTP GET ${options.appHealth} on ${options.appHost}:${options.appPort}`,
      },
    ],
  };
  const registration = new SelfRegistration({
    registry,
    instance,
    clock,
    logger,
    status: () => ({ status: health.state.status, output: health.state.output }),
  });
  registration.on('registered', () => {
    registrations.inc();
    registeredGauge.set(1);
  });
  registration.on('heartbeat-failed', () => registeredGauge.set(registration.registered ? 1 : 0));
  health.on('change', (state) => {
    appHealthGauge.set(state.status === 'passing' ? 1 : 0);
    registration.heartbeatNow();
  });
  health.on('result', (_state, probe) =>
    probeCounter.inc({ result: probe.ok ? 'passed' : 'failed' }),
  );

  let resolveEnded!: (code: number) => void;
  const ended = new Promise<number>((resolve) => (resolveEnded = resolve));
  let stopped: Promise<number> | undefined;

  /** The stop sequence: deregister, drain inbound, stop the app, close. */
  const shutdown = (reason: string, exitCode: number | undefined): Promise<number> =>
    (stopped ??= (async () => {
      stopping = reason;
      log.info({ reason }, 'stopping');
      await health.stop();
      memoryFallbacks.stop();
      try {
        const r = await registration.deregister();
        log.info({ id: instanceId, notified: r?.notified }, 'deregistered');
      } catch (err) {
        log.warn({ id: instanceId, err }, 'deregistration failed (the TTL check will expire)');
      }
      registeredGauge.set(0);
      await dataPath.stopInbound();
      let code = exitCode;
      if (app !== undefined && !app.done) {
        const exit = await app.stop(options.appStopTimeoutMs);
        log.info({ code: exit.code, signal: exit.signal }, 'app stopped');
      }
      // Outbound worked until the app was gone; its last calls go to the graph, then all closes.
      await edgeReporter?.stop(EDGE_REPORT_STOP_WAIT_MS);
      await subscriber.close();
      await dataPath.close();
      // The last spans go out before the process exits.
      await tracing?.shutdown().catch((err: unknown) => log.warn({ err }, 'span flush failed'));
      await accessLog?.close();
      if (mtls.state === 'on') mtls.identity.close();
      await registry.close();
      const adminClosed = new Promise((r) => admin.close(r));
      admin.closeAllConnections(); // keep-alive clients (a prober) must not hold the exit
      await adminClosed;
      code ??= 0;
      log.info({ code }, 'stopped');
      return code;
    })().then(
      (code) => {
        resolveEnded(code);
        return code;
      },
      (err: unknown) => {
        log.error({ err }, 'error while stopping');
        resolveEnded(1);
        return 1;
      },
    ));

  const admin = createSidecarAdmin({
    notReadyReason: () => {
      if (stopping !== undefined) return { reason: 'draining' };
      if (inForce === undefined) return { reason: 'no-snapshot' };
      if (health.state.status !== 'passing')
        return { reason: 'app-unhealthy', detail: health.state.output };
      return undefined;
    },
    metricsText: async () => (await metrics.metrics()) + (await dataPath.metricsText()),
    configDump: () => ({
      service: options.service,
      namespace: options.namespace,
      instanceId,
      version: inForce?.snapshot.version ?? null,
      from: inForce?.from ?? null,
      appliedAt: inForce?.appliedAt ?? null,
      snapshot: inForce?.snapshot ?? null,
      // The leaf's public facts (never its key).
      mtls:
        mtls.state === 'on'
          ? { state: 'on', served, ...mtls.identity.info() }
          : { state: 'off', reason: mtls.reason },
    }),
    quit: () => void shutdown('POST /quitquitquit', undefined),
  });
  let adminUrl: string;
  try {
    adminUrl = await listen(admin, options.admin);
  } catch (err) {
    memoryFallbacks.stop();
    await dataPath.close();
    await accessLog?.close();
    if (mtls.state === 'on') mtls.identity.close();
    await registry.close();
    throw err;
  }

  registration.start();
  health.start();
  edgeReporter?.start();
  void subscriber.start().then((from) => {
    if (from === 'none')
      log.warn(
        { registry: options.registry, dataDir: options.dataDir },
        'no snapshot yet (none persisted, no agent answered): the app waits for one',
      );
  });

  if (options.command.length > 0) {
    void snapshotApplied.then(() => {
      if (stopping !== undefined) return;
      app = new AppProcess({
        command: options.command,
        env: {
          MESHWORK_OUTBOUND: dataPath.outboundUrl,
          MESHWORK_SIDECAR_ADMIN: adminUrl,
          MESHWORK_SERVICE: options.service,
        },
        logger,
        clock,
      });
      void app.exited.then((exit) => {
        if (stopping !== undefined) return;
        if (exit.code !== 0)
          log.error({ code: exit.code, signal: exit.signal }, 'the app crashed; deregistering');
        else log.info({ code: 0 }, 'the app exited');
        void shutdown('the app exited', exit.code);
      });
    });
  }

  log.info(
    { instanceId, inbound: dataPath.inboundUrl, outbound: dataPath.outboundUrl, adminUrl },
    'sidecar started',
  );
  return {
    instanceId,
    adminUrl,
    inboundUrl: dataPath.inboundUrl,
    outboundUrl: dataPath.outboundUrl,
    ended,
    get app() {
      return app;
    },
    proxy: dataPath,
    mtls,
    stop: (reason) => shutdown(reason, undefined),
  };
}
