/**
 * @module Eureka <-> catalog, pure: a Eureka registration as a catalog registration, and any
 * catalog instance (registered through Eureka or any other way) as the instance a Eureka client
 * reads (docs/eureka-compatibility.md has the table, field by field).
 */
import { isIP } from 'node:net';
import type { Instance } from '../../core/types.js';
import type { InstanceDto } from '../../protocol/api-types.js';
import { LIMITS } from '../../protocol/limits.js';
import {
  registrationInputSchema,
  SERVICE_NAME,
  type ParsedCheck,
  type ParsedRegistration,
} from '../../protocol/registration.js';
import { EUREKA_LEASE_CHECK_ID, EUREKA_RENEWAL_OUTPUT } from './eureka-lease-contract.js';
import {
  appsHashCode,
  DEFAULT_DATACENTER_CLASS,
  DEFAULT_LEASE,
  EUREKA_STATUSES,
  EurekaBodyError,
  type EurekaApplication,
  type EurekaApplications,
  type EurekaInstanceInput,
  type EurekaInstanceView,
  type EurekaLeaseInput,
  type EurekaPort,
  type EurekaStatus,
} from './eureka-model.js';

/** The meta keys Eureka's fields are kept in (all start with {@link EUREKA_META_PREFIX}). */
export const EUREKA_META = Object.freeze({
  instanceId: 'eureka-instance-id',
  hostName: 'eureka-hostname',
  /** ipAddr, only when it is not the instance's address (it was not an IP). */
  ipAddr: 'eureka-ip-addr',
  status: 'eureka-status',
  overriddenStatus: 'eureka-overridden-status',
  /** `<port>:<on|off>/<securePort>:<on|off>`. */
  ports: 'eureka-ports',
  lease: 'eureka-lease',
  vipAddress: 'eureka-vip-address',
  secureVipAddress: 'eureka-secure-vip-address',
  homePageUrl: 'eureka-home-page-url',
  statusPageUrl: 'eureka-status-page-url',
  healthCheckUrl: 'eureka-health-check-url',
  secureHealthCheckUrl: 'eureka-secure-health-check-url',
  appGroupName: 'eureka-app-group-name',
  dataCenter: 'eureka-datacenter',
  dataCenterClass: 'eureka-datacenter-class',
  dataCenterMetadata: 'eureka-datacenter-metadata',
  /** Metadata whose keys the catalog's meta keys cannot hold, as one JSON object. */
  metadata: 'eureka-metadata',
});

export const EUREKA_META_PREFIX = 'eureka-';

/** The maintenance reason of an OUT_OF_SERVICE override. */
export const EUREKA_OVERRIDE_REASON = 'Eureka status override OUT_OF_SERVICE';

const META_KEY = /^[A-Za-z0-9_-]+$/;
const ID = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;

/** The catalog service of a Eureka app name (lower-cased), or undefined when it cannot be one. */
export function serviceOfApp(app: string): string | undefined {
  const service = app.toLowerCase();
  return SERVICE_NAME.test(service) ? service : undefined;
}

/** The catalog id of Eureka instance `eurekaId` of `service`: Eureka ids are unique per app only. */
export function catalogIdOf(service: string, eurekaId: string): string {
  return `${service}:${eurekaId}`;
}

/** Whether `s` is one of Eureka's statuses. */
export function isEurekaStatus(s: string): s is EurekaStatus {
  return (EUREKA_STATUSES as readonly string[]).includes(s);
}

/** The lease check's status for a reported Eureka status: passing for UP only. */
export function leaseCheckStatus(status: EurekaStatus): 'passing' | 'critical' {
  return status === 'UP' ? 'passing' : 'critical';
}

/** The lease check's output for a reported Eureka status. */
export function renewalOutput(status: EurekaStatus): string {
  return EUREKA_RENEWAL_OUTPUT + status;
}

