/**
 * @module Gateway configuration: one schema for the file, env and flags; defaults with units;
 * precedence defaults < file < env < flags (as the agent's); validated once, then frozen. The
 * route rules are checked here too (regexes compile, balancers exist), so a bad file fails with
 * every problem listed before any port opens.
 */
import { DEFAULT_EDGE_REPORT_INTERVAL_MS } from '../proxy/edge-reporter.js';
import { z } from 'zod';
import { resolveBalancerSpec } from '../client/balancers/index.js';
import { registryTlsFileProblems } from '../client/tls-files.js';
import {
  circuitBreakerOptionsSchema,
  DEFAULT_CIRCUIT_BREAKER_OPTIONS,
  DEFAULT_RETRY_POLICY_OPTIONS,
  retryPolicyOptionsSchema,
} from '../client/resilience/index.js';
import { isMeshError } from '../core/errors.js';
import { readOptionSources, type EnvKey, type OptionSources } from '../config/config-sources.js';
import { issueLines, validateOptions } from '../config/validate-options.js';
import {
  DEFAULT_TRACING_SAMPLE_RATIO,
  tracingEndpointSchema,
  tracingSampleRatioSchema,
} from '../config/tracing-options.js';
import { hostPortSchema } from '../protocol/host-port.js';
import { serviceNameSchema } from '../protocol/registration.js';
import { routeSchema } from '../proxy/route-config.js';
import { accessLogSampleSchema, accessLogSchema } from '../telemetry/access-log-options.js';
import { istioMetricsSchema } from '../telemetry/istio-metrics-options.js';

const hostPort = hostPortSchema('127.0.0.1:8080');

const balancerSpec = z.union([
  z.string().min(1),
  z.object({ type: z.string().min(1) }).passthrough(),
]);

