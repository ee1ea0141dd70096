/**
 * @module A container's labels and ports -> the instance it becomes (`meshwork.service`,
 * Registrator's `SERVICE_NAME` ...), or the list of problems that keeps it out, naming each label.
 */
import { parseDurationMs } from '../core/duration.js';
import { formatPath } from '../protocol/validation.js';
import {
  registrationInputSchema,
  type CheckInput,
  type RegistrationInput,
} from '../protocol/registration.js';

/** What the labels are read against: the container as the runtime lists it. */
export interface ContainerFacts {
  readonly id: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Runs in the host's network namespace (`--network host`). */
  readonly hostNetwork: boolean;
  /** Its ports; `publicPort` when published on the host (`-p`). */
  readonly ports: readonly { privatePort: number; publicPort?: number; ip?: string }[];
  /** Its address on its own network (bridge, overlay), when it has one. */
  readonly ipAddress?: string | undefined;
}

/** How labels are read: the prefix (`meshwork.`), the host's address, the sync's node. */
export interface LabelOptions {
  readonly labelPrefix: string;
  /** The address registered for host-network containers and ports published on every interface. */
  readonly hostAddress: string;
  readonly nodeName: string;
}

/** The outcome for one container: not ours, an instance, or the problems keeping it out. */
export type LabelResult =
  | { readonly kind: 'unlabelled' }
  | { readonly kind: 'ok'; readonly registration: RegistrationInput }
  | { readonly kind: 'invalid'; readonly problems: readonly string[] };

/** The keys after the prefix that are understood (`meta.<key>` and `check.<field>` aside). */
const KEYS = new Set(['service', 'id', 'port', 'address', 'tags', 'weight', 'protocol']);
const WEIGHT_KEYS = new Set(['weights.passing', 'weights.warning']);
const CHECK_KINDS = new Set(['http', 'tcp', 'ttl']);
type CheckTiming = 'intervalMs' | 'timeoutMs' | 'startPeriodMs' | 'deregisterCriticalAfterMs';
const CHECK_FIELDS: Readonly<Record<string, CheckTiming>> = {
  interval: 'intervalMs',
  timeout: 'timeoutMs',
  'start-period': 'startPeriodMs',
  'deregister-after': 'deregisterCriticalAfterMs',
};

/**
 * Reads a container's labels. Never throws: every label it cannot use becomes a problem line
 * naming the label, and a container with any problem is not registered.
 * @example
 * registrationFromLabels(facts, { labelPrefix: 'meshwork.', hostAddress: '10.0.0.5', nodeName: 'h1' })
 */