/** What a Eureka registration becomes. */
export interface EurekaRegistration {
  readonly registration: ParsedRegistration;
  readonly service: string;
  /** The Eureka instance id (the body's, else its hostName). */
  readonly eurekaId: string;
  /** Status the lease check is set to (with {@link renewalOutput} of `status`). */
  readonly status: EurekaStatus;
  /** Whether the instance's maintenance is on (an OUT_OF_SERVICE override). */
  readonly outOfService: boolean;
  readonly lease: EurekaLeaseInput;
}

const portsMeta = (port: EurekaPort, secure: EurekaPort): string =>
  `${port.port}:${port.enabled ? 'on' : 'off'}/${secure.port}:${secure.enabled ? 'on' : 'off'}`;

function parsePortsMeta(v: string | undefined): [EurekaPort, EurekaPort] | undefined {
  const m = v === undefined ? null : /^(\d+):(on|off)\/(\d+):(on|off)$/.exec(v);
  if (m === null) return undefined;
  return [
    { port: Number(m[1]), enabled: m[2] === 'on' },
    { port: Number(m[3]), enabled: m[4] === 'on' },
  ];
}

/** Sets `meta[key] = value` when value is defined, refusing values over the meta value limit. */
function putMeta(
  meta: Record<string, string>,
  key: string,
  value: string | undefined,
  field: string,
): void {
  if (value === undefined || value === '') return;
  if (value.length > LIMITS.maxMetaValueLength)
    throw new EurekaBodyError(field, `must be at most ${LIMITS.maxMetaValueLength} characters`);
  meta[key] = value;
}

/**
 * Eureka metadata into catalog meta: keys the catalog accepts verbatim, the others (Spring's
 * `management.port`) in one {@link EUREKA_META.metadata} JSON value.
 */
export function metadataToMeta(
  metadata: Readonly<Record<string, string>>,
  meta: Record<string, string>,
): void {
  const rest: Record<string, string> = {};
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string')
      throw new EurekaBodyError(`instance.metadata.${k}`, 'must be a string');
    if (
      META_KEY.test(k) &&
      k.length <= LIMITS.maxMetaKeyLength &&
      !k.startsWith(EUREKA_META_PREFIX) &&
      v.length <= LIMITS.maxMetaValueLength
    )
      meta[k] = v;
    else rest[k] = v;
  }
  if (Object.keys(rest).length > 0) {
    const json = JSON.stringify(rest);
    if (json.length > LIMITS.maxMetaValueLength)
      throw new EurekaBodyError(
        'instance.metadata',
        `keys that are not letters, digits, _ and - (or values over ${LIMITS.maxMetaValueLength} characters) are kept together in at most ${LIMITS.maxMetaValueLength} characters`,
      );
    meta[EUREKA_META.metadata] = json;
  }
  if (Object.keys(meta).length > LIMITS.maxMetaPairs)
    throw new EurekaBodyError(
      'instance.metadata',
      `too many keys: at most ${LIMITS.maxMetaPairs} with the instance's other fields`,
    );
}

/** The Eureka metadata kept in catalog meta (the inverse of {@link metadataToMeta}). */
export function metaToMetadata(meta: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(meta)) if (!k.startsWith(EUREKA_META_PREFIX)) out[k] = v;
  const packed = meta[EUREKA_META.metadata];
  if (packed !== undefined) {
    try {
      const parsed = JSON.parse(packed) as unknown;
      if (parsed !== null && typeof parsed === 'object')
        for (const [k, v] of Object.entries(parsed)) if (typeof v === 'string') out[k] = v;
    } catch {
      // Written by metadataToMeta only; a hand-edited value is ignored rather than failing reads.
    }
  }
  return out;
}

/**
 * A Eureka registration body as a catalog registration. `pathApp` is the `{app}` of the URL;
 * `ttlFloorMs` the agent's TTL floor (the lease's duration is raised to it). Throws
 * {@link EurekaBodyError} naming the field.
 */
