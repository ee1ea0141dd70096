/**
 * @module Agent options: the schema of the agent's file, env and flags (HTTP API, store, checks,
 * KV, the dns and consul sections), its frozen defaults with units, and resolveAgentOptions.
 */
import { hostname } from 'node:os';
import { z } from 'zod';
import {
  mergeSections,
  readOptionSources,
  type EnvKey,
  type OptionSources,
} from '../config/config-sources.js';
import { validateOptions } from '../config/validate-options.js';
import { readTlsFiles, type TlsFileNames } from '../client/tls-files.js';
import { DEFAULT_DNS_OPTIONS, dnsOptionsSchema } from '../dns/options.js';
import { hostPortSchema } from '../protocol/host-port.js';
import { DEFAULT_TRUST_DOMAIN } from '../protocol/mesh/ca.js';
import {
  DEFAULT_CHECK_FLOORS,
  DEFAULT_CHECK_UPDATE_INTERVAL_MS,
  DEFAULT_KV_QUOTA_BYTES,
  LIMITS,
  type CheckFloors,
} from '../protocol/limits.js';
import {
  CheckShapeError,
  normalizeChecks,
  registrationInputSchema,
  type ParsedRegistration,
} from '../protocol/registration.js';

/** A floor on a check duration: at least 1 ms (0 would let `interval: 0` through), at most a day. */
const floorMs = z.number().int().min(1, 'must be at least 1 ms').max(86_400_000, 'at most a day');

/** The KV store is held in memory by every agent: 16 GiB is past any sane quota. */
const MAX_KV_QUOTA_BYTES = 16 * 1024 ** 3;

/** The agent's whole configuration: what `meshwork agent` and `config validate` check. */
/** The `eureka` section's defaults (docs/eureka-compatibility.md). */
export const DEFAULT_EUREKA_OPTIONS = Object.freeze({
  enabled: true,
  selfPreservation: false,
  renewalPercentThreshold: 0.85,
  evictionIntervalMs: 60_000,
  deltaRetentionMs: 180_000,
});

