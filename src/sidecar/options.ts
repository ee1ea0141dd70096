/**
 * @module Sidecar configuration: one schema for the file, env and flags; defaults with units;
 * precedence defaults < file < env < flags (as the gateway's); validated once, then frozen, with
 * every problem listed in one error before any port opens.
 */
import { DEFAULT_EDGE_REPORT_INTERVAL_MS } from '../proxy/edge-reporter.js';
import { z } from 'zod';
import {
  readOptionSources,
  mergeSections,
  type EnvKey,
  type OptionSources,
} from '../config/config-sources.js';
import { validateOptions } from '../config/validate-options.js';
import {
  DEFAULT_TRACING_SAMPLE_RATIO,
  tracingEndpointSchema,
  tracingSampleRatioSchema,
} from '../config/tracing-options.js';
import { registryTlsFileProblems } from '../client/tls-files.js';
import { hostPortSchema } from '../protocol/host-port.js';
import { printable, serviceNameSchema } from '../protocol/registration.js';
import { LIMITS } from '../protocol/limits.js';
import { accessLogSampleSchema, accessLogSchema } from '../telemetry/access-log-options.js';
import { istioMetricsSchema } from '../telemetry/istio-metrics-options.js';

const hostPort = hostPortSchema('127.0.0.1:15001');
const META_KEY = /^[A-Za-z0-9_-]+$/;

/**
 * A value written as a string in flags and env (`parse` reads it, adding issues) or as `object`
 * in a config file; one schema, so a bad entry gets its own reason instead of a union's
 * "Invalid input".
 */
function stringOr<T extends z.ZodType, R>(
  object: T,
  parse: (raw: string, issue: (message: string, path?: (string | number)[]) => void) => R,
) {
  return z.unknown().transform((value, ctx): z.output<T> | R => {
    const issue = (message: string, path: (string | number)[] = []): void =>
      ctx.addIssue({ code: 'custom', message, path });
    if (typeof value === 'string' || Array.isArray(value)) {
      const out = parse(value as string, issue);
      return out;
    }
    const r = object.safeParse(value);
    if (!r.success) {
      for (const i of r.error.issues) issue(i.message, i.path as (string | number)[]);
      return z.NEVER;
    }
    return r.data;
  });
}

/** `SERVICE=HOST:PORT` (a flag or env entry) or `{ service, listen }` (a config file). */
const upstreamSchema = stringOr(
  z.object({ service: serviceNameSchema, listen: hostPort }).strict(),
  (raw, issue) => {
    if (typeof raw !== 'string') {
      issue('must be SERVICE=HOST:PORT or { service, listen }');
      return z.NEVER;
    }
    const eq = raw.indexOf('=');
    const service = raw.slice(0, eq);
    const listen = raw.slice(eq + 1);
    if (eq <= 0 || !serviceNameSchema.safeParse(service).success) {
      issue(`"${raw}": must be SERVICE=HOST:PORT with a service name before "="`);
      return z.NEVER;
    }
    const l = hostPort.safeParse(listen);
    if (!l.success) {
      issue(`"${raw}": ${l.error.issues.map((i) => i.message).join('; ')}`);
      return z.NEVER;
    }
    return { service, listen };
  },
);

const metaValue = z
  .string()
  .max(
    LIMITS.maxMetaValueLength,
    `meta values are at most ${LIMITS.maxMetaValueLength} characters`,
  );
const metaKey = z
  .string()
  .max(LIMITS.maxMetaKeyLength)
  .regex(META_KEY, 'meta keys use letters, digits, _ and -');

