/** @module startAgent: wires store, registry, metrics and HTTP server into a running agent. */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { systemClock, type Clock } from '../core/clock.js';
import { errors } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Server as HttpsServer } from 'node:https';
import type { AclResolver } from '../registry/acl/acl-contract.js';
import { AGENT_TLS_FILE_NAMES, checkFloorsOf, type AgentOptions } from '../agent/options.js';
import { readTlsFiles } from '../client/tls-files.js';
import { startAutoTls, type AutoTls } from './agent-auto-tls.js';
import type { ParsedRegistration } from '../protocol/registration.js';
import { createRegistry, type Registry } from '../registry/registry.js';
import { RegistryMetrics } from '../registry/registry-metrics.js';
import type { CatalogStore } from '../registry/store/catalog-store.js';
import { createMemoryCatalogStore } from '../registry/store/memory/memory-catalog-store.js';
import { createSqliteCatalogStore } from '../registry/store/sqlite/sqlite-catalog-store.js';
import type { EtcdConnection } from '../registry/store/etcd/etcd-connection.js';
import { createAgentCluster } from '../registry/cluster/agent-cluster.js';
import type { AgentMember } from '../protocol/api-types.js';
import {
  addHttpsListener,
  createApiServer,
  setApiTls,
  type ApiTlsOptions,
} from '../registry-api/server.js';
import { createControlPlane } from '../control-plane/control-plane.js';
import { createMeshCa, type MeshCa } from '../registry/ca/mesh-ca.js';
import { caRoutes } from '../registry-api/native/ca-routes.js';
import { consulConnectCaRoutes } from '../registry-api/consul/consul-connect-ca-routes.js';
import { createPushServer } from '../control-plane/push/push-server.js';
import { uiRoutes } from '../ui/serve.js';
import { CallGraph } from '../control-plane/graph/call-graph.js';
import { callGraphRoutes } from '../control-plane/graph/graph-routes.js';
import { GraphShare } from '../control-plane/graph/graph-share.js';
import { registerGraphShareMetrics } from '../control-plane/graph/call-graph-metrics.js';
import { DEFAULT_EDGE_REPORT_INTERVAL_MS } from '../proxy/edge-reporter.js';
import { CALL_GRAPH_SHARE_PREFIX } from '../registry/catalog-view.js';
import type { DnsAddress } from '../dns/dns-server.js';
import { createAgentDns } from './agent-dns.js';
import { createMetricsRegistry } from '../telemetry/metrics.js';
import { AclSystem } from '../registry/acl/acl-system.js';
import {
  createMemoryAclStore,
  createSqliteAclStore,
  type AclStore,
} from '../registry/acl/acl-store.js';
import { fileAuditSink, loggerAuditSink, type AuditSink } from '../registry-api/audit-log.js';
import { createEurekaLeaseKeeper } from '../registry-api/eureka/eureka-leases.js';
import type { EurekaLeaseKeeper } from '../registry-api/eureka/eureka-lease-contract.js';
import { eurekaLeaseRoutes } from '../registry-api/native/eureka-lease-routes.js';

export interface RunningAgent {
  readonly registry: Registry;
  /** The mesh CA (its roots live in the store). */
  readonly ca: MeshCa;
  /** The agent's tokens and policies (its resolver is off unless `acl.enabled`). */
  readonly acl: AclSystem;
  /**
   * Base URL of the API, e.g. http://127.0.0.1:8500: the plain listener's, or the HTTPS one's
   * with `http: off`.
   */
  readonly url: string;
  /** Base URL of the HTTPS listener (https://127.0.0.1:8501), unless `https: off`. */
  readonly httpsUrl: string | undefined;
  /**
   * Reads the TLS files of `tls` again and serves them on new HTTPS connections (SIGHUP); open
   * connections keep theirs. Throws CONFIG_INVALID, and keeps the running ones, if they are bad.
   */
  reloadTls(tls: AgentOptions['tls']): void;
  /** Where DNS listens (UDP and TCP), or undefined with `dns: off`. */
  readonly dns: DnsAddress | undefined;
  /**
   * The Eureka lease keeper (eviction and self-preservation), undefined with `eureka.enabled`
   * off; the Eureka routes tell it of registrations, renewals and cancellations.
   */
  readonly eurekaLeases: EurekaLeaseKeeper | undefined;
  /** Re-applies the config file's services (SIGHUP). */
  applyConfigServices(services: readonly ParsedRegistration[]): Promise<void>;
  /** Stops accepting, drains, closes the store. */
  close(): Promise<void>;
}