export function registrationFromLabels(c: ContainerFacts, o: LabelOptions): LabelResult {
  const p = o.labelPrefix;
  const label = (key: string): string | undefined => c.labels[p + key];
  const service = label('service') ?? c.labels.SERVICE_NAME;
  if (service === undefined) return { kind: 'unlabelled' };
  const serviceLabel = label('service') === undefined ? 'SERVICE_NAME' : `${p}service`;
  const problems: string[] = [];
  const meta: Record<string, string> = {};
  const checks: CheckInput[] = [];
  const checkOptions: Partial<Record<CheckTiming, number>> = {};
  let weights: { passing: number; warning: number } | undefined;

  const wholeNumber = (key: string, raw: string, max: number): number | undefined => {
    if (/^\d+$/.test(raw.trim()) && Number(raw) <= max) return Number(raw);
    problems.push(`${p}${key}: "${raw}" is not a whole number from 0 to ${max}`);
    return undefined;
  };

  for (const [name, raw] of Object.entries(c.labels)) {
    if (!name.startsWith(p)) continue;
    const key = name.slice(p.length);
    if (key.startsWith('meta.')) meta[key.slice('meta.'.length)] = raw;
    else if (key.startsWith('check.')) {
      const field = key.slice('check.'.length);
      const optionKey = CHECK_FIELDS[field];
      if (optionKey !== undefined) {
        const ms = parseDurationMs(raw);
        if (ms === undefined)
          problems.push(`${name}: "${raw}" is not a duration like 500ms or 10s`);
        else checkOptions[optionKey] = ms;
      } else if (!CHECK_KINDS.has(field)) {
        problems.push(
          `${name}: unknown check kind or field "${field}" (kinds: http, tcp, ttl; fields: ${Object.keys(CHECK_FIELDS).join(', ')})`,
        );
      }
    } else if (WEIGHT_KEYS.has(key)) {
      const n = wholeNumber(key, raw, 65535);
      if (n !== undefined) {
        weights ??= { passing: 1, warning: 1 };
        weights[key === 'weights.passing' ? 'passing' : 'warning'] = n;
      }
    } else if (!KEYS.has(key)) problems.push(`${name}: unknown label`);
  }

  const portLabel = label('port');
  const chosenPort = portLabel === undefined ? undefined : wholeNumber('port', portLabel, 65535);
  const where = endpoint(c, o, chosenPort, portLabel !== undefined);
  if (typeof where === 'string') {
    if (portLabel === undefined || chosenPort !== undefined) problems.push(where);
  }
  const weight = label('weight');
  if (weight !== undefined) {
    const n = wholeNumber('weight', weight, 65535);
    if (n !== undefined) weights = { passing: n, warning: weights?.warning ?? 1 };
  }

  const address = label('address') ?? (typeof where === 'string' ? '' : where.address);
  const port = typeof where === 'string' ? 0 : where.port;
  const http = label('check.http');
  if (http !== undefined) {
    const path = http.trim() === '' ? '/' : http.trim();
    const url = /^https?:\/\//.test(path)
      ? path
      : `http://${hostForUrl(address)}:${port}${path.startsWith('/') ? '' : '/'}${path}`;
    checks.push({ kind: 'http', http: url, ...checkOptions });
  }
  const tcp = label('check.tcp');
  if (tcp !== undefined) {
    const target =
      tcp.trim() === '' || tcp.trim() === 'true' ? `${hostForUrl(address)}:${port}` : tcp;
    checks.push({ kind: 'tcp', tcp: target, ...checkOptions });
  }
  const ttl = label('check.ttl');
  if (ttl !== undefined) {
    const ttlMs = parseDurationMs(ttl);
    if (ttlMs === undefined) problems.push(`${p}check.ttl: "${ttl}" is not a duration like 30s`);
    else {
      const { intervalMs: _interval, timeoutMs: _timeout, ...rest } = checkOptions;
      checks.push({ kind: 'ttl', ttlMs, ...rest });
    }
  }

  const tags = label('tags') ?? c.labels.SERVICE_TAGS;
  const protocol = label('protocol');
  const registration: RegistrationInput = {
    service,
    id: label('id') ?? c.id.slice(0, 12),
    address,
    port,
    source: 'orchestrator',
    ...(tags === undefined ? {} : { tags: splitTags(tags) }),
    meta: { ...meta, container: c.name, node: o.nodeName },
    ...(weights === undefined ? {} : { weights }),
    ...(protocol === undefined ? {} : { protocols: [protocol] }),
    ...(checks.length === 0 ? {} : { checks }),
  };
  if (problems.length === 0) {
    const r = registrationInputSchema.safeParse(registration);
    if (!r.success) {
      for (const issue of r.error.issues) {
        problems.push(`${labelOf(issue.path, p, serviceLabel)}: ${issue.message}`);
      }
    }
  }
  return problems.length > 0 ? { kind: 'invalid', problems } : { kind: 'ok', registration };
}

/**
 * Where the instance is reached: on the host network, the host's address and `meshwork.port`;
 * else the port published for `meshwork.port` (or the only one published), on the host; else
 * the container's own address. A string is the problem when none fits.
 */
function endpoint(
  c: ContainerFacts,
  o: LabelOptions,
  port: number | undefined,
  portLabelled: boolean,
): { address: string; port: number } | string {
  const p = o.labelPrefix;
  if (c.hostNetwork) {
    return port === undefined
      ? `${p}port: a container on the host network needs ${p}port (the port it listens on)`
      : { address: o.hostAddress, port };
  }
  const published = c.ports.filter(
    (x) => x.publicPort !== undefined && (port === undefined || x.privatePort === port),
  );
  const first = published[0];
  const distinct = new Set(published.map((x) => x.privatePort));
  if (first?.publicPort !== undefined && distinct.size === 1) {
    const ip = first.ip;
    const address =
      ip === undefined || ip === '' || ip === '0.0.0.0' || ip === '::' ? o.hostAddress : ip;
    return { address, port: first.publicPort };
  }
  if (distinct.size > 1)
    return `${p}port: several ports are published (${[...distinct].join(', ')}); say which one`;
  if (port !== undefined && c.ipAddress !== undefined && c.ipAddress !== '')
    return { address: c.ipAddress, port };
  return portLabelled
    ? `${p}port: port ${port} is not published and the container has no address of its own`
    : `${p}port: no port is published; give ${p}port`;
}

/** A registration field's label, for a schema issue (`meta.x` -> `meshwork.meta.x`). */
function labelOf(path: readonly PropertyKey[], prefix: string, serviceLabel: string): string {
  const [head, second] = path;
  if (head === 'service') return serviceLabel;
  if (head === 'meta' && typeof second === 'string') return `${prefix}meta.${second}`;
  if (head === 'checks')
    return `${prefix}check.${formatPath(path.slice(2) as (string | number)[])}`;
  if (head === 'protocols') return `${prefix}protocol`;
  return `${prefix}${formatPath(path.slice(0, 1) as (string | number)[])}`;
}

function splitTags(raw: string): string[] {
  return raw
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
}

/** An IPv6 address in a URL goes in brackets. */
const hostForUrl = (address: string): string => (address.includes(':') ? `[${address}]` : address);