export const agentOptionsSchema = z
  .object({
    /** HTTP API listen address, or `off` (then `https` must be on: the API is HTTPS only). */
    http: hostPortSchema('127.0.0.1:8500', { orOff: true }),
    /**
     * HTTPS API listen address (the same API as `http`, over TLS with `tls`'s certificate), beside
     * the plain one or alone with `http: off`; `off` (the default) serves no HTTPS.
     */
    https: hostPortSchema('127.0.0.1:8501', { orOff: true }),
    /** The HTTPS listener's certificate and client verification (docs/security.md). */
    tls: z
      .object({
        /** PEM certificate the HTTPS listener serves (leaf first, then its chain). */
        certFile: z.string().min(1).optional(),
        /** PEM private key of `certFile` (unencrypted). */
        keyFile: z.string().min(1).optional(),
        /** PEM CA bundle client certificates are verified against (`verifyIncoming`). */
        caFile: z.string().min(1).optional(),
        /** Require a client certificate signed by `caFile` on the HTTPS listener. */
        verifyIncoming: z.boolean(),
        /**
         * The HTTPS certificate from the mesh CA instead of files: the agent signs one for its
         * own key (SANs: its SPIFFE ID, the https host, localhost, the hostname) and renews it
         * before it expires and when the root rotates. Clients trust the CA's bundle.
         */
        auto: z.boolean().optional(),
      })
      .strict(),
    /**
     * Names besides IP addresses, localhost and the machine's hostname that the HTTP API answers
     * to as a Host (DNS rebinding protection): `name` or `*.domain`; `["*"]` turns the check off.
     */
    allowedHosts: z.array(
      z
        .string()
        .regex(
          /^(\*|(\*\.)?[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252}))$/,
          'must be a host name without port, "*.domain", or "*"',
        ),
    ),
    /**
     * Origins of web pages (besides the agent's own) that may call the HTTP API, answered with
     * CORS headers: `scheme://host[:port]`; `["*"]` allows any page.
     */
    allowedOrigins: z.array(
      z
        .string()
        .regex(
          /^(\*|https?:\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(:\d{1,5})?)$/,
          'must be an origin like https://ui.example.com:8443 (no path), or "*"',
        ),
    ),
    /** Folder of the embedded store. */
    dataDir: z.string().min(1),
    /** In-memory store: nothing survives a restart (same as store: memory). */
    dev: z.boolean(),
    /**
     * Start the sqlite store even when it is behind `catalog.index` (commits were lost) instead
     * of refusing with MESHWORK_ERR_STORE_CORRUPT (docs/operations.md). For one start.
     */
    acceptDataLoss: z.boolean(),
    /** Where the catalog lives: sqlite (embedded, default), memory, or etcd (cluster mode). */
    store: z.enum(['sqlite', 'memory', 'etcd']),
    /** etcd client URLs, for store: etcd. */
    etcdEndpoints: z
      .array(z.string().url('must be a URL like http://127.0.0.1:2379'))
      .min(1, 'give at least one etcd endpoint'),
    /** Key prefix in etcd, so several catalogs can share one etcd cluster. */
    etcdPrefix: z.string().regex(/^\/[\x21-\x7e]*\/$/, 'must start and end with "/"'),
    /** PEM file of the CA that signed etcd's certificate (TLS to etcd; `https://` endpoints). */
    etcdCa: z.string().min(1).optional(),
    /** PEM files of a client certificate and its key, for an etcd with `--client-cert-auth`. */
    etcdCert: z.string().min(1).optional(),
    etcdKey: z.string().min(1).optional(),
    /** etcd user and password (etcd's RBAC, `etcdctl auth enable`). */
    etcdUsername: z.string().min(1).optional(),
    etcdPassword: z.string().optional(),
    logLevel: z.enum(['error', 'warn', 'info', 'debug', 'silent']),
    /** This agent's node name (Consul node). */
    nodeName: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, 'letters, digits, _ . -, at most 128'),
    datacenter: z.string().regex(/^[a-z0-9-]{1,63}$/, 'lowercase letters, digits and hyphens'),
    /** How long SIGTERM may take to drain before the process exits anyway. */
    shutdownTimeoutMs: z.number().int().min(0).max(60_000),
    /** Services this agent registers (source config). */
    services: z.array(registrationInputSchema),
    /** The DNS interface (docs/dns.md); `dns: off` or `dns: <host:port>` in a file is the listen address. */
    dns: dnsOptionsSchema,
    /** The Consul-compatible API under /v1 (docs/consul-compatibility.md). */
    consul: z
      .object({
        /**
         * Accept GET on the write endpoints python-consul 0.7 calls with GET (deregister, check
         * pass/warn/fail), as Consul did before 1.0; browser requests are refused either way.
         */
        legacyVerbs: z.boolean().default(true),
      })
      .strict()
      .default({ legacyVerbs: true }),
    /** The Eureka-compatible API under /eureka/v2 and /eureka (docs/eureka-compatibility.md). */
    eureka: z
      .object({
        /** Serve the Eureka REST API. */
        enabled: z.boolean().default(true),
        /**
         * Eureka's self-preservation: while a service's renewals fall below the expected rate,
         * its expired leases are kept (marked DOWN) rather than evicted. Off by default (docs say why).
         */
        selfPreservation: z.boolean().default(false),
        /** The share of expected renewals below which self-preservation starts (Eureka's 0.85). */
        renewalPercentThreshold: z.number().gt(0).max(1).default(0.85),
        /** How often expired leases are evicted (Eureka's evictionIntervalTimerInMs, 60 s). */
        evictionIntervalMs: z.number().int().min(1_000).max(3_600_000).default(60_000),
        /** How long a change stays in /apps/delta (Eureka's retentionTimeInMSInDeltaQueue, 3 min). */
        deltaRetentionMs: z.number().int().min(1_000).max(3_600_000).default(180_000),
      })
      .strict()
      .default(DEFAULT_EUREKA_OPTIONS),
    /** Floors on check durations and the cap on checks per instance (docs/health.md, "Floors"). */
    checks: z
      .object({
        /** Shortest probe interval accepted; the agent never probes a check more often. */
        minIntervalMs: floorMs,
        /** Shortest probe timeout accepted. */
        minTimeoutMs: floorMs,
        /** Shortest TTL accepted. */
        minTtlMs: floorMs,
        /** Shortest deregister-after-critical accepted (0, never, is always accepted). */
        minDeregisterCriticalAfterMs: floorMs,
        /** Checks on one instance (or on the node). */
        maxPerInstance: z.number().int().min(1).max(LIMITS.maxChecks),
        /**
         * A check whose status holds writes a new output at most this often (Consul's
         * check_update_interval); 0: every new output is written.
         */
        updateIntervalMs: z.number().int().min(0).max(86_400_000, 'at most a day'),
      })
      .strict(),
    /** SPIFFE trust domain of the mesh CA's leaves (`spiffe://<trustDomain>/ns/<ns>/sa/<svc>`). */
    trustDomain: z
      .string()
      .regex(
        /^[a-z0-9._-]{1,255}$/,
        'lowercase letters, digits, dots, hyphens and underscores (a SPIFFE trust domain)',
      ),
    /** Lifetime of the leaf certificates the mesh CA signs. */
    caLeafTtlMs: z
      .number()
      .int()
      .min(60_000, 'must be at least 1 minute')
      .max(366 * 86_400_000, 'must be at most 366 days'),
    /**
     * Registry ACLs (docs/security.md, "Registry ACLs"), Consul's `acl` block: off unless
     * `enabled` (which `--acl-default-policy` sets).
     */
    acl: z
      .object({
        /** Enforce tokens on the HTTP API (and DNS with `dns`). */
        enabled: z.boolean(),
        /** What a token gets where no rule of its own matches (Consul's default: allow). */
        defaultPolicy: z.enum(['allow', 'deny']),
        /** DNS answers only the services the anonymous token may read. */
        dns: z.boolean(),
        /** How stale the token cache may get in cluster mode (other agents' ACL writes). */
        refreshMs: z.number().int().min(0).max(600_000),
      })
      .strict(),
    /** The audit log of writes: '' off, '-' the agent's log, else a file (appended). */
    auditLog: z.string(),
    /** Concurrent HTTP connections one client IP may hold; 0: no cap (Consul's default: 200). */
    httpMaxConnsPerClient: z.number().int().min(0).max(1_000_000),
    /** The KV store (docs/api.md, "KV limits"). */
    kv: z
      .object({
        /** Bytes of keys and values together; a put past it is refused (507). */
        quotaBytes: z.number().int().min(0).max(MAX_KV_QUOTA_BYTES),
      })
      .strict(),
  })
  .strict()
  .superRefine((o, ctx) => {
    if ((o.etcdCert === undefined) !== (o.etcdKey === undefined))
      ctx.addIssue({
        code: 'custom',
        path: [o.etcdCert === undefined ? 'etcdCert' : 'etcdKey'],
        message: 'give etcdCert and etcdKey together',
      });
    if (o.etcdCert !== undefined && o.etcdCa === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['etcdCa'],
        message: "give the CA of etcd's certificate with a client certificate",
      });
    if ((o.etcdUsername === undefined) !== (o.etcdPassword === undefined))
      ctx.addIssue({
        code: 'custom',
        path: [o.etcdUsername === undefined ? 'etcdUsername' : 'etcdPassword'],
        message: 'give etcdUsername and etcdPassword together',
      });
  });