export function registrationFromEureka(
  input: EurekaInstanceInput,
  pathApp: string,
  ttlFloorMs: number,
): EurekaRegistration {
  if (input.app.toLowerCase() !== pathApp.toLowerCase())
    throw new EurekaBodyError('instance.app', `"${input.app}" is not the app of the path`);
  const service = serviceOfApp(input.app);
  if (service === undefined)
    throw new EurekaBodyError(
      'instance.app',
      'lower-cased, must be 1-63 letters, digits or hyphens, not starting or ending with a hyphen (a DNS label)',
    );
  const eurekaId = input.instanceId ?? input.hostName;
  const id = catalogIdOf(service, eurekaId);
  if (eurekaId === '' || !ID.test(eurekaId) || id.length > LIMITS.maxIdLength)
    throw new EurekaBodyError(
      input.instanceId === undefined ? 'instance.hostName' : 'instance.instanceId',
      `must start with a letter or digit and use letters, digits, . _ : - (at most ${LIMITS.maxIdLength - service.length - 1} characters for app ${service})`,
    );
  const address = isIP(input.ipAddr) !== 0 ? input.ipAddr : input.hostName;
  const addressCheck = registrationInputSchema.shape.address.safeParse(address);
  if (!addressCheck.success)
    throw new EurekaBodyError(
      isIP(input.ipAddr) !== 0 ? 'instance.ipAddr' : 'instance.hostName',
      'must be an IP address or a hostname (ipAddr is used when it is an IP, else hostName)',
    );
  const { port: p, securePort: sp } = input;
  for (const [field, v] of [
    ['instance.port.$', p],
    ['instance.securePort.$', sp],
  ] as const) {
    if (!Number.isInteger(v.port) || v.port < 1 || v.port > 65535)
      throw new EurekaBodyError(field, 'must be 1-65535');
  }
  const port = p.enabled ? p.port : sp.enabled ? sp.port : p.port;
  const ports: Record<string, number> = {};
  if (p.enabled) ports.http = p.port;
  if (sp.enabled) ports.https = sp.port;
  const lease = input.leaseInfo;
  for (const [field, v] of [
    ['instance.leaseInfo.renewalIntervalInSecs', lease.renewalIntervalInSecs],
    ['instance.leaseInfo.durationInSecs', lease.durationInSecs],
  ] as const) {
    if (!Number.isInteger(v) || v < 1 || v > 86_400)
      throw new EurekaBodyError(field, 'must be a whole number of seconds, 1-86400');
  }

  const meta: Record<string, string> = {};
  metadataToMeta(input.metadata, meta);
  const M = EUREKA_META;
  putMeta(meta, M.instanceId, eurekaId, 'instance.instanceId');
  putMeta(meta, M.hostName, input.hostName, 'instance.hostName');
  if (input.ipAddr !== address) putMeta(meta, M.ipAddr, input.ipAddr, 'instance.ipAddr');
  meta[M.status] = input.status;
  if (input.overriddenStatus !== 'UNKNOWN') meta[M.overriddenStatus] = input.overriddenStatus;
  meta[M.ports] = portsMeta(p, sp);
  meta[M.lease] = `${lease.renewalIntervalInSecs}/${lease.durationInSecs}`;
  putMeta(meta, M.vipAddress, input.vipAddress, 'instance.vipAddress');
  putMeta(meta, M.secureVipAddress, input.secureVipAddress, 'instance.secureVipAddress');
  putMeta(meta, M.homePageUrl, input.homePageUrl, 'instance.homePageUrl');
  putMeta(meta, M.statusPageUrl, input.statusPageUrl, 'instance.statusPageUrl');
  putMeta(meta, M.healthCheckUrl, input.healthCheckUrl, 'instance.healthCheckUrl');
  putMeta(
    meta,
    M.secureHealthCheckUrl,
    input.secureHealthCheckUrl,
    'instance.secureHealthCheckUrl',
  );
  putMeta(meta, M.appGroupName, input.appGroupName, 'instance.appGroupName');
  const dc = input.dataCenterInfo;
  putMeta(meta, M.dataCenter, dc.name, 'instance.dataCenterInfo.name');
  if (dc.className !== DEFAULT_DATACENTER_CLASS)
    putMeta(meta, M.dataCenterClass, dc.className, 'instance.dataCenterInfo.@class');
  if (Object.keys(dc.metadata).length > 0)
    putMeta(
      meta,
      M.dataCenterMetadata,
      JSON.stringify(dc.metadata),
      'instance.dataCenterInfo.metadata',
    );
  if (Object.keys(meta).length > LIMITS.maxMetaPairs)
    throw new EurekaBodyError(
      'instance.metadata',
      `too many keys: at most ${LIMITS.maxMetaPairs} with the instance's other fields`,
    );

  const status = effectiveStatus(input.status, input.overriddenStatus);
  const check: ParsedCheck = {
    id: EUREKA_LEASE_CHECK_ID,
    name: 'Eureka lease',
    kind: 'ttl',
    ttlMs: Math.max(lease.durationInSecs * 1000, ttlFloorMs),
    initialStatus: leaseCheckStatus(status),
  };
  const parsed = registrationInputSchema.safeParse({
    service,
    id,
    address,
    port,
    ports,
    meta,
    checks: [check],
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new EurekaBodyError(
      `instance.${issue?.path.join('.') ?? ''}`,
      issue?.message ?? 'invalid',
    );
  }
  return {
    registration: parsed.data,
    service,
    eurekaId,
    status,
    outOfService: input.overriddenStatus === 'OUT_OF_SERVICE',
    lease: {
      renewalIntervalInSecs: lease.renewalIntervalInSecs,
      durationInSecs: lease.durationInSecs,
    },
  };
}

/**
 * The status a renewal reports to the lease check: an override other than OUT_OF_SERVICE (which
 * is maintenance) and UNKNOWN (none) wins over the client's, as Eureka's overridden status does.
 */
export function effectiveStatus(reported: EurekaStatus, overridden: EurekaStatus): EurekaStatus {
  return overridden === 'UNKNOWN' || overridden === 'OUT_OF_SERVICE' ? reported : overridden;
}

/** A stored instance back to a registration (to re-register it with edited meta). */
export function registrationOfInstance(
  def: Instance,
  meta: Readonly<Record<string, string>>,
): ParsedRegistration {
  return {
    service: def.service,
    id: def.id,
    address: def.address,
    port: def.port,
    ports: { ...def.ports },
    tags: [...def.tags],
    meta: { ...meta },
    weights: def.weights,
    priority: def.priority,
    capacity: def.capacity,
    protocols: [...def.protocols],
    source: def.source,
    checks: def.checks.map((c) => ({ ...c, tcp: c.tcp?.address }) as ParsedCheck),
  };
}

/** Whether a catalog instance was registered through Eureka. */
export function isEurekaInstance(dto: Pick<InstanceDto, 'meta'>): boolean {
  return dto.meta[EUREKA_META.instanceId] !== undefined;
}

/** The Eureka instance id of any catalog instance (its catalog id when not registered through Eureka). */
export function eurekaIdOf(dto: Pick<InstanceDto, 'id' | 'meta'>): string {
  return dto.meta[EUREKA_META.instanceId] ?? dto.id;
}

/** The Eureka status of any catalog instance. */
export function eurekaStatusOf(
  dto: Pick<InstanceDto, 'status' | 'maintenance' | 'meta'>,
  agentMaintenance: boolean,
): EurekaStatus {
  if (agentMaintenance || dto.maintenance.enabled || dto.status === 'maintenance')
    return 'OUT_OF_SERVICE';
  switch (dto.status) {
    case 'starting':
      return 'STARTING';
    case 'critical': {
      const reported = dto.meta[EUREKA_META.status];
      return reported === 'STARTING' || reported === 'DOWN' || reported === 'UNKNOWN'
        ? reported
        : 'DOWN';
    }
    default:
      return 'UP';
  }
}

const optional = (v: string | undefined): string | undefined => (v === '' ? undefined : v);

function parseLease(v: string | undefined): EurekaLeaseInput {
  const m = v === undefined ? null : /^(\d+)\/(\d+)$/.exec(v);
  return m === null
    ? DEFAULT_LEASE
    : { renewalIntervalInSecs: Number(m[1]), durationInSecs: Number(m[2]) };
}

function parseJsonRecord(v: string | undefined): Record<string, string> {
  if (v === undefined) return {};
  try {
    const parsed = JSON.parse(v) as unknown;
    const out: Record<string, string> = {};
    if (parsed !== null && typeof parsed === 'object')
      for (const [k, x] of Object.entries(parsed)) if (typeof x === 'string') out[k] = x;
    return out;
  } catch {
    return {};
  }
}

/** What a view needs besides the instance: agent maintenance and the last renewal seen. */
export interface EurekaViewContext {
  readonly agentMaintenance: boolean;
  /** Epoch ms of the instance's last renewal (the lease keeper's), if known. */
  readonly lastRenewal?: (id: string) => number | undefined;
}

/** Any catalog instance as a Eureka client reads it. */
export function instanceView(
  dto: InstanceDto,
  ctx: EurekaViewContext,
  actionType: EurekaInstanceView['actionType'] = 'ADDED',
): EurekaInstanceView {
  const meta = dto.meta;
  const M = EUREKA_META;
  const status = eurekaStatusOf(dto, ctx.agentMaintenance);
  const lease = isEurekaInstance(dto) ? parseLease(meta[M.lease]) : DEFAULT_LEASE;
  const leaseCheck = dto.checks.find((c) => c.id === EUREKA_LEASE_CHECK_ID);
  const lastRenewal = ctx.lastRenewal?.(dto.id) ?? leaseCheck?.since ?? dto.updatedAt;
  const override = meta[M.overriddenStatus];
  const overriddenStatus: EurekaStatus = dto.maintenance.enabled
    ? 'OUT_OF_SERVICE'
    : override !== undefined && isEurekaStatus(override)
      ? override
      : 'UNKNOWN';
  const common = {
    app: dto.service.toUpperCase(),
    status,
    overriddenStatus,
    leaseInfo: {
      ...lease,
      registrationTimestamp: dto.createdAt,
      lastRenewalTimestamp: lastRenewal,
      evictionTimestamp: 0,
      serviceUpTimestamp: dto.createdAt,
    },
    lastUpdatedTimestamp: dto.updatedAt,
    lastDirtyTimestamp: dto.updatedAt,
    actionType,
  };
  if (!isEurekaInstance(dto)) {
    const https = dto.ports.https;
    return {
      ...common,
      instanceId: dto.id,
      appGroupName: undefined,
      hostName: dto.address,
      ipAddr: dto.address,
      port: { port: dto.port, enabled: true },
      securePort:
        https === undefined ? { port: 443, enabled: false } : { port: https, enabled: true },
      vipAddress: dto.service,
      secureVipAddress: dto.service,
      homePageUrl: undefined,
      statusPageUrl: undefined,
      healthCheckUrl: undefined,
      secureHealthCheckUrl: undefined,
      dataCenterInfo: { name: 'MyOwn', className: DEFAULT_DATACENTER_CLASS, metadata: {} },
      metadata: { ...meta },
    };
  }
  const [port, securePort] = parsePortsMeta(meta[M.ports]) ?? [
    { port: dto.port, enabled: true },
    { port: 443, enabled: false },
  ];
  return {
    ...common,
    instanceId: eurekaIdOf(dto),
    appGroupName: optional(meta[M.appGroupName]),
    hostName: meta[M.hostName] ?? dto.address,
    ipAddr: meta[M.ipAddr] ?? dto.address,
    port,
    securePort,
    vipAddress: optional(meta[M.vipAddress]),
    secureVipAddress: optional(meta[M.secureVipAddress]),
    homePageUrl: optional(meta[M.homePageUrl]),
    statusPageUrl: optional(meta[M.statusPageUrl]),
    healthCheckUrl: optional(meta[M.healthCheckUrl]),
    secureHealthCheckUrl: optional(meta[M.secureHealthCheckUrl]),
    dataCenterInfo: {
      name: meta[M.dataCenter] ?? 'MyOwn',
      className: meta[M.dataCenterClass] ?? DEFAULT_DATACENTER_CLASS,
      metadata: parseJsonRecord(meta[M.dataCenterMetadata]),
    },
    metadata: metaToMetadata(meta),
  };
}

/** Turns a catalog instance into its view (`instanceView`, or a cache of it). */
export type InstanceViewer = (dto: InstanceDto, ctx: EurekaViewContext) => EurekaInstanceView;

/**
 * A cache of views by instance id, valid while the instance's modify index (and agent
 * maintenance) stay as they were: a full fetch of 10,000 instances otherwise builds 10,000 views
 * per request. The last renewal (the lease keeper's, which moves without a catalog change) is
 * patched in per read. `forget` drops an instance gone from the catalog.
 */
export function createViewCache(): InstanceViewer & { forget(id: string): void; size(): number } {
  const cache = new Map<
    string,
    { modifyIndex: number; agentMaintenance: boolean; view: EurekaInstanceView }
  >();
  const viewer = (dto: InstanceDto, ctx: EurekaViewContext): EurekaInstanceView => {
    let hit = cache.get(dto.id);
    if (
      hit === undefined ||
      hit.modifyIndex !== dto.modifyIndex ||
      hit.agentMaintenance !== ctx.agentMaintenance
    ) {
      hit = {
        modifyIndex: dto.modifyIndex,
        agentMaintenance: ctx.agentMaintenance,
        view: instanceView(dto, { agentMaintenance: ctx.agentMaintenance }),
      };
      cache.set(dto.id, hit);
    }
    const { view } = hit;
    const renewed = ctx.lastRenewal?.(dto.id);
    return renewed === undefined || renewed === view.leaseInfo.lastRenewalTimestamp
      ? view
      : { ...view, leaseInfo: { ...view.leaseInfo, lastRenewalTimestamp: renewed } };
  };
  return Object.assign(viewer, {
    forget: (id: string) => void cache.delete(id),
    size: () => cache.size,
  });
}

/** Instances grouped into applications (by service, in name order). */
export function applicationsOf(views: readonly EurekaInstanceView[]): EurekaApplication[] {
  const byApp = new Map<string, EurekaInstanceView[]>();
  for (const v of views) {
    const list = byApp.get(v.app);
    if (list === undefined) byApp.set(v.app, [v]);
    else list.push(v);
  }
  return [...byApp.keys()].sort().map((name) => ({ name, instances: byApp.get(name) ?? [] }));
}

/** The whole registry (or the instances `keep` keeps) as `GET /apps` answers it. */
export function registryView(
  instances: readonly InstanceDto[],
  ctx: EurekaViewContext,
  versionsDelta: number,
  keep?: (v: EurekaInstanceView) => boolean,
  viewOf: InstanceViewer = instanceView,
): EurekaApplications {
  const views = instances.map((d) => viewOf(d, ctx));
  return {
    versionsDelta,
    appsHashCode: appsHashCode(views.map((v) => v.status)),
    applications: applicationsOf(keep === undefined ? views : views.filter(keep)),
  };
}

/** Whether a comma-separated VIP address list holds `vip`. */
export function vipListHas(list: string | undefined, vip: string): boolean {
  if (list === undefined) return false;
  return list.split(',').some((v) => v.trim() === vip);
}

/** The catalog instance a Eureka (app, id) names, among the instances `lookup` answers. */
export function findEurekaInstance<T extends Pick<InstanceDto, 'id' | 'service' | 'meta'>>(
  lookup: (id: string) => T | undefined,
  app: string,
  id: string,
): T | undefined {
  const service = serviceOfApp(app);
  if (service === undefined) return undefined;
  const byEureka = lookup(catalogIdOf(service, id));
  if (byEureka !== undefined && byEureka.meta[EUREKA_META.instanceId] === id) return byEureka;
  const byCatalog = lookup(id);
  return byCatalog !== undefined && byCatalog.service === service && eurekaIdOf(byCatalog) === id
    ? byCatalog
    : undefined;
}