/** `{ key: value }` (a config file) or `["KEY=VALUE", ...]` (flags and env). */
const metaSchema = stringOr(z.record(metaKey, metaValue), (pairs, issue) => {
  const out: Record<string, string> = {};
  const list = pairs as unknown as unknown[];
  if (!Array.isArray(list)) {
    issue('must be a mapping or a list of KEY=VALUE');
    return out;
  }
  list.forEach((raw, i) => {
    const text = String(raw);
    const eq = text.indexOf('=');
    const key = text.slice(0, eq);
    if (typeof raw !== 'string' || eq <= 0 || !metaKey.safeParse(key).success) {
      issue(`"${text}": must be KEY=VALUE, the key of letters, digits, _ and -`, [i]);
      return;
    }
    const v = metaValue.safeParse(text.slice(eq + 1));
    if (!v.success) issue(v.error.issues[0]?.message ?? 'bad value', [i]);
    else out[key] = v.data;
  });
  return out;
});

/** The app's health check, run by the sidecar with the thresholds of the registry's checks. */
export const sidecarHealthSchema = z
  .object({
    /** Between two probes. */
    intervalMs: z.number().int().min(100).max(3_600_000),
    /** A probe not answered in this long failed. */
    timeoutMs: z.number().int().min(10).max(600_000),
    /** Consecutive successes before the app is passing. */
    successesBeforePassing: z.number().int().min(1).max(100),
    /** Consecutive counted failures before the app is critical. */
    failuresBeforeCritical: z.number().int().min(1).max(100),
    /** Failures in this long after the sidecar starts the check are not counted. */
    startPeriodMs: z.number().int().min(0).max(86_400_000),
    /** The TTL of the registry's check the sidecar heartbeats (every third of it). */
    ttlMs: z.number().int().min(1_000).max(86_400_000),
  })
  .strict();

export type SidecarHealthOptions = z.output<typeof sidecarHealthSchema>;