/** The agent's validated, frozen options (services parsed as the native API parses them). */
export type AgentOptions = Readonly<z.output<typeof agentOptionsSchema>> & {
  readonly services: readonly ParsedRegistration[];
};

/** What every source leaves unset: the table in docs/configuration.md. */
export const DEFAULT_AGENT_OPTIONS = Object.freeze({
  http: '127.0.0.1:8500',
  https: 'off',
  tls: Object.freeze({ verifyIncoming: false }),
  allowedHosts: Object.freeze([]),
  allowedOrigins: Object.freeze([]),
  dataDir: './.meshwork/data',
  dev: false,
  acceptDataLoss: false,
  store: 'sqlite',
  etcdEndpoints: ['http://127.0.0.1:2379'],
  etcdPrefix: '/meshwork/',
  logLevel: 'info',
  nodeName: safeHostname(),
  datacenter: 'dc1',
  shutdownTimeoutMs: 4_000,
  services: [],
  dns: DEFAULT_DNS_OPTIONS,
  consul: Object.freeze({ legacyVerbs: true }),
  eureka: DEFAULT_EUREKA_OPTIONS,
  checks: Object.freeze({
    minIntervalMs: DEFAULT_CHECK_FLOORS.intervalMs,
    minTimeoutMs: DEFAULT_CHECK_FLOORS.timeoutMs,
    minTtlMs: DEFAULT_CHECK_FLOORS.ttlMs,
    minDeregisterCriticalAfterMs: DEFAULT_CHECK_FLOORS.deregisterCriticalAfterMs,
    maxPerInstance: LIMITS.maxChecks,
    updateIntervalMs: DEFAULT_CHECK_UPDATE_INTERVAL_MS,
  }),
  kv: Object.freeze({ quotaBytes: DEFAULT_KV_QUOTA_BYTES }),
  trustDomain: DEFAULT_TRUST_DOMAIN,
  caLeafTtlMs: 24 * 3_600_000,
  acl: Object.freeze({ enabled: false, defaultPolicy: 'allow', dns: false, refreshMs: 1_000 }),
  auditLog: '',
  httpMaxConnsPerClient: 200,
});

