/**
 * @module Consul service and check definitions (normalised bodies) as Meshwork registrations and
 * check inputs, refused with Consul's messages, with check durations raised to the agent's floors.
 */
import { formatDurationMs } from '../../core/duration.js';
import type { CheckDefinition, CheckStatus } from '../../core/types.js';
import { DEFAULT_CHECK_FLOORS, LIMITS, type CheckFloors } from '../../protocol/limits.js';
import {
  CheckShapeError,
  checkInputSchema,
  normalizeChecks,
  registrationInputSchema,
  SERVICE_NAME,
  type ParsedCheck,
  type ParsedRegistration,
} from '../../protocol/registration.js';
import { hasControlChars, NO_CONTROL_CHARS } from '../../protocol/validation.js';
import type { NormalisedBody } from './consul-body.js';
import { CONSUL_META_PREFIX, META_REGISTERED, META_TAG_OVERRIDE } from './consul-markers.js';
import { refuse } from './consul-refuse.js';
import type { ConsulNodeInfo } from './consul-shapes.js';

const CHECK_STATUSES: readonly string[] = ['passing', 'warning', 'critical'];

const shape = registrationInputSchema.shape;

/** Checks a value against one field of the native schema; refuses with `label: reason`. */
function check<T>(
  schema: {
    safeParse(v: unknown): { success: boolean; error?: { issues: { message: string }[] } };
  },
  v: T,
  label: string,
): T {
  const r = schema.safeParse(v);
  if (!r.success) throw refuse(`${label}: ${r.error?.issues[0]?.message ?? 'invalid'}`);
  return v;
}

/** What the agent allows: floors on check durations and checks per service. */
export interface ConsulCheckPolicy {
  readonly floors: CheckFloors;
  readonly maxChecks: number;
  /**
   * Told of each duration raised to its floor (`field` as Consul names it), to log and count it.
   */
  readonly onRaised?: (field: string, fromMs: number, toMs: number) => void;
}

/** The default policy: default floors, LIMITS.maxChecks, raises untold. */
export const DEFAULT_CONSUL_CHECK_POLICY: ConsulCheckPolicy = Object.freeze({
  floors: DEFAULT_CHECK_FLOORS,
  maxChecks: LIMITS.maxChecks,
});

/** Where a check definition sits, for its default id and name, and the agent's policy. */
export interface CheckContext {
  readonly serviceId: string;
  readonly serviceName: string;
  /** 1-based position among the service's checks, when it has more than one. */
  readonly position?: number;
  /** Default: {@link DEFAULT_CONSUL_CHECK_POLICY}. */
  readonly policy?: ConsulCheckPolicy;
}

/**
 * `ms` raised to `floorMs` (a positive duration below it), as Consul raises an Interval below
 * its 1 s minimum and a DeregisterCriticalServiceAfter below 1 min (with a warning) rather than
 * refusing: Consul clients that send short durations keep working, at the floor's rate.
 */
function raised(
  field: string,
  ms: number | undefined,
  floorMs: number,
  policy: ConsulCheckPolicy,
): number | undefined {
  if (ms === undefined || ms <= 0 || ms >= floorMs) return ms;
  policy.onRaised?.(field, ms, floorMs);
  return floorMs;
}

const UNSUPPORTED_KINDS = [
  'Script',
  'Args',
  'GRPC',
  'UDP',
  'H2PING',
  'AliasNode',
  'AliasService',
  'DockerContainerID',
  'OSService',
] as const;

const DAY_MS = 86_400_000;

/**
 * A Consul check definition (normalised body) as a Meshwork check input. Refuses what Consul
 * refuses with Consul's messages, and the kinds Meshwork does not run.
 */
