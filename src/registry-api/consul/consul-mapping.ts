/**
 * @module Instance <-> Consul shapes. One agent is one Consul node; each instance is a service of
 * that node; its checks are the service's checks; maintenance shows as Consul's synthetic
 * `_service_maintenance:<id>` / `_node_maintenance` critical checks; the node always carries a
 * passing `serfHealth` check. Field names and defaults follow shared/docs/consul-api.md §3.1, §5.
 */
import { createHash } from 'node:crypto';
import { formatDurationMs } from '../../core/duration.js';
import { errors } from '../../core/errors.js';
import {
  INTERNAL_META_PREFIX,
  type CheckDefinition,
  type CheckStatus,
  type Maintenance,
} from '../../core/types.js';
import type { CheckDto, InstanceDto } from '../../protocol/api-types.js';
import type { NodeChecksDto } from '../../registry/catalog-facade.js';
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

/** What the adapter says about its node. */
export interface ConsulNodeInfo {
  readonly nodeName: string;
  readonly datacenter: string;
  /** The node's address (services without an address are reached here). */
  readonly address: string;
}

/** Meta keys starting with this are Consul's reserved prefix: Meshwork keeps its markers there. */
export const CONSUL_META_PREFIX = INTERNAL_META_PREFIX;
/** Marks instances registered through /v1: their check ids are Consul CheckIDs verbatim. */
export const META_REGISTERED = 'consul-registered';
export const META_TAG_OVERRIDE = 'consul-enable-tag-override';

export const SERVICE_MAINTENANCE_PREFIX = '_service_maintenance:';
export const NODE_MAINTENANCE_ID = '_node_maintenance';
export const SERVICE_MAINTENANCE_DEFAULT =
  'Maintenance mode is enabled for this service, but no reason was provided. This is a default message.';
export const NODE_MAINTENANCE_DEFAULT =
  'Maintenance mode is enabled for this node, but no reason was provided. This is a default message.';

const CHECK_STATUSES: readonly string[] = ['passing', 'warning', 'critical'];