export const gatewayOptionsSchema = z
  .object({
    /** The proxy listener. */
    listen: hostPort,
    /** The admin listener: /metrics, /health/ready, /health/live (port 0 picks one). */
    admin: hostPort,
    /** Registry agent URLs (any of them answers). */
    registry: z.array(z.string().url('must be a URL like http://127.0.0.1:8500')).min(1),
    /** PEM CA an `https://` registry's certificate is checked against (docs/security.md). */
    registryCaFile: z.string().min(1).optional(),
    /** PEM client certificate for an agent that requires one, with `registryKeyFile`. */
    registryCertFile: z.string().min(1).optional(),
    registryKeyFile: z.string().min(1).optional(),
    /**
     * An ACL token sent to the agent as `X-Consul-Token` (discovery reads; in mesh mode the push
     * stream: `mesh read`, and with mTLS the certificate: `service:<serviceAccount> write`).
     * docs/security.md, "Registry ACLs".
     */
    token: z.string().min(1).max(256).optional(),
    /** Host routing: `<service>.<domain>` goes to the service; '' turns it off. */
    domain: z.string().regex(/^([a-z0-9-]+(\.[a-z0-9-]+)*)?$/, 'must be a DNS name or ""'),
    /** The balancer of every route that names none. */
    balancer: balancerSpec,
    /** Connect timeout to an upstream instance. */
    connectTimeoutMs: z.number().int().min(1).max(60_000),
    /** Deadline of a request, retries included, unless its route sets timeoutMs. */
    requestTimeoutMs: z.number().int().min(1).max(3_600_000),
    /** How long an upstream may stay silent in the middle of a response body (0: no limit). */
    upstreamIdleTimeoutMs: z.number().int().min(0).max(3_600_000),
    /** Idle keep-alive connections to upstreams are closed after this long. */
    upstreamKeepAliveMs: z.number().int().min(1).max(600_000),
    /** Connections per upstream instance (pool size; 0 = no limit). */
    upstreamConnections: z.number().int().min(0).max(10_000),
    /**
     * The upstream HTTP/1.1 client: "native" (node's own parser under a lean pool, the fast one;
     * undici, with a warning and meshwork_gateway_http1_fallback, where that parser fails its
     * self-test at load) or "undici".
     */
    upstreamClient: z.enum(['native', 'undici']),
    /** Retries: the SDK's retry policy options (docs/resilience.md). */
    retry: z.record(z.string(), z.unknown()),
    /** Passive outlier ejection: the SDK's circuit breaker options. */
    outlierDetection: z.record(z.string(), z.unknown()),
    /** Panic below this percent of healthy instances in a cluster (0 = never panic). */
    panicThresholdPercent: z.number().min(0).max(100),
    /**
     * The downstream HTTP/1.1 server: "native" (node's own parser under a lean server, the
     * fast one; node:http, with a warning and meshwork_gateway_http1_fallback, where that parser
     * fails its self-test at load) or "node" (node:http).
     */
    downstreamServer: z.enum(['native', 'node']),
    /** Idle keep-alive connections from clients are closed after this long. */
    downstreamKeepAliveMs: z.number().int().min(1).max(3_600_000),
    /** Largest request head (node's maxHeaderSize); larger ones get 431. */
    maxHeaderBytes: z.number().int().min(1024).max(1_048_576),
    /** Malformed requests per second per client address before its connections are dropped unanswered. */
    maxMalformedPerSecond: z.number().int().min(1).max(1_000_000),
    /** SIGTERM: in-flight requests may take this long to finish before the process exits. */
    drainTimeoutMs: z.number().int().min(0).max(600_000),
    logLevel: z.enum(['error', 'warn', 'info', 'debug', 'silent']),
    routes: z.array(routeSchema).max(10_000),
    /**
     * Mesh mode: routes and endpoints come from the control plane's snapshots for this gateway
     * (the VirtualServices whose `gateways` list `name`), not from `routes` and discovery.
     */
    mesh: z.boolean(),
    /** The gateway's name in the mesh: what a VirtualService's `gateways` lists. */
    name: z.string().regex(/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/, 'must be a DNS name'),
    /** The gateway's namespace in the mesh. */
    namespace: z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'must be a DNS label'),
    /** Mesh mode: where the last good snapshot is kept (served from when no agent answers). */
    dataDir: z.string().min(1),
    /**
     * Mesh mode, mesh mTLS (issue 20): `auto` gets a certificate for `serviceAccount` from the
     * agent's CA when the agent has one, before the listener takes traffic, and originates mTLS
     * to sidecars with it; `off` never asks. Ignored outside mesh mode (no mesh, no identity).
     */
    mtls: z.enum(['auto', 'off'], { error: 'must be auto or off' }),
    /**
     * `auto`: how long the start waits for the agent's CA (roots, then the first leaf). No agent
     * in that time: the gateway runs without mTLS and says so; a CA that answered but signed
     * nothing in that time: the start fails.
     */
    mtlsStartTimeoutMs: z.number().int().min(0).max(600_000),
    /**
     * Mesh mode: the gateway's identity, `spiffe://<trust-domain>/ns/<namespace>/sa/<this>`;
     * unset: the gateway's `name` (so the call graph and AuthorizationPolicies know it by one
     * name), which must then be a service name. With ACLs on, `token` must allow
     * `service:<this> write` (the CA signs only for such a token). See gatewayServiceAccount.
     */
    serviceAccount: serviceNameSchema.optional(),
    /**
     * Mesh mode: how often the gateway reports its calls per edge to the agent for the call
     * graph (docs/observability.md, "Call graph"); 0 turns counting and reporting off.
     */
    edgeReportIntervalMs: z.number().int().min(0).max(3_600_000),
    /**
     * Tracing (docs/observability.md): the OTLP/HTTP traces URL spans are exported to; absent:
     * no spans (trace headers pass untouched).
     */
    tracingEndpoint: tracingEndpointSchema.optional(),
    /** Requests that come with no sampling decision are sampled at this ratio, 0..1. */
    tracingSampleRatio: tracingSampleRatioSchema,
    /** Access logs (docs/observability.md): `off`, `stdout` or a file path (appended to). */
    accessLog: accessLogSchema,
    /** The share of successful requests logged, 0..1 (failed ones always are). */
    accessLogSample: accessLogSampleSchema,
    /**
     * Istio's standard request metrics (`istio_requests_total` ...; docs/observability.md):
     * `on` or `off`.
     */
    istioMetrics: istioMetricsSchema,
  })
  .strict();

export type GatewayOptions = z.output<typeof gatewayOptionsSchema>;

/**
 * Keys a reload (SIGHUP) cannot apply to a running gateway: they shape its listeners, its
 * upstream pools or its logger. The rest (routes, domain, balancer, retry, timeouts of requests,
 * outlier detection, panic threshold, malformed-request limit, drain deadline) apply at once.
 */