/** Reported by the Consul API's /v1/agent/self (as `meshwork --version` prints it). */
const MESHWORK_VERSION = '0.1.0';

/** The apply set that owns the services declared in the agent's config file. */
export const configSet = (nodeName: string): string => `agent-config:${nodeName}`;

/** Parts an agent may be given instead of its defaults (the composition root's seams). */
export interface AgentDeps {
  /** Who may get which certificate (tests inject a resolver); default: the agent's ACL system. */
  readonly acl?: AclResolver;
  /** The mesh CA's clock (its root retirement timers); default: the system clock. */
  readonly caClock?: Clock;
  /**
   * Cluster mode: how often the agent shares its call graph counts (default: the proxies'
   * report interval, DEFAULT_EDGE_REPORT_INTERVAL_MS); tests shorten it.
   */
  readonly graphShareIntervalMs?: number;
  /**
   * The registry's clock (check deadlines, session TTLs, lock delays, blocking-query waits);
   * default: the system clock. Tests drive it instead of sleeping.
   */
  readonly registryClock?: Clock;
}

/** How the agent reaches etcd: its options' endpoints, TLS files (read now) and user. */
function etcdConnection(options: AgentOptions): EtcdConnection {
  const read = (field: string, path: string | undefined): Buffer | undefined => {
    if (path === undefined) return undefined;
    try {
      return readFileSync(path);
    } catch (err) {
      throw errors.configInvalid([`${field}: cannot read ${path}: ${(err as Error).message}`]);
    }
  };
  const caPem = read('etcdCa', options.etcdCa);
  const certPem = read('etcdCert', options.etcdCert);
  const keyPem = read('etcdKey', options.etcdKey);
  return {
    endpoints: options.etcdEndpoints,
    ...(caPem === undefined
      ? {}
      : {
          tls: {
            caPem,
            ...(certPem === undefined ? {} : { certPem }),
            ...(keyPem === undefined ? {} : { keyPem }),
          },
        }),
    ...(options.etcdUsername === undefined || options.etcdPassword === undefined
      ? {}
      : { auth: { username: options.etcdUsername, password: options.etcdPassword } }),
  };
}