/** A stable UUID-shaped node ID derived from the node name (Consul nodes have one). */
export function nodeId(nodeName: string): string {
  const h = createHash('sha256').update(`meshwork-node:${nodeName}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** Catalog `Node` object. */
export function consulNode(node: ConsulNodeInfo): Record<string, unknown> {
  return {
    ID: nodeId(node.nodeName),
    Node: node.nodeName,
    Address: node.address,
    Datacenter: node.datacenter,
    TaggedAddresses: { lan: node.address, wan: node.address },
    Meta: { 'consul-network-segment': '' },
    CreateIndex: 1,
    ModifyIndex: 1,
  };
}

/**
 * The node's own checks: serfHealth, the node-level checks registered on this agent (no
 * ServiceID), then _node_maintenance while the agent is in maintenance.
 */
export function nodeChecks(
  node: ConsulNodeInfo,
  maintenance: Maintenance | undefined,
  registered?: NodeChecksDto,
): Record<string, unknown>[] {
  const base = {
    Node: node.nodeName,
    Notes: '',
    ServiceID: '',
    ServiceName: '',
    ServiceTags: [],
    Type: '',
    Interval: '',
    Timeout: '',
    ExposedPort: 0,
    Definition: {},
    CreateIndex: 1,
    ModifyIndex: 1,
  };
  const out: Record<string, unknown>[] = [
    {
      ...base,
      CheckID: 'serfHealth',
      Name: 'Serf Health Status',
      Status: 'passing',
      Output: 'Agent alive and reachable',
    },
  ];
  for (const c of registered?.checks ?? []) {
    out.push(
      healthCheck(
        node,
        c,
        c.id,
        undefined,
        registered?.createIndex ?? 1,
        registered?.modifyIndex ?? 1,
      ),
    );
  }
  if (maintenance?.enabled === true) {
    out.push({
      ...base,
      CheckID: NODE_MAINTENANCE_ID,
      Name: 'Node Maintenance Mode',
      Status: 'critical',
      Notes: maintenance.reason || NODE_MAINTENANCE_DEFAULT,
      Output: '',
    });
  }
  return out;
}

/** The Consul CheckID of an instance's check at `position` (0-based). */
export function consulCheckId(
  instance: InstanceDto,
  check: CheckDefinition,
  position: number,
): string {
  // Instances registered through /v1 keep Consul's ids as their check ids. Native ones get the
  // ids Consul would have given them, so ids stay unique across the node.
  if (instance.meta[META_REGISTERED] === 'true') return check.id;
  return instance.checks.length === 1
    ? `service:${instance.id}`
    : `service:${instance.id}:${position + 1}`;
}

/** Finds the check behind a Consul CheckID among `candidates`. */
export function findCheck(
  candidates: Iterable<InstanceDto>,
  checkId: string,
): { instance: InstanceDto; check: CheckDto } | undefined {
  for (const instance of candidates) {
    const i = instance.checks.findIndex((c, n) => consulCheckId(instance, c, n) === checkId);
    const check = instance.checks[i];
    if (check !== undefined) return { instance, check };
  }
  return undefined;
}

/** Consul's meta: the instance's meta minus Meshwork's markers. */
function consulMeta(meta: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(meta)) if (!k.startsWith(CONSUL_META_PREFIX)) out[k] = v;
  return out;
}

const weightsOf = (i: InstanceDto) => ({ Passing: i.weights.passing, Warning: i.weights.warning });
const tagOverride = (i: InstanceDto): boolean => i.meta[META_TAG_OVERRIDE] === 'true';

/** A `HealthCheck` object: of service `i`, or of the node when `i` is undefined. */
function healthCheck(
  node: ConsulNodeInfo,
  c: CheckDto,
  checkId: string,
  i: InstanceDto | undefined,
  createIndex: number,
  modifyIndex: number,
): Record<string, unknown> {
  return {
    Node: node.nodeName,
    CheckID: checkId,
    Name: c.name,
    Status: c.status,
    Notes: c.notes ?? '',
    Output: c.output,
    ServiceID: i?.id ?? '',
    ServiceName: i?.service ?? '',
    ServiceTags: i?.tags ?? [],
    Type: c.kind,
    Interval: c.kind === 'ttl' ? '' : formatDurationMs(c.intervalMs),
    Timeout: c.kind === 'ttl' ? '' : formatDurationMs(c.timeoutMs),
    ExposedPort: 0,
    Definition: {},
    CreateIndex: createIndex,
    ModifyIndex: modifyIndex,
  };
}

/** `HealthCheck` objects of an instance: its checks, then its maintenance check if any. */
export function serviceChecks(node: ConsulNodeInfo, i: InstanceDto): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = i.checks.map((c, n) =>
    healthCheck(node, c, consulCheckId(i, c, n), i, i.createIndex, i.modifyIndex),
  );
  if (i.maintenance.enabled) {
    out.push({
      Node: node.nodeName,
      CheckID: SERVICE_MAINTENANCE_PREFIX + i.id,
      Name: 'Service Maintenance Mode',
      Status: 'critical',
      Notes: i.maintenance.reason || SERVICE_MAINTENANCE_DEFAULT,
      Output: '',
      ServiceID: i.id,
      ServiceName: i.service,
      ServiceTags: i.tags,
      Type: 'maintenance',
      Interval: '',
      Timeout: '',
      ExposedPort: 0,
      Definition: {},
      CreateIndex: i.modifyIndex,
      ModifyIndex: i.modifyIndex,
    });
  }
  return out;
}

/** `NodeService` (health/service "Service", catalog/node "Services" values). */
export function nodeService(i: InstanceDto): Record<string, unknown> {
  return {
    ID: i.id,
    Service: i.service,
    Tags: i.tags,
    Address: i.address,
    Meta: consulMeta(i.meta),
    Port: i.port,
    Weights: weightsOf(i),
    EnableTagOverride: tagOverride(i),
    Proxy: { Mode: '', MeshGateway: {}, Expose: {} },
    Connect: {},
    CreateIndex: i.createIndex,
    ModifyIndex: i.modifyIndex,
  };
}

/** `AgentService` (agent/services values, agent/service/:id). */
export function agentService(node: ConsulNodeInfo, i: InstanceDto): Record<string, unknown> {
  return {
    ID: i.id,
    Service: i.service,
    Tags: i.tags,
    Meta: consulMeta(i.meta),
    Port: i.port,
    Address: i.address,
    Weights: weightsOf(i),
    EnableTagOverride: tagOverride(i),
    Datacenter: node.datacenter,
  };
}

/** `ServiceNode` (catalog/service items). */
export function serviceNode(node: ConsulNodeInfo, i: InstanceDto): Record<string, unknown> {
  const { ID, Node, Address, Datacenter, TaggedAddresses, Meta } = consulNode(node);
  return {
    ID,
    Node,
    Address,
    Datacenter,
    TaggedAddresses,
    NodeMeta: Meta,
    ServiceKind: '',
    ServiceID: i.id,
    ServiceName: i.service,
    ServiceTags: i.tags,
    ServiceAddress: i.address,
    ServiceWeights: weightsOf(i),
    ServiceMeta: consulMeta(i.meta),
    ServicePort: i.port,
    ServiceEnableTagOverride: tagOverride(i),
    ServiceProxy: {},
    ServiceConnect: {},
    CreateIndex: i.createIndex,
    ModifyIndex: i.modifyIndex,
  };
}

/** Consul's aggregated status of a service instance: maintenance > critical > warning > passing. */
export function aggregatedStatus(checks: readonly Record<string, unknown>[]): string {
  let worst = 'passing';
  for (const c of checks) {
    const id = String(c.CheckID);
    if (id === NODE_MAINTENANCE_ID || id.startsWith(SERVICE_MAINTENANCE_PREFIX))
      return 'maintenance';
    if (c.Status === 'critical') worst = 'critical';
    else if (c.Status === 'warning' && worst === 'passing') worst = 'warning';
  }
  return worst;
}

// ---- Consul definitions -> registrations -----------------------------------------------------

/** A request Consul refuses with a plain-text message (400 unless `status` says otherwise). */
export const refuse = (message: string, status = 400) => errors.consulRequest(status, message);

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