export const sidecarOptionsSchema = z
  .object({
    /** The service the app is an instance of. */
    service: serviceNameSchema,
    /** The service's namespace in the mesh. */
    namespace: z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'must be a DNS label'),
    /** The app's port (on appHost; the inbound listener forwards to it). */
    appPort: z
      .number({
        error: (issue) =>
          issue.input === undefined
            ? 'required: the port the app listens on (--app-port)'
            : 'must be a port number 1-65535',
      })
      .int('must be a port number 1-65535')
      .min(1, 'must be a port number 1-65535')
      .max(65535, 'must be a port number 1-65535'),
    /** Where the app listens: loopback. */
    appHost: z.string().min(1),
    /** HTTP GET path of the app's health check; absent: a TCP connect to appPort. */
    appHealth: z
      .string()
      .regex(/^\/[^\s]*$/, 'must be a path starting with "/"')
      .optional(),
    /** Listener other sidecars reach (registered as the instance's port). */
    inbound: hostPort,
    /** Listener the app calls other services through. */
    outbound: hostPort,
    /** Fixed local ports per upstream service. */
    upstreams: z.array(upstreamSchema).max(1_000),
    /** Admin listener: /ready, /live, /metrics, /config_dump, POST /quitquitquit. */
    admin: hostPort,
    /**
     * The address registered for the instance: the inbound host, or 127.0.0.1 when inbound binds
     * every interface (0.0.0.0, ::). Set it to the host's reachable address in a real network.
     */
    address: z.string().min(1).max(LIMITS.maxAddressLength).optional(),
    /** Registry agent URLs (any of them answers). */
    registry: z.array(z.string().url('must be a URL like http://127.0.0.1:8500')).min(1),
    /** PEM CA an `https://` registry's certificate is checked against (docs/security.md). */
    registryCaFile: z.string().min(1).optional(),
    /** PEM client certificate for an agent that requires one, with `registryKeyFile`. */
    registryCertFile: z.string().min(1).optional(),
    registryKeyFile: z.string().min(1).optional(),
    /** Where the last good snapshot is kept (started from when no agent answers). */
    dataDir: z.string().min(1),
    meta: metaSchema,
    tags: z.array(printable(LIMITS.maxTagLength, 1)).max(LIMITS.maxTags),
    health: sidecarHealthSchema,
    /** Connect timeout to an upstream instance (and to the app). */
    connectTimeoutMs: z.number().int().min(1).max(60_000),
    /** Deadline of a request, retries included, unless its route sets one. */
    requestTimeoutMs: z.number().int().min(1).max(3_600_000),
    /** SIGTERM: in-flight inbound requests may take this long to finish. */
    drainTimeoutMs: z.number().int().min(0).max(600_000),
    /** SIGTERM: the app may take this long to exit before it gets SIGKILL. */
    appStopTimeoutMs: z.number().int().min(0).max(600_000),
    logLevel: z.enum(['error', 'warn', 'info', 'debug', 'silent']),
    /**
     * Mesh mTLS (issue 20): `auto` gets a certificate for the service from the agent's CA when
     * the agent has one, before the listeners take traffic; `off` never asks.
     */
    mtls: z.enum(['auto', 'off'], { error: 'must be auto or off' }),
    /**
     * `auto`: how long the start waits for the agent's CA (roots, then the first leaf). No agent
     * in that time: the sidecar runs without mTLS and says so; a CA that answered but signed
     * nothing in that time: the start fails.
     */
    mtlsStartTimeoutMs: z.number().int().min(0).max(600_000),
    /**
     * An ACL token sent to the agent as `X-Consul-Token` (registration, certificate signing).
     * With ACLs on, it must allow writing the service (docs/security.md). Never logged.
     */
    token: z
      .string()
      .min(1, 'must not be empty')
      .max(256, 'must be at most 256 characters')
      .optional(),
    /**
     * How often the sidecar reports its calls per edge to the agent for the call graph
     * (docs/observability.md, "Call graph"); 0 turns counting and reporting off.
     */
    edgeReportIntervalMs: z.number().int().min(0).max(3_600_000),
    /**
     * Tracing (docs/observability.md): the OTLP/HTTP traces URL spans are exported to; absent:
     * no spans (trace headers pass untouched).
     */
    tracingEndpoint: tracingEndpointSchema.optional(),
    /** Requests that come with no sampling decision are sampled at this ratio, 0..1. */
    tracingSampleRatio: tracingSampleRatioSchema,
    /** The app to run (`-- CMD ARGS...`): started once the sidecar is ready. */
    command: z.array(z.string()).max(1_000),
    /**
     * Access logs (docs/observability.md): `stdout`, `off`, or a file path (appended to), one
     * JSON line per logged request, both directions.
     */
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

export type SidecarOptions = z.output<typeof sidecarOptionsSchema>;

export const DEFAULT_SIDECAR_HEALTH_OPTIONS = Object.freeze({
  intervalMs: 5_000,
  timeoutMs: 2_000,
  successesBeforePassing: 1,
  failuresBeforeCritical: 3,
  startPeriodMs: 0,
  ttlMs: 15_000,
});

export const DEFAULT_SIDECAR_OPTIONS = Object.freeze({
  namespace: 'default',
  appHost: '127.0.0.1',
  inbound: '0.0.0.0:15006',
  outbound: '127.0.0.1:15001',
  upstreams: Object.freeze([]),
  admin: '127.0.0.1:15000',
  registry: Object.freeze(['http://127.0.0.1:8500']),
  meta: Object.freeze({}),
  tags: Object.freeze([]),
  health: DEFAULT_SIDECAR_HEALTH_OPTIONS,
  connectTimeoutMs: 1_000,
  requestTimeoutMs: 15_000,
  drainTimeoutMs: 10_000,
  appStopTimeoutMs: 10_000,
  logLevel: 'info',
  mtls: 'auto',
  mtlsStartTimeoutMs: 5_000,
  edgeReportIntervalMs: DEFAULT_EDGE_REPORT_INTERVAL_MS,
  tracingSampleRatio: DEFAULT_TRACING_SAMPLE_RATIO,
  command: Object.freeze([]),
  // On stdout (as Istio's proxies log): every failed request and one in ten of the others; a
  // line costs ~2-3 µs of CPU, ~10% of a request's (docs/benchmarks.md, "observers").
  accessLog: 'stdout',
  accessLogSample: 0.1,
  istioMetrics: 'on',
});

/** The data dir when none is given: one per service, so two sidecars on a host keep apart. */
export const defaultSidecarDataDir = (service: string): string => `./.meshwork/sidecar-${service}`;

const ENV_KEYS: Record<string, EnvKey> = {
  MESHWORK_SIDECAR__SERVICE: { key: 'service', type: 'string' },
  MESHWORK_SIDECAR__NAMESPACE: { key: 'namespace', type: 'string' },
  MESHWORK_SIDECAR__APP_PORT: { key: 'appPort', type: 'number' },
  MESHWORK_SIDECAR__APP_HOST: { key: 'appHost', type: 'string' },
  MESHWORK_SIDECAR__APP_HEALTH: { key: 'appHealth', type: 'string' },
  MESHWORK_SIDECAR__INBOUND: { key: 'inbound', type: 'string' },
  MESHWORK_SIDECAR__OUTBOUND: { key: 'outbound', type: 'string' },
  MESHWORK_SIDECAR__UPSTREAMS: { key: 'upstreams', type: 'list' },
  MESHWORK_SIDECAR__ADMIN: { key: 'admin', type: 'string' },
  MESHWORK_SIDECAR__ADDRESS: { key: 'address', type: 'string' },
  MESHWORK_SIDECAR__REGISTRY: { key: 'registry', type: 'list' },
  MESHWORK_SIDECAR__REGISTRY_CA_FILE: { key: 'registryCaFile', type: 'string' },
  MESHWORK_SIDECAR__REGISTRY_CERT_FILE: { key: 'registryCertFile', type: 'string' },
  MESHWORK_SIDECAR__REGISTRY_KEY_FILE: { key: 'registryKeyFile', type: 'string' },
  MESHWORK_SIDECAR__DATA_DIR: { key: 'dataDir', type: 'string' },
  MESHWORK_SIDECAR__META: { key: 'meta', type: 'list' },
  MESHWORK_SIDECAR__TAGS: { key: 'tags', type: 'list' },
  MESHWORK_SIDECAR__HEALTH_INTERVAL_MS: { key: 'health.intervalMs', type: 'number' },
  MESHWORK_SIDECAR__HEALTH_TIMEOUT_MS: { key: 'health.timeoutMs', type: 'number' },
  MESHWORK_SIDECAR__HEALTH_SUCCESSES_BEFORE_PASSING: {
    key: 'health.successesBeforePassing',
    type: 'number',
  },
  MESHWORK_SIDECAR__HEALTH_FAILURES_BEFORE_CRITICAL: {
    key: 'health.failuresBeforeCritical',
    type: 'number',
  },
  MESHWORK_SIDECAR__HEALTH_START_PERIOD_MS: { key: 'health.startPeriodMs', type: 'number' },
  MESHWORK_SIDECAR__HEALTH_TTL_MS: { key: 'health.ttlMs', type: 'number' },
  MESHWORK_SIDECAR__CONNECT_TIMEOUT_MS: { key: 'connectTimeoutMs', type: 'number' },
  MESHWORK_SIDECAR__REQUEST_TIMEOUT_MS: { key: 'requestTimeoutMs', type: 'number' },
  MESHWORK_SIDECAR__DRAIN_TIMEOUT_MS: { key: 'drainTimeoutMs', type: 'number' },
  MESHWORK_SIDECAR__APP_STOP_TIMEOUT_MS: { key: 'appStopTimeoutMs', type: 'number' },
  MESHWORK_SIDECAR__LOG_LEVEL: { key: 'logLevel', type: 'string' },
  MESHWORK_SIDECAR__MTLS: { key: 'mtls', type: 'string' },
  MESHWORK_SIDECAR__MTLS_START_TIMEOUT_MS: { key: 'mtlsStartTimeoutMs', type: 'number' },
  MESHWORK_SIDECAR__TOKEN: { key: 'token', type: 'string' },
  MESHWORK_SIDECAR__EDGE_REPORT_INTERVAL_MS: { key: 'edgeReportIntervalMs', type: 'number' },
  MESHWORK_SIDECAR__TRACING_ENDPOINT: { key: 'tracingEndpoint', type: 'string' },
  MESHWORK_SIDECAR__TRACING_SAMPLE_RATIO: { key: 'tracingSampleRatio', type: 'string' },
  MESHWORK_SIDECAR__ACCESS_LOG: { key: 'accessLog', type: 'string' },
  MESHWORK_SIDECAR__ACCESS_LOG_SAMPLE: { key: 'accessLogSample', type: 'decimal' },
  MESHWORK_SIDECAR__ISTIO_METRICS: { key: 'istioMetrics', type: 'string' },
};

const portOf = (hp: string): number => Number(hp.slice(hp.lastIndexOf(':') + 1));
const hostOf = (hp: string): string => hp.slice(0, hp.lastIndexOf(':')).replace(/^\[|\]$/g, '');

/** Problems a schema cannot see: two listeners on one port, an upstream named twice. */
function semanticProblems(o: SidecarOptions): string[] {
  const problems: string[] = [];
  const ports = new Map<number, string>();
  const claim = (hp: string, path: string): void => {
    const port = portOf(hp);
    if (port === 0) return;
    const holder = ports.get(port);
    if (holder !== undefined) problems.push(`${path}: port ${port} is taken by ${holder}`);
    else ports.set(port, path);
  };
  claim(o.inbound, 'inbound');
  claim(o.outbound, 'outbound');
  claim(o.admin, 'admin');
  const services = new Set<string>();
  o.upstreams.forEach((u, i) => {
    claim(u.listen, `upstreams[${i}].listen`);
    if (services.has(u.service))
      problems.push(`upstreams[${i}].service: "${u.service}" is listed twice`);
    services.add(u.service);
  });
  if (o.health.timeoutMs > o.health.intervalMs)
    problems.push('health.timeoutMs: must not exceed health.intervalMs');
  problems.push(...registryTlsFileProblems(o));
  return problems;
}

/**
 * Validates a merged document against the sidecar schema: answers the options or throws
 * CONFIG_INVALID listing every problem (`extraProblems` first).
 */
export function parseSidecarOptions(
  merged: unknown,
  extraProblems: readonly string[] = [],
): SidecarOptions {
  return validateOptions(sidecarOptionsSchema, merged, extraProblems, semanticProblems);
}

/**
 * Resolves the sidecar's options: defaults < config file < env < flags (the `health` section
 * key by key). Throws one CONFIG_INVALID error listing every problem, before anything starts.
 */
export function resolveSidecarOptions(input: OptionSources): SidecarOptions {
  const { file, env, flags } = readOptionSources(input, ENV_KEYS);
  const merged = mergeSections(
    { ...DEFAULT_SIDECAR_OPTIONS, health: { ...DEFAULT_SIDECAR_HEALTH_OPTIONS } },
    file,
    env.values,
    flags,
  );
  merged.dataDir ??= defaultSidecarDataDir(
    typeof merged.service === 'string' ? merged.service : 'unnamed',
  );
  return parseSidecarOptions(merged, env.problems);
}

/**
 * The address registered for the instance: `address`, else the inbound host, else (inbound on
 * every interface) 127.0.0.1, which an agent on the same host reaches.
 */
export function registeredAddress(o: SidecarOptions): string {
  if (o.address !== undefined) return o.address;
  const host = hostOf(o.inbound);
  return host === '0.0.0.0' || host === '::' || host === '' ? '127.0.0.1' : host;
}