export async function startAgent(
  options: AgentOptions,
  logger: Logger,
  deps: AgentDeps = {},
): Promise<RunningAgent> {
  // The HTTPS listener's files, read before anything starts (bad ones: CONFIG_INVALID, exit 2).
  // With tls.auto they hold only the client CAs; the certificate comes from the CA, once started.
  const fileTls = options.https === 'off' ? undefined : apiTls(options.tls);
  const kind = options.dev ? 'memory' : options.store;
  const metrics = createMetricsRegistry();
  const etcd = kind === 'etcd' ? etcdConnection(options) : undefined;
  // Cluster mode's modules (etcd3 and its gRPC stack) load on use: an agent alone never loads
  // them (test/unit/cli/commands/agent-footprint.test.ts).
  const store: CatalogStore =
    kind === 'memory'
      ? createMemoryCatalogStore()
      : etcd !== undefined
        ? (await import('../registry/store/etcd/etcd-catalog-store.js')).createEtcdCatalogStore({
            ...etcd,
            prefix: options.etcdPrefix,
            logger,
          })
        : createSqliteCatalogStore({
            dataDir: resolve(options.dataDir),
            logger,
            metrics,
            acceptDataLoss: options.acceptDataLoss,
          });
  // The metrics read the registry at scrape time; the registry takes the metrics at construction.
  const holder: { registry?: Registry } = {};
  const registryMetrics = new RegistryMetrics(metrics, {
    countsByStatus: () =>
      holder.registry?.countsByStatus() ?? {
        passing: 0,
        warning: 0,
        critical: 0,
        maintenance: 0,
        starting: 0,
      },
    watchers: () => ({
      blocking: holder.registry?.watchers().blocking ?? 0,
      streams: holder.registry?.watchers().streams ?? 0,
      dropped: holder.registry?.watchers().dropped ?? 0,
    }),
    index: () => holder.registry?.index ?? 0,
    kv: () => ({ bytes: holder.registry?.kvBytes ?? 0, quotaBytes: options.kv.quotaBytes }),
  });
  // Cluster mode: agents list each other under leases and split the checks between them;
  // otherwise this agent is the cluster and runs every check.
  const cluster = await createAgentCluster({
    nodeName: options.nodeName,
    etcd: etcd === undefined ? undefined : { ...etcd, prefix: options.etcdPrefix },
    logger,
  });
  const { membership } = cluster;
  const reg = createRegistry({
    store,
    nodeName: options.nodeName,
    logger,
    metrics: registryMetrics,
    limits: {
      checkFloors: checkFloorsOf(options),
      maxChecksPerInstance: options.checks.maxPerInstance,
      kvQuotaBytes: options.kv.quotaBytes,
    },
    checkUpdateIntervalMs: options.checks.updateIntervalMs,
    ownership: cluster.ownership,
    ...(deps.registryClock === undefined ? {} : { clock: deps.registryClock }),
  });
  holder.registry = reg;
  // Tokens and policies live beside the catalog, in a store of their own (acl-store.ts).
  const aclStore: AclStore =
    kind === 'memory'
      ? createMemoryAclStore()
      : etcd !== undefined
        ? (await import('../registry/acl/etcd-acl-store.js')).createEtcdAclStore({
            ...etcd,
            prefix: options.etcdPrefix,
          })
        : createSqliteAclStore(resolve(options.dataDir));
  const acl = new AclSystem({
    store: aclStore,
    enabled: options.acl.enabled,
    defaultPolicy: options.acl.defaultPolicy,
    shared: kind === 'etcd',
    refreshMs: options.acl.refreshMs,
  });
  const audit: AuditSink | undefined =
    options.auditLog === ''
      ? undefined
      : options.auditLog === '-'
        ? loggerAuditSink(logger)
        : fileAuditSink(resolve(options.auditLog), logger);
  const closeAcl = async (): Promise<void> => {
    await acl.close();
    await audit?.close();
  };
  try {
    await cluster.start();
    await reg.start();
    await acl.start();
  } catch (err) {
    await cluster.leave();
    await reg.close();
    await store.close();
    await closeAcl();
    throw err;
  }

  const applyConfigServices = async (services: readonly ParsedRegistration[]): Promise<void> => {
    const r = await reg.apply(configSet(options.nodeName), services, 'config');
    logger.info(
      {
        created: r.created.length,
        updated: r.updated.length,
        deleted: r.deleted.length,
        index: r.index,
      },
      'config services applied',
    );
  };
  await applyConfigServices(options.services);

  // The mesh CA: its roots are in the store (made on the first start, shared by a cluster).
  const ca = createMeshCa({
    store: reg.reservedKv,
    trustDomain: options.trustDomain,
    leafTtlMs: options.caLeafTtlMs,
    logger,
    ...(deps.caClock === undefined ? {} : { clock: deps.caClock }),
  });
  let autoTls: AutoTls | undefined;
  try {
    await ca.start();
    if (fileTls !== undefined && options.tls.auto === true)
      autoTls = await startAutoTls({ ca, hosts: autoTlsHosts(options.https), logger });
  } catch (err) {
    ca.close();
    await cluster.leave();
    await reg.close();
    throw err;
  }
  const withCert = (tls: ApiTlsOptions): ApiTlsOptions => {
    const auto = autoTls?.current();
    return auto === undefined ? tls : { ...tls, cert: auto.cert, key: auto.key };
  };
  const httpsTls = fileTls === undefined ? undefined : withCert(fileTls);

  let url = ''; // known once listening
  const joinedAt = Date.now();
  const self = (): AgentMember => ({ nodeName: options.nodeName, url, joinedAt, status: 'alive' });
  const members = async (): Promise<readonly AgentMember[]> =>
    membership === undefined ? [self()] : membership.members();
  // The control plane compiles snapshots from the catalog; the push server streams them to the
  // proxies on this agent's HTTP server.
  const controlPlane = createControlPlane({
    catalog: reg,
    logger,
    metrics,
    trust: { current: () => ca.trust(), onChange: (listener) => ca.onChange(listener) },
  });
  const push = createPushServer({
    source: controlPlane,
    nodeName: options.nodeName,
    metrics,
    logger,
    members,
  });
  // The call graph: the proxies' edge reports, aggregated (issue 21).
  const callGraph = new CallGraph();
  const localGateways = (): string[] =>
    push.book
      .list()
      .filter((p) => p.kind === 'gateway')
      .map((p) => p.name);
  // Cluster mode: the agents share their proxies' counts through the store, so each serves the
  // whole mesh's graph (graph-share.ts).
  const graphShare =
    kind === 'etcd'
      ? new GraphShare({
          graph: callGraph,
          kv: reg.reservedKv,
          prefix: CALL_GRAPH_SHARE_PREFIX,
          nodeName: options.nodeName,
          intervalMs: deps.graphShareIntervalMs ?? DEFAULT_EDGE_REPORT_INTERVAL_MS,
          gateways: localGateways,
          count: registerGraphShareMetrics(metrics),
          clock: systemClock,
          logger,
        })
      : undefined;
  graphShare?.start();
  const graphRoutes = callGraphRoutes({
    graph: callGraph,
    metrics,
    onHealth: (proxy, health) => push.book.reportHealth(proxy, health),
    nodes: () => ({
      services: reg.listServices().services.map((s) => s.name),
      gateways: localGateways(),
      otherGateways: graphShare?.otherGateways() ?? [],
    }),
  });
  // Eureka leases: evicted on the registry's clock (their TTL checks run on it too).
  const eurekaLeases = options.eureka.enabled
    ? createEurekaLeaseKeeper({
        registry: reg,
        clock: deps.registryClock ?? systemClock,
        options: options.eureka,
        metrics,
        logger,
      })
    : undefined;
  // The CA's routes check tokens with the injected resolver (tests), else the agent's ACLs.
  const caAcl = deps.acl ?? acl;
  // The API's listeners: the plain one, the HTTPS one, or both. The first is the one fastify
  // listens with (and the one the agent is known by); HTTPS beside it is a second server.
  const primary = hostPort(options.http === 'off' ? options.https : options.http);
  const { host, port } = primary;
  const app = createApiServer({
    ...(options.http === 'off' ? { https: httpsTls } : {}),
    registry: reg,
    metrics,
    logger,
    members,
    plugins: [
      push.routes,
      uiRoutes(),
      graphRoutes,
      caRoutes({ ca, acl: caAcl }),
      ...(eurekaLeases === undefined ? [] : [eurekaLeaseRoutes(eurekaLeases, options.eureka)]),
      consulConnectCaRoutes({
        ca,
        acl: caAcl,
        ...(deps.caClock === undefined ? {} : { clock: deps.caClock }),
      }),
    ],
    acl,
    ...(audit === undefined ? {} : { audit }),
    httpMaxConnsPerClient: options.httpMaxConnsPerClient,
    isReady: () => reg.writable,
    notReadyReason: () => reg.unwritableReason,
    consul: {
      // One agent is one Consul node; an agent listening on every address is reached on loopback.
      node: {
        nodeName: options.nodeName,
        datacenter: options.datacenter,
        address: host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host,
      },
      legacyVerbs: options.consul.legacyVerbs,
      version: MESHWORK_VERSION,
      // operator/raft/configuration: etcd's members in cluster mode (undefined alone).
      etcdServers: () => cluster.servers(),
    },
    ...(options.eureka.enabled
      ? {
          eureka: {
            deltaRetentionMs: options.eureka.deltaRetentionMs,
            ...(eurekaLeases === undefined ? {} : { leases: eurekaLeases }),
            ...(deps.registryClock === undefined ? {} : { clock: deps.registryClock }),
          },
        }
      : {}),
    access: {
      allowedHosts: options.allowedHosts,
      allowedOrigins: options.allowedOrigins,
      // Names nobody but this machine's resolver answers for: no page can rebind them.
      knownNames: [hostname(), ...(isIP(host) === 0 ? [host] : [])],
    },
  });
  const beside =
    options.http !== 'off' && httpsTls !== undefined ? addHttpsListener(app, httpsTls) : undefined;
  const stopMesh = async (): Promise<void> => {
    eurekaLeases?.close();
    graphShare?.close();
    await push.close();
    controlPlane.close();
    autoTls?.close();
    ca.close();
  };
  let httpsUrl: string | undefined;
  try {
    await app.listen({ host, port });
    if (beside !== undefined) {
      const at = hostPort(options.https);
      await new Promise<void>((resolveListen, rejectListen) => {
        beside.once('error', rejectListen);
        beside.listen(at.port, at.host, () => {
          beside.off('error', rejectListen);
          resolveListen();
        });
      });
      httpsUrl = urlOf('https', at.host, beside.address());
    }
  } catch (err) {
    await app.close();
    await cluster.leave();
    await stopMesh();
    await reg.close();
    await closeAcl();
    throw err;
  }
  url = urlOf(options.http === 'off' ? 'https' : 'http', host, app.server.address());
  if (options.http === 'off') httpsUrl = url;
  const httpsServer = options.http === 'off' ? (app.server as unknown as HttpsServer) : beside;
  if (httpsServer !== undefined && fileTls !== undefined) autoTls?.attach(httpsServer, fileTls);
  const dns = createAgentDns({
    options,
    registry: reg,
    host,
    membership,
    logger,
    metrics,
    ...(options.acl.enabled && options.acl.dns ? { acl } : {}),
  });
  try {
    await dns?.listen();
    await cluster.join({ nodeName: options.nodeName, url, joinedAt });
    dns?.followMembers();
  } catch (err) {
    await cluster.leave();
    await dns?.close();
    await app.close();
    await stopMesh();
    await reg.close();
    await closeAcl();
    throw err;
  }
  logger.info({ url, httpsUrl, store: store.kind, nodeName: options.nodeName }, 'agent listening');

  return {
    registry: reg,
    ca,
    acl,
    url,
    httpsUrl,
    reloadTls: (tls) => {
      if (httpsServer === undefined) return;
      const files = apiTls(tls);
      autoTls?.attach(httpsServer, files);
      setApiTls(httpsServer, withCert(files));
      logger.info({ certFile: tls.certFile }, 'TLS certificate reloaded');
    },
    dns: dns?.address,
    eurekaLeases,
    applyConfigServices,
    close: async () => {
      await cluster.leave();
      reg.drain();
      await dns?.close();
      // Ends the push streams first (their proxies reconnect to another agent).
      await app.close();
      await stopMesh();
      await reg.close();
      await closeAcl();
    },
  };
}