/** The check floors the options set. */
export function checkFloorsOf(options: Pick<AgentOptions, 'checks'>): CheckFloors {
  const c = options.checks;
  return {
    intervalMs: c.minIntervalMs,
    timeoutMs: c.minTimeoutMs,
    ttlMs: c.minTtlMs,
    deregisterCriticalAfterMs: c.minDeregisterCriticalAfterMs,
  };
}

function safeHostname(): string {
  const h = hostname()
    .replace(/[^A-Za-z0-9_.-]/g, '-')
    .slice(0, 128);
  return /^[A-Za-z0-9]/.test(h) ? h : `node-${h}`;
}

/** Env vars: MESHWORK_AGENT__<KEY> with the key in SCREAMING_SNAKE (MESHWORK_AGENT__DATA_DIR). */
const ENV_KEYS: Record<string, EnvKey> = {
  MESHWORK_AGENT__HTTP: { key: 'http', type: 'string' },
  MESHWORK_AGENT__HTTPS: { key: 'https', type: 'string' },
  MESHWORK_TLS__CERT_FILE: { key: 'tls.certFile', type: 'string' },
  MESHWORK_TLS__KEY_FILE: { key: 'tls.keyFile', type: 'string' },
  MESHWORK_TLS__CA_FILE: { key: 'tls.caFile', type: 'string' },
  MESHWORK_TLS__VERIFY_INCOMING: { key: 'tls.verifyIncoming', type: 'boolean' },
  MESHWORK_TLS__AUTO: { key: 'tls.auto', type: 'boolean' },
  MESHWORK_AGENT__ALLOWED_HOSTS: { key: 'allowedHosts', type: 'list' },
  MESHWORK_AGENT__ALLOWED_ORIGINS: { key: 'allowedOrigins', type: 'list' },
  MESHWORK_AGENT__DATA_DIR: { key: 'dataDir', type: 'string' },
  MESHWORK_AGENT__DEV: { key: 'dev', type: 'boolean' },
  MESHWORK_AGENT__ACCEPT_DATA_LOSS: { key: 'acceptDataLoss', type: 'boolean' },
  MESHWORK_AGENT__STORE: { key: 'store', type: 'string' },
  MESHWORK_AGENT__ETCD_ENDPOINTS: { key: 'etcdEndpoints', type: 'list' },
  MESHWORK_AGENT__ETCD_PREFIX: { key: 'etcdPrefix', type: 'string' },
  MESHWORK_AGENT__ETCD_CA: { key: 'etcdCa', type: 'string' },
  MESHWORK_AGENT__ETCD_CERT: { key: 'etcdCert', type: 'string' },
  MESHWORK_AGENT__ETCD_KEY: { key: 'etcdKey', type: 'string' },
  MESHWORK_AGENT__ETCD_USERNAME: { key: 'etcdUsername', type: 'string' },
  MESHWORK_AGENT__ETCD_PASSWORD: { key: 'etcdPassword', type: 'string' },
  MESHWORK_AGENT__LOG_LEVEL: { key: 'logLevel', type: 'string' },
  MESHWORK_AGENT__NODE_NAME: { key: 'nodeName', type: 'string' },
  MESHWORK_AGENT__DATACENTER: { key: 'datacenter', type: 'string' },
  MESHWORK_AGENT__SHUTDOWN_TIMEOUT_MS: { key: 'shutdownTimeoutMs', type: 'number' },
  MESHWORK_AGENT__TRUST_DOMAIN: { key: 'trustDomain', type: 'string' },
  MESHWORK_AGENT__CA_LEAF_TTL_MS: { key: 'caLeafTtlMs', type: 'number' },
  // Section dns: its keys land in the nested `dns` object.
  MESHWORK_DNS__LISTEN: { key: 'dns.listen', type: 'string' },
  MESHWORK_DNS__DOMAIN: { key: 'dns.domain', type: 'string' },
  MESHWORK_DNS__ALT_DOMAIN: { key: 'dns.altDomain', type: 'string' },
  MESHWORK_DNS__ONLY_PASSING: { key: 'dns.onlyPassing', type: 'boolean' },
  MESHWORK_DNS__ANSWER_LIMIT: { key: 'dns.answerLimit', type: 'number' },
  MESHWORK_DNS__DEFAULT_TTL_MS: { key: 'dns.defaultTtlMs', type: 'number' },
  MESHWORK_DNS__RECURSORS: { key: 'dns.recursors', type: 'list' },
  MESHWORK_CONSUL__LEGACY_VERBS: { key: 'consul.legacyVerbs', type: 'boolean' },
  MESHWORK_EUREKA__ENABLED: { key: 'eureka.enabled', type: 'boolean' },
  MESHWORK_EUREKA__SELF_PRESERVATION: { key: 'eureka.selfPreservation', type: 'boolean' },
  MESHWORK_EUREKA__RENEWAL_PERCENT_THRESHOLD: {
    key: 'eureka.renewalPercentThreshold',
    type: 'number',
  },
  MESHWORK_EUREKA__EVICTION_INTERVAL_MS: { key: 'eureka.evictionIntervalMs', type: 'number' },
  MESHWORK_EUREKA__DELTA_RETENTION_MS: { key: 'eureka.deltaRetentionMs', type: 'number' },
  MESHWORK_CHECKS__MIN_INTERVAL_MS: { key: 'checks.minIntervalMs', type: 'number' },
  MESHWORK_CHECKS__UPDATE_INTERVAL_MS: { key: 'checks.updateIntervalMs', type: 'number' },
  MESHWORK_CHECKS__MIN_TIMEOUT_MS: { key: 'checks.minTimeoutMs', type: 'number' },
  MESHWORK_CHECKS__MIN_TTL_MS: { key: 'checks.minTtlMs', type: 'number' },
  MESHWORK_CHECKS__MIN_DEREGISTER_CRITICAL_AFTER_MS: {
    key: 'checks.minDeregisterCriticalAfterMs',
    type: 'number',
  },
  MESHWORK_CHECKS__MAX_PER_INSTANCE: { key: 'checks.maxPerInstance', type: 'number' },
  MESHWORK_KV__QUOTA_BYTES: { key: 'kv.quotaBytes', type: 'number' },
  MESHWORK_ACL__ENABLED: { key: 'acl.enabled', type: 'boolean' },
  MESHWORK_ACL__DEFAULT_POLICY: { key: 'acl.defaultPolicy', type: 'string' },
  MESHWORK_ACL__DNS: { key: 'acl.dns', type: 'boolean' },
  MESHWORK_ACL__REFRESH_MS: { key: 'acl.refreshMs', type: 'number' },
  MESHWORK_AGENT__AUDIT_LOG: { key: 'auditLog', type: 'string' },
  MESHWORK_AGENT__HTTP_MAX_CONNS_PER_CLIENT: { key: 'httpMaxConnsPerClient', type: 'number' },
};

