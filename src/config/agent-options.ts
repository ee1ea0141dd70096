/**
 * @module Agent configuration: one schema for the file, env and flags; defaults with units;
 * precedence defaults < file < env < flags; validated once, then frozen.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { errors } from '../core/errors.js';
import { DEFAULT_DNS_OPTIONS, dnsOptionsSchema } from '../dns/options.js';
import { registrationInputSchema, type ParsedRegistration } from '../protocol/registration.js';
import { deepFreeze, issueLines, readEnv, type EnvKey } from './config-sources.js';

const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'must be host:port (e.g. 127.0.0.1:8500)')
  .refine((s) => Number(s.slice(s.lastIndexOf(':') + 1)) <= 65535, 'port must be 0-65535');

export const agentOptionsSchema = z
  .object({
    /** HTTP API listen address. */
    http: hostPort,
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
    /** Where the catalog lives: sqlite (embedded, default), memory, or etcd (cluster mode). */
    store: z.enum(['sqlite', 'memory', 'etcd']),
    /** etcd client URLs, for store: etcd. */
    etcdEndpoints: z
      .array(z.string().url('must be a URL like http://127.0.0.1:2379'))
      .min(1, 'give at least one etcd endpoint'),
    /** Key prefix in etcd, so several catalogs can share one etcd cluster. */
    etcdPrefix: z.string().regex(/^\/[\x21-\x7e]*\/$/, 'must start and end with "/"'),
    logLevel: z.enum(['error', 'warn', 'info', 'debug', 'silent']),
    /** This agent's node name (Consul node). */
    nodeName: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, 'letters, digits, _ . -, at most 128'),
    datacenter: z.string().regex(/^[a-z0-9-]{1,63}$/, 'lowercase letters, digits and hyphens'),
    /** Seconds SIGTERM may take to drain before the process exits anyway. */
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
  })
  .strict();

export type AgentOptions = Readonly<z.output<typeof agentOptionsSchema>> & {
  readonly services: readonly ParsedRegistration[];
};

export const DEFAULT_AGENT_OPTIONS = Object.freeze({
  http: '127.0.0.1:8500',
  allowedHosts: Object.freeze([]),
  allowedOrigins: Object.freeze([]),
  dataDir: './.meshwork/data',
  dev: false,
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
});

function safeHostname(): string {
  const h = hostname()
    .replace(/[^A-Za-z0-9_.-]/g, '-')
    .slice(0, 128);
  return /^[A-Za-z0-9]/.test(h) ? h : `node-${h}`;
}

/** Env vars: MESHWORK_AGENT__<KEY> with the key in SCREAMING_SNAKE (MESHWORK_AGENT__DATA_DIR). */
const ENV_KEYS: Record<string, EnvKey> = {
  MESHWORK_AGENT__HTTP: { key: 'http', type: 'string' },
  MESHWORK_AGENT__ALLOWED_HOSTS: { key: 'allowedHosts', type: 'list' },
  MESHWORK_AGENT__ALLOWED_ORIGINS: { key: 'allowedOrigins', type: 'list' },
  MESHWORK_AGENT__DATA_DIR: { key: 'dataDir', type: 'string' },
  MESHWORK_AGENT__DEV: { key: 'dev', type: 'boolean' },
  MESHWORK_AGENT__STORE: { key: 'store', type: 'string' },
  MESHWORK_AGENT__ETCD_ENDPOINTS: { key: 'etcdEndpoints', type: 'list' },
  MESHWORK_AGENT__ETCD_PREFIX: { key: 'etcdPrefix', type: 'string' },
  MESHWORK_AGENT__LOG_LEVEL: { key: 'logLevel', type: 'string' },
  MESHWORK_AGENT__NODE_NAME: { key: 'nodeName', type: 'string' },
  MESHWORK_AGENT__DATACENTER: { key: 'datacenter', type: 'string' },
  MESHWORK_AGENT__SHUTDOWN_TIMEOUT_MS: { key: 'shutdownTimeoutMs', type: 'number' },
  // Section dns: its keys land in the nested `dns` object.
  MESHWORK_DNS__LISTEN: { key: 'dns.listen', type: 'string' },
  MESHWORK_DNS__DOMAIN: { key: 'dns.domain', type: 'string' },
  MESHWORK_DNS__ALT_DOMAIN: { key: 'dns.altDomain', type: 'string' },
  MESHWORK_DNS__ONLY_PASSING: { key: 'dns.onlyPassing', type: 'boolean' },
  MESHWORK_DNS__ANSWER_LIMIT: { key: 'dns.answerLimit', type: 'number' },
  MESHWORK_DNS__DEFAULT_TTL_MS: { key: 'dns.defaultTtlMs', type: 'number' },
  MESHWORK_DNS__RECURSORS: { key: 'dns.recursors', type: 'list' },
  MESHWORK_CONSUL__LEGACY_VERBS: { key: 'consul.legacyVerbs', type: 'boolean' },
};