export const GATEWAY_RESTART_KEYS = Object.freeze([
  'listen',
  'admin',
  'registry',
  'registryCaFile',
  'registryCertFile',
  'registryKeyFile',
  'token',
  'connectTimeoutMs',
  'upstreamIdleTimeoutMs',
  'upstreamKeepAliveMs',
  'upstreamConnections',
  'upstreamClient',
  'downstreamServer',
  'downstreamKeepAliveMs',
  'maxHeaderBytes',
  'logLevel',
  'mesh',
  'name',
  'namespace',
  'dataDir',
  'mtls',
  'mtlsStartTimeoutMs',
  'serviceAccount',
  'edgeReportIntervalMs',
  'tracingEndpoint',
  'tracingSampleRatio',
  'accessLog',
  'accessLogSample',
  'istioMetrics',
] as const satisfies readonly (keyof GatewayOptions)[]);

export const DEFAULT_GATEWAY_OPTIONS = Object.freeze({
  listen: '127.0.0.1:8080',
  admin: '127.0.0.1:9901',
  registry: Object.freeze(['http://127.0.0.1:8500']),
  domain: 'mesh.local',
  balancer: 'round-robin',
  connectTimeoutMs: 1_000,
  requestTimeoutMs: 15_000,
  upstreamIdleTimeoutMs: 60_000,
  upstreamKeepAliveMs: 4_000,
  upstreamConnections: 0,
  upstreamClient: 'native',
  retry: Object.freeze({ ...DEFAULT_RETRY_POLICY_OPTIONS }),
  outlierDetection: Object.freeze({
    ...DEFAULT_CIRCUIT_BREAKER_OPTIONS,
    // A gateway sees a dead instance quickly (it carries many callers' traffic): eject sooner.
    baseEjectionMs: 10_000,
  }),
  panicThresholdPercent: 50,
  downstreamServer: 'native',
  downstreamKeepAliveMs: 5_000,
  maxHeaderBytes: 16_384,
  maxMalformedPerSecond: 20,
  drainTimeoutMs: 10_000,
  logLevel: 'info',
  routes: Object.freeze([]),
  mesh: false,
  edgeReportIntervalMs: DEFAULT_EDGE_REPORT_INTERVAL_MS,
  name: 'meshwork-gateway',
  namespace: 'default',
  dataDir: './.meshwork/gateway',
  mtls: 'auto',
  mtlsStartTimeoutMs: 5_000,
  tracingSampleRatio: DEFAULT_TRACING_SAMPLE_RATIO,
  accessLog: 'off',
  accessLogSample: 1,
  istioMetrics: 'on',
});

const ENV_KEYS: Record<string, EnvKey> = {
  MESHWORK_GATEWAY__LISTEN: { key: 'listen', type: 'string' },
  MESHWORK_GATEWAY__ADMIN: { key: 'admin', type: 'string' },
  MESHWORK_GATEWAY__REGISTRY: { key: 'registry', type: 'list' },
  MESHWORK_GATEWAY__REGISTRY_CA_FILE: { key: 'registryCaFile', type: 'string' },
  MESHWORK_GATEWAY__REGISTRY_CERT_FILE: { key: 'registryCertFile', type: 'string' },
  MESHWORK_GATEWAY__REGISTRY_KEY_FILE: { key: 'registryKeyFile', type: 'string' },
  MESHWORK_GATEWAY__TOKEN: { key: 'token', type: 'string' },
  MESHWORK_GATEWAY__DOMAIN: { key: 'domain', type: 'string' },
  MESHWORK_GATEWAY__BALANCER: { key: 'balancer', type: 'string' },
  MESHWORK_GATEWAY__CONNECT_TIMEOUT_MS: { key: 'connectTimeoutMs', type: 'number' },
  MESHWORK_GATEWAY__REQUEST_TIMEOUT_MS: { key: 'requestTimeoutMs', type: 'number' },
  MESHWORK_GATEWAY__UPSTREAM_IDLE_TIMEOUT_MS: { key: 'upstreamIdleTimeoutMs', type: 'number' },
  MESHWORK_GATEWAY__UPSTREAM_CLIENT: { key: 'upstreamClient', type: 'string' },
  MESHWORK_GATEWAY__DOWNSTREAM_SERVER: { key: 'downstreamServer', type: 'string' },
  MESHWORK_GATEWAY__PANIC_THRESHOLD_PERCENT: { key: 'panicThresholdPercent', type: 'number' },
  MESHWORK_GATEWAY__MAX_HEADER_BYTES: { key: 'maxHeaderBytes', type: 'number' },
  MESHWORK_GATEWAY__DRAIN_TIMEOUT_MS: { key: 'drainTimeoutMs', type: 'number' },
  MESHWORK_GATEWAY__LOG_LEVEL: { key: 'logLevel', type: 'string' },
  MESHWORK_GATEWAY__MESH: { key: 'mesh', type: 'boolean' },
  MESHWORK_GATEWAY__NAME: { key: 'name', type: 'string' },
  MESHWORK_GATEWAY__NAMESPACE: { key: 'namespace', type: 'string' },
  MESHWORK_GATEWAY__DATA_DIR: { key: 'dataDir', type: 'string' },
  MESHWORK_GATEWAY__MTLS: { key: 'mtls', type: 'string' },
  MESHWORK_GATEWAY__MTLS_START_TIMEOUT_MS: { key: 'mtlsStartTimeoutMs', type: 'number' },
  MESHWORK_GATEWAY__SERVICE_ACCOUNT: { key: 'serviceAccount', type: 'string' },
  MESHWORK_GATEWAY__EDGE_REPORT_INTERVAL_MS: { key: 'edgeReportIntervalMs', type: 'number' },
  MESHWORK_GATEWAY__TRACING_ENDPOINT: { key: 'tracingEndpoint', type: 'string' },
  MESHWORK_GATEWAY__TRACING_SAMPLE_RATIO: { key: 'tracingSampleRatio', type: 'string' },
  MESHWORK_GATEWAY__ACCESS_LOG: { key: 'accessLog', type: 'string' },
  MESHWORK_GATEWAY__ACCESS_LOG_SAMPLE: { key: 'accessLogSample', type: 'decimal' },
  MESHWORK_GATEWAY__ISTIO_METRICS: { key: 'istioMetrics', type: 'string' },
};