export function checkFromConsul(c: NormalisedBody, ctx: CheckContext): ParsedCheck {
  const str = (k: string): string | undefined =>
    typeof c[k] === 'string' ? (c[k] as string) : undefined;
  const num = (k: string): number | undefined =>
    typeof c[k] === 'number' ? (c[k] as number) : undefined;
  const unsupported = UNSUPPORTED_KINDS.find((k) => c[k] !== undefined && c[k] !== '');
  const policy = ctx.policy ?? DEFAULT_CONSUL_CHECK_POLICY;
  const http = str('HTTP');
  const tcp = str('TCP');
  const ttl = num('TTL');
  const interval = num('Interval');
  if (!http && !tcp && unsupported !== undefined) {
    throw refuse(
      `Invalid check: ${unsupported} checks are not supported by Meshwork; use HTTP, TCP or TTL`,
    );
  }
  // One check runs one probe: Consul would silently pick the first kind it knows.
  const kinds = [
    ...(http ? ['HTTP'] : []),
    ...(tcp ? ['TCP'] : []),
    ...UNSUPPORTED_KINDS.filter((k) => c[k] !== undefined && c[k] !== ''),
  ];
  if (kinds.length > 1 && (http || tcp))
    throw refuse(`Invalid check: ${kinds[0]} and ${kinds[1]} cannot both be specified`);
  if (interval !== undefined && interval > 0 && ttl !== undefined && ttl > 0)
    throw refuse('Invalid check: Interval and TTL cannot both be specified');
  const probe = (http !== undefined && http !== '') || (tcp !== undefined && tcp !== '');
  if (probe && (interval === undefined || interval <= 0))
    throw refuse(
      'Invalid check: Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or OSService checks',
    );
  if (!probe && (ttl === undefined || ttl <= 0))
    throw refuse('Invalid check: TTL must be > 0 for TTL checks');
  for (const [k, v, max] of [
    ['Interval', interval, DAY_MS],
    ['TTL', ttl, DAY_MS],
    ['Timeout', num('Timeout'), DAY_MS],
    ['DeregisterCriticalServiceAfter', num('DeregisterCriticalServiceAfter'), 30 * DAY_MS],
  ] as const) {
    if (v !== undefined && v > max)
      throw refuse(`Invalid check: ${k} must be at most ${formatDurationMs(max)}`);
  }
  const status = str('Status');
  if (status !== undefined && status !== '' && !CHECK_STATUSES.includes(status))
    throw refuse("Status for checks must 'passing', 'warning', 'critical'");
  const id =
    str('CheckID') ||
    (ctx.position === undefined
      ? `service:${ctx.serviceId}`
      : `service:${ctx.serviceId}:${ctx.position}`);
  if (id.length > LIMITS.maxIdLength || !/^[A-Za-z0-9_][A-Za-z0-9._:-]*$/.test(id))
    throw refuse(
      `Invalid check: CheckID "${id}": use letters, digits and . _ : - (at most ${LIMITS.maxIdLength})`,
    );
  const counts = (
    ['SuccessBeforePassing', 'FailuresBeforeWarning', 'FailuresBeforeCritical'] as const
  ).map((k) => {
    const v = num(k);
    if (v !== undefined && (v < 0 || v > 100)) throw refuse(`Invalid check: ${k} must be 0-100`);
    return v;
  });
  const [succ, fbw, fbc] = counts;
  if (fbw !== undefined && fbc !== undefined && fbw > fbc)
    throw refuse(
      "Invalid check: FailuresBeforeWarning can't be higher than FailuresBeforeCritical",
    );
  const name = str('Name');
  if (name !== undefined) check(checkInputSchema.shape.name, name, 'Invalid check: Name');
  const notes = str('Notes');
  if (notes !== undefined && notes.length > LIMITS.maxOutputLength)
    throw refuse(`Invalid check: Notes must be at most ${LIMITS.maxOutputLength} characters`);
  const { floors } = policy;
  const timeout = raised('Timeout', num('Timeout'), floors.timeoutMs, policy);
  const deregisterAfter = raised(
    'DeregisterCriticalServiceAfter',
    num('DeregisterCriticalServiceAfter'),
    floors.deregisterCriticalAfterMs,
    policy,
  );
  const out: Record<string, unknown> = {
    id,
    name: name || `Service '${ctx.serviceName}' check`,
    role: 'readiness',
    // Consul's default timeout is 10s; Meshwork never lets it exceed the interval.
    timeoutMs: timeout || 10_000,
    // Consul counts 0 as "the first result decides"; Meshwork counts from 1.
    successesBeforePassing: Math.max(succ ?? 1, 1),
    failuresBeforeCritical: Math.max(fbc ?? 1, 1),
    failuresBeforeWarning: Math.max(fbw ?? fbc ?? 1, 1),
    deregisterCriticalAfterMs: deregisterAfter ?? 0,
    initialStatus: (status || 'critical') as CheckStatus,
    ...(notes === undefined || notes === '' ? {} : { notes }),
  };
  if (http !== undefined && http !== '') {
    let url: URL;
    try {
      url = new URL(http);
    } catch {
      throw refuse(`Invalid check: HTTP "${http}" is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw refuse('Invalid check: HTTP must be an http or https URL');
    const method = str('Method') || 'GET';
    if (!/^[A-Z]{1,16}$/.test(method))
      throw refuse('Invalid check: Method must be an upper-case HTTP method');
    const header = (c.Header ?? {}) as Record<string, string[]>;
    if (Object.keys(header).length > LIMITS.maxHeaders)
      throw refuse(`Invalid check: at most ${LIMITS.maxHeaders} headers`);
    const headers: Record<string, string> = {};
    for (const [k, vs] of Object.entries(header)) {
      headers[k] = vs.join(', ');
      if (hasControlChars(k) || hasControlChars(headers[k]))
        throw refuse(`Invalid check: Header "${k}": ${NO_CONTROL_CHARS}`);
    }
    out.kind = 'http';
    out.http = { url: http, method, headers, tlsSkipVerify: c.TLSSkipVerify === true };
    out.intervalMs = raised('Interval', interval, floors.intervalMs, policy);
  } else if (tcp !== undefined && tcp !== '') {
    out.kind = 'tcp';
    out.tcp = tcp;
    out.intervalMs = raised('Interval', interval, floors.intervalMs, policy);
  } else {
    out.kind = 'ttl';
    out.ttlMs = raised('TTL', ttl, floors.ttlMs, policy);
  }
  return out as ParsedCheck;
}

/** Normalises check inputs to definitions, with Consul's `Invalid check: ...` on failure. */
export function checkDefinitions(
  inputs: readonly ParsedCheck[],
  floors: CheckFloors = DEFAULT_CHECK_FLOORS,
): CheckDefinition[] {
  try {
    return normalizeChecks(inputs, floors);
  } catch (err) {
    if (err instanceof CheckShapeError) throw refuse(`Invalid check: ${err.reason}`);
    throw err;
  }
}

/**
 * A Consul service definition (normalised body of /v1/agent/service/register, or the `Service`
 * of /v1/catalog/register) as a Meshwork registration.
 */
export function registrationFromConsul(
  s: NormalisedBody,
  node: ConsulNodeInfo,
  policy: ConsulCheckPolicy = DEFAULT_CONSUL_CHECK_POLICY,
): ParsedRegistration {
  const name = (s.Name ?? s.Service) as string | undefined;
  if (name === undefined || name === '') throw refuse('Missing service name');
  if (!SERVICE_NAME.test(name))
    throw refuse(
      `Invalid service name "${name}": Meshwork service names are 1-63 lowercase letters, digits or hyphens (DNS labels)`,
    );
  const id = (s.ID as string | undefined) || name;
  check(shape.id, id, 'Invalid service ID');
  let address = (s.Address as string | undefined) ?? '';
  if (address === '0.0.0.0' || address === '::' || address === '[::]')
    throw refuse('Invalid service address');
  if (address === '') address = node.address;
  check(shape.address, address, 'Invalid service address');
  const port = (s.Port as number | undefined) ?? 0;
  if (port < 0 || port > 65535) throw refuse('Invalid service port: must be 0-65535');
  const tags = check(shape.tags, (s.Tags as string[] | undefined) ?? [], 'Invalid service tags');
  const meta = { ...((s.Meta as Record<string, string> | undefined) ?? {}) };
  for (const k of Object.keys(meta)) {
    if (k.startsWith(CONSUL_META_PREFIX))
      throw refuse(`Invalid Service Meta: Key "${k}" uses reserved prefix "${CONSUL_META_PREFIX}"`);
  }
  check(shape.meta, meta, 'Invalid Service Meta');
  meta[META_REGISTERED] = 'true';
  if (s.EnableTagOverride === true) meta[META_TAG_OVERRIDE] = 'true';
  const w = s.Weights as { Passing?: number; Warning?: number } | undefined;
  const weights = { passing: w?.Passing ?? 1, warning: w?.Warning ?? 1 };
  if (weights.passing < 1 || weights.passing > 65535)
    throw refuse(`Invalid Weights: Passing must be 1-65535, got ${weights.passing}`);
  if (weights.warning < 0 || weights.warning > 65535)
    throw refuse(`Invalid Weights: Warning must be 0-65535, got ${weights.warning}`);
  const defs = [
    ...(s.Check === undefined ? [] : [s.Check as NormalisedBody]),
    ...((s.Checks as NormalisedBody[] | undefined) ?? []),
  ];
  if (defs.length > policy.maxChecks)
    throw refuse(`Invalid check: at most ${policy.maxChecks} checks`);
  const checks = defs.map((c, n) =>
    checkFromConsul(c, {
      serviceId: id,
      serviceName: name,
      policy,
      ...(defs.length > 1 ? { position: n + 1 } : {}),
    }),
  );
  checkDefinitions(checks, policy.floors);
  return { service: name, id, address, port, tags, meta, weights, checks };
}

/** A stored definition back to a check input (to re-register an instance with its checks). */
export function checkInputOf(
  def: CheckDefinition,
  floors: CheckFloors = DEFAULT_CHECK_FLOORS,
): ParsedCheck {
  // A check stored before the floors (or under lower ones) is kept at the floor, as Consul would
  // raise it, rather than making the re-registration that keeps it fail.
  const atLeast = (ms: number | undefined, floor: number) =>
    ms === undefined || ms === 0 ? ms : Math.max(ms, floor);
  return {
    ...def,
    tcp: def.tcp?.address,
    intervalMs: atLeast(def.intervalMs, floors.intervalMs),
    timeoutMs: atLeast(def.timeoutMs, floors.timeoutMs),
    ttlMs: atLeast(def.ttlMs, floors.ttlMs),
    deregisterCriticalAfterMs: atLeast(
      def.deregisterCriticalAfterMs,
      floors.deregisterCriticalAfterMs,
    ),
  } as ParsedCheck;
}