/**
 * The names and addresses the agent's own certificate carries (tls.auto): the HTTPS host (every
 * loopback address when it binds them all), localhost and the machine's hostname.
 */
function autoTlsHosts(https: string): string[] {
  const { host } = hostPort(https);
  const any = host === '0.0.0.0' || host === '::';
  return [...new Set([...(any ? ['127.0.0.1', '::1'] : [host]), 'localhost', hostname()])];
}

/** A listen address's host (brackets off) and port. */
function hostPort(address: string): { host: string; port: number } {
  const sep = address.lastIndexOf(':');
  return {
    host: address.slice(0, sep).replace(/^\[|\]$/g, ''),
    port: Number(address.slice(sep + 1)),
  };
}

/** The base URL of a listening server. */
function urlOf(
  scheme: 'http' | 'https',
  host: string,
  address: ReturnType<HttpsServer['address']>,
): string {
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/**
 * The HTTPS listener's TLS from the agent's `tls` files, read now; bad files throw one
 * CONFIG_INVALID naming each (they were checked when the options resolved, but may have changed
 * since).
 */
function apiTls(tls: AgentOptions['tls']): ApiTlsOptions {
  const { material, problems } = readTlsFiles(tls, AGENT_TLS_FILE_NAMES);
  if (problems.length > 0) throw errors.configInvalid(problems);
  return {
    ...material,
    requestCert: tls.verifyIncoming,
    rejectUnauthorized: tls.verifyIncoming,
  };
}