/** Reads a YAML or JSON file into a plain object; throws CONFIG_UNREADABLE with the reason. */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw errors.configUnreadable(
      path,
      (err as NodeJS.ErrnoException).code ?? (err as Error).message,
      err,
    );
  }
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: true, maxAliasCount: 100 });
  } catch (err) {
    throw errors.configUnreadable(
      path,
      (err as Error).message.split('\n')[0] ?? 'invalid YAML',
      err,
    );
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw errors.configUnreadable(path, 'the top level must be a mapping of keys to values');
  }
  return doc as Record<string, unknown>;
}

/** Merges config sources; sections (objects such as `consul`) merge key by key. */
function mergeSources(...sources: Record<string, unknown>[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const src of sources) {
    for (const [k, v] of Object.entries(src)) {
      const prev = out[k];
      const isSection = (x: unknown): x is Record<string, unknown> =>
        typeof x === 'object' && x !== null && !Array.isArray(x);
      out[k] = isSection(prev) && isSection(v) ? { ...prev, ...v } : v;
    }
  }
  return out;
}

/**
 * Resolves the agent's options: defaults < config file < env < flags. Throws one
 * CONFIG_INVALID error listing every problem, before anything starts.
 */
export function resolveAgentOptions(input: {
  file?: string;
  env?: NodeJS.ProcessEnv;
  flags?: Record<string, unknown>;
}): AgentOptions {
  const fileValues = input.file === undefined ? {} : readConfigFile(input.file);
  const env = readEnv(input.env ?? {}, ENV_KEYS);
  const flags = input.flags ?? {};
  // `dns: <host:port>` (or `off`) in any source stands for its listen address; then every
  // section (dns, consul) merges key by key, so `--dns off` keeps the file's domain.
  const normalized = (src: Record<string, unknown>): Record<string, unknown> =>
    src.dns === undefined || (typeof src.dns === 'object' && src.dns !== null)
      ? src
      : { ...src, dns: section(src.dns) };
  const merged = mergeSources(
    DEFAULT_AGENT_OPTIONS,
    normalized(fileValues),
    normalized(env.values),
    normalized(flags),
  );
  const r = agentOptionsSchema.safeParse(merged);
  const problems = [...env.problems];
  const dnsInFile = fileValues.dns;
  if (dnsInFile !== undefined && typeof dnsInFile !== 'string' && typeof dnsInFile !== 'object') {
    problems.push('dns: must be a mapping of DNS options, a host:port, or "off"');
  }
  if (!r.success) problems.push(...issueLines(r.error.issues));
  if (problems.length > 0 || !r.success) throw errors.configInvalid(problems);
  return deepFreeze(r.data);
}

/** A section as written: an object, or (for dns) a string standing for its listen address. */
function section(value: unknown): Record<string, unknown> {
  if (typeof value === 'string') return { listen: value };
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
}