/**
 * Resolves the agent's options: defaults < config file < env < flags. Throws one
 * CONFIG_INVALID error listing every problem, before anything starts.
 */
export function resolveAgentOptions(input: OptionSources): AgentOptions {
  const { file: fileValues, env, flags } = readOptionSources(input, ENV_KEYS);
  // `dns: <host:port>` (or `off`) in any source stands for its listen address; then every
  // section (dns, consul) merges key by key, so `--dns off` keeps the file's domain.
  const normalized = (src: Record<string, unknown>): Record<string, unknown> =>
    src.dns === undefined || (typeof src.dns === 'object' && src.dns !== null)
      ? src
      : { ...src, dns: section(src.dns) };
  const merged = mergeSections(
    DEFAULT_AGENT_OPTIONS,
    normalized(fileValues),
    normalized(env.values),
    normalized(flags),
  );
  const problems = [...env.problems];
  const dnsInFile = fileValues.dns;
  if (dnsInFile !== undefined && typeof dnsInFile !== 'string' && typeof dnsInFile !== 'object') {
    problems.push('dns: must be a mapping of DNS options, a host:port, or "off"');
  }
  return validateOptions(agentOptionsSchema, merged, problems, (o) => [
    ...listenerProblems(o),
    ...serviceProblems(o.services, checkFloorsOf(o), o.checks),
  ]);
}