/** Problems a schema cannot see: balancer names and options, and retry/outlier combinations. */
/** The gateway's mesh identity's service account: `serviceAccount`, or else its `name`. */
export function gatewayServiceAccount(o: GatewayOptions): string {
  return o.serviceAccount ?? o.name;
}

function semanticProblems(o: GatewayOptions): string[] {
  const problems: string[] = [];
  const checkBalancer = (spec: unknown, path: string): void => {
    try {
      resolveBalancerSpec(spec);
    } catch (err) {
      if (!isMeshError(err)) throw err;
      const listed = (err.details?.problems as string[] | undefined) ?? [err.message];
      for (const p of listed) problems.push(`${path}: ${p}`);
    }
  };
  checkBalancer(o.balancer, 'balancer');
  o.routes.forEach((r, i) => {
    if (r.balancer !== undefined) checkBalancer(r.balancer, `routes[${i}].balancer`);
  });
  const retry = retryPolicyOptionsSchema.safeParse({ ...DEFAULT_RETRY_POLICY_OPTIONS, ...o.retry });
  if (!retry.success) problems.push(...issueLines(retry.error.issues, 'retry'));
  const od = circuitBreakerOptionsSchema.safeParse({
    ...DEFAULT_GATEWAY_OPTIONS.outlierDetection,
    ...o.outlierDetection,
  });
  if (!od.success) problems.push(...issueLines(od.error.issues, 'outlierDetection'));
  problems.push(...registryTlsFileProblems(o));
  if (o.mesh && o.serviceAccount === undefined && !serviceNameSchema.safeParse(o.name).success)
    problems.push(
      `serviceAccount: required when the name "${o.name}" is not a service name (the identity's service account is the name by default): set --service-account`,
    );
  if (o.mesh && o.routes.length > 0)
    problems.push(
      'routes: not allowed with mesh (--mesh): mesh mode takes its routes from the control plane (VirtualServices bound to the gateway); remove one of them',
    );
  const names = new Set<string>();
  o.routes.forEach((r, i) => {
    if (r.name === undefined) return;
    if (names.has(r.name)) problems.push(`routes[${i}].name: "${r.name}" is used twice`);
    names.add(r.name);
  });
  return problems;
}

/**
 * Validates a parsed document against the gateway schema (no defaults merged in, for tests
 * and `config validate`): answers the options or throws CONFIG_INVALID listing every problem.
 */
export function parseGatewayOptions(
  merged: unknown,
  extraProblems: readonly string[] = [],
): GatewayOptions {
  return validateOptions(gatewayOptionsSchema, merged, extraProblems, semanticProblems);
}

/**
 * Resolves the gateway's options: defaults < config file < env < flags. Throws one
 * CONFIG_INVALID error listing every problem, before anything starts.
 */
export function resolveGatewayOptions(input: OptionSources): GatewayOptions {
  const { file: fileValues, env, flags } = readOptionSources(input, ENV_KEYS);
  const merged = {
    ...DEFAULT_GATEWAY_OPTIONS,
    ...fileValues,
    ...env.values,
    ...flags,
  };
  return parseGatewayOptions(merged, env.problems);
}