/** How the TLS files are named in a problem: the config key and the flag. */
export const AGENT_TLS_FILE_NAMES: TlsFileNames = Object.freeze({
  caFile: 'tls.caFile (--tls-ca-file)',
  certFile: 'tls.certFile (--tls-cert-file)',
  keyFile: 'tls.keyFile (--tls-key-file)',
});

/**
 * The listeners' problems a schema cannot see: no API at all, HTTPS without a certificate, TLS
 * settings nothing uses, and the TLS files themselves (read and checked here, so `config
 * validate`, the start and SIGHUP all refuse a missing file, a file that is not PEM, or a key
 * that is not the certificate's).
 */
function listenerProblems(o: z.output<typeof agentOptionsSchema>): string[] {
  const problems: string[] = [];
  const { tls } = o;
  if (o.http === 'off' && o.https === 'off')
    problems.push('http: off, and https is off too: the agent would serve no API');
  if (o.https === 'off') {
    for (const [k, v] of Object.entries(tls))
      if (v !== undefined && v !== false)
        problems.push(`tls.${k}: set, but https is off (give https <host:port>)`);
    return problems;
  }
  const names = AGENT_TLS_FILE_NAMES;
  const files = tls.certFile !== undefined || tls.keyFile !== undefined;
  if (tls.auto === true && files)
    problems.push(
      `tls.auto (--tls-auto): a certificate from the mesh CA, or ${names.certFile} and ${names.keyFile}, not both`,
    );
  if (tls.auto !== true && !files)
    problems.push(
      `${names.certFile}: required with https, with ${names.keyFile} (or tls.auto: a certificate from the mesh CA)`,
    );
  if (tls.verifyIncoming && tls.caFile === undefined)
    problems.push(
      `${names.caFile}: required with tls.verifyIncoming (--tls-verify-incoming): the CA client certificates are checked against`,
    );
  problems.push(...readTlsFiles(tls, AGENT_TLS_FILE_NAMES).problems);
  return problems;
}

/**
 * The config file's services checked as the registry will check them at startup (floors, checks
 * per instance), so a bad one fails `config validate` and the start, before any port opens.
 */
function serviceProblems(
  services: readonly ParsedRegistration[],
  floors: CheckFloors,
  { maxPerInstance }: { maxPerInstance: number },
): string[] {
  const problems: string[] = [];
  services.forEach((service, i) => {
    const checks = service.checks ?? [];
    if (checks.length > maxPerInstance)
      problems.push(`services[${i}].checks: at most ${maxPerInstance} checks per instance`);
    try {
      normalizeChecks(checks, floors);
    } catch (err) {
      if (!(err instanceof CheckShapeError)) throw err;
      problems.push(`services[${i}].${err.field}: ${err.reason}`);
    }
  });
  return problems;
}

/** A section as written: an object, or (for dns) a string standing for its listen address. */
function section(value: unknown): Record<string, unknown> {
  if (typeof value === 'string') return { listen: value };
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
}
