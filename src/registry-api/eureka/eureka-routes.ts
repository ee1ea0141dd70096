/**
 * @module The Eureka-compatible REST API (issue 23) under /eureka/v2 (Netflix's paths) and
 * /eureka (Spring Cloud's server paths): an adapter over the same catalog as the native and
 * Consul APIs (docs/eureka-compatibility.md). JSON or XML by `Accept`; errors answered in one
 * place, naming the field and the reason.
 */
import { negotiate } from '@fastify/accept-negotiator';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { Counter, type Registry as PromRegistry } from 'prom-client';
import { systemClock, type Clock } from '../../core/clock.js';
import { silentLogger, type Logger } from '../../core/logger.js';
import type { Instance } from '../../core/types.js';
import type { InstanceDto } from '../../protocol/api-types.js';
import type { CatalogFacade } from '../../registry/catalog-facade.js';
import { logsAsError, toHttpError } from '../error-mapping.js';
import {
  contentTypeOf,
  negotiateFormat,
  bodyFormat,
  parseInstanceBody,
  renderApplication,
  renderApplications,
  renderInstance,
} from './eureka-codec.js';
import { escapeXml } from './eureka-xml.js';
import { EurekaDeltaQueue } from './eureka-delta.js';
import { EUREKA_LEASE_CHECK_ID, type EurekaLeaseKeeper } from './eureka-lease-contract.js';
import {
  applicationsOf,
  createViewCache,
  EUREKA_META,
  EUREKA_META_PREFIX,
  EUREKA_OVERRIDE_REASON,
  effectiveStatus,
  eurekaIdOf,
  eurekaStatusOf,
  findEurekaInstance,
  instanceView,
  isEurekaInstance,
  isEurekaStatus,
  leaseCheckStatus,
  metadataToMeta,
  metaToMetadata,
  registrationFromEureka,
  registrationOfInstance,
  registryView,
  renewalOutput,
  serviceOfApp,
  vipListHas,
  type EurekaViewContext,
  type InstanceViewer,
} from './eureka-mapping.js';
import {
  appsHashCode,
  EurekaBodyError,
  type EurekaFormat,
  type EurekaInstanceView,
  type EurekaStatus,
} from './eureka-model.js';

/** The path prefixes the API is served under: Netflix's v2, and Spring Cloud's server. */
export const EUREKA_PREFIXES = Object.freeze(['/eureka/v2', '/eureka'] as const);

export interface EurekaRoutesOptions {
  readonly registry: CatalogFacade;
  /** How long a change stays in `/apps/delta` (agent option `eureka.deltaRetentionMs`). */
  readonly deltaRetentionMs: number;
  /** Changes kept at most for `/apps/delta` (default 10,000). */
  readonly deltaMaxEntries?: number;
  /** The lease keeper told of registrations, renewals and cancellations (omitted: none). */
  readonly leases?: EurekaLeaseKeeper;
  /** The clock of the delta queue and the response cache (default: the system clock). */
  readonly clock?: Clock;
  /**
   * How long a whole-registry answer (`/apps`, `/apps/delta`) is reused while the catalog index
   * is unchanged (default {@link DEFAULT_RESPONSE_CACHE_MS}; 0: never).
   */
  readonly responseCacheMs?: number;
  readonly logger?: Logger;
  /** Where `meshwork_eureka_requests_total` is registered (omitted: kept unregistered). */
  readonly metrics?: PromRegistry;
}

/**
 * Eureka's read-only response cache (`responseCacheUpdateIntervalMs`, 30 s): a full fetch at
 * 10,000 instances takes ~0.16 s (JSON) to ~0.2 s (XML) to render, and every client fetches every 30 s.
 * An answer is reused only while the catalog index is unchanged, so registrations, status changes
 * and evictions show at once; only the lease timestamps in it (`lastRenewalTimestamp`) may lag.
 */
export const DEFAULT_RESPONSE_CACHE_MS = 30_000;

/** A request refused: its status, the field at fault (if one is) and why. */
class EurekaRequestError extends Error {
  constructor(
    readonly status: number,
    readonly field: string | undefined,
    readonly reason: string,
  ) {
    super(field === undefined ? reason : `${field}: ${reason}`);
    this.name = 'EurekaRequestError';
  }
}

const notFound = (what: string): EurekaRequestError =>
  new EurekaRequestError(404, undefined, `${what} not found`);

const badQuery = (field: string, reason: string): EurekaRequestError =>
  new EurekaRequestError(400, field, reason);

/** The status and body of any error, in the request's format. The one place this happens. */
export function toEurekaError(
  err: unknown,
  format: EurekaFormat,
): { status: number; contentType: string; body: string } {
  let status: number;
  let field: string | undefined;
  let reason: string;
  if (err instanceof EurekaBodyError) {
    status = 400;
    field = err.field;
    reason = err.reason;
  } else if (err instanceof EurekaRequestError) {
    status = err.status;
    field = err.field;
    reason = err.reason;
  } else {
    const http = toHttpError(err);
    status = http.status;
    field = http.body.error.field;
    reason = http.body.error.message;
  }
  if (format === 'xml') {
    const f = field === undefined ? '' : `<field>${escapeXml(field)}</field>`;
    return {
      status,
      contentType: contentTypeOf('xml'),
      body: `<error><status>${status}</status>${f}<reason>${escapeXml(reason)}</reason></error>`,
    };
  }
  return {
    status,
    contentType: contentTypeOf('json'),
    body: JSON.stringify({ error: { status, ...(field === undefined ? {} : { field }), reason } }),
  };
}

type Params = Record<string, string | undefined>;
type Query = Record<string, string | string[] | undefined>;

const param = (req: FastifyRequest, name: string): string => (req.params as Params)[name] ?? '';

function queryString(req: FastifyRequest, name: string): string | undefined {
  const v = (req.query as Query | undefined)?.[name];
  return Array.isArray(v) ? v[v.length - 1] : v;
}

/** Registers the Eureka routes under each of {@link EUREKA_PREFIXES}. */
export function registerEurekaRoutes(app: FastifyInstance, options: EurekaRoutesOptions): void {
  const log = (options.logger ?? silentLogger).child({ component: 'eureka-api' });
  // Counted in plain numbers and handed to prom-client at scrape time: a labelled inc() hashes
  // its labels on every call, a cost on the renewal path.
  const counts = new Map<string, { operation: string; code: string; n: number }>();
  new Counter({
    name: 'meshwork_eureka_requests_total',
    help: 'Requests to the Eureka-compatible API, by operation and status code.',
    labelNames: ['operation', 'code'] as const,
    registers: options.metrics === undefined ? [] : [options.metrics],
    collect() {
      this.reset();
      for (const c of counts.values()) this.inc({ operation: c.operation, code: c.code }, c.n);
    },
  });
  const count = (operation: string, code: number): void => {
    const key = `${operation} ${code}`;
    const c = counts.get(key);
    if (c === undefined) counts.set(key, { operation, code: String(code), n: 1 });
    else c.n++;
  };
  // The lease keeper hears of every Eureka instance that leaves the catalog, however it left
  // (Consul or native deregistration, deregister-after-critical, an apply, its own eviction);
  // the ones cancelled through Eureka it heard of already, from the cancel route.
  const cancelledHere = new Set<string>();
  const viewCache = createViewCache();
  const { leases } = options;
  const delta = new EurekaDeltaQueue({
    registry: options.registry,
    clock: options.clock ?? systemClock,
    retentionMs: options.deltaRetentionMs,
    ...(options.deltaMaxEntries === undefined ? {} : { maxEntries: options.deltaMaxEntries }),
    onDeleted: (i: InstanceDto) => {
      viewCache.forget(i.id);
      if (leases === undefined || cancelledHere.delete(i.id) || !isEurekaInstance(i)) return;
      leases.cancelled(i.service, i.id);
    },
  });
  delta.start();
  app.addHook('onClose', async () => delta.close());
  const handlers = createEurekaHandlers(options, delta, cancelledHere, viewCache);
  for (const prefix of EUREKA_PREFIXES) {
    void app.register(
      async (scope) => {
        eurekaScope(scope, handlers, log, count);
      },
      { prefix },
    );
  }
}

const gzipAsync = promisify(gzip) as (body: string) => Promise<Buffer>;

/** A whole-registry answer kept while the catalog index holds (Eureka's response cache). */
interface CachedAnswer {
  readonly index: number;
  readonly at: number;
  readonly body: string;
  gzipped: Promise<Buffer> | undefined;
}

type Handler = (req: FastifyRequest, format: EurekaFormat) => Promise<Answer>;
interface Answer {
  readonly status: number;
  readonly body?: string;
  /**
   * The body gzipped, for a client that accepts it (the whole-registry answers, as Eureka's
   * server gzips them from its response cache): made once per cached answer, off the loop.
   */
  readonly gzip?: () => Promise<Buffer>;
}

interface EurekaHandlers {
  readonly register: Handler;
  readonly renew: Handler;
  readonly cancel: Handler;
  readonly putStatus: Handler;
  readonly deleteStatus: Handler;
  readonly putMetadata: Handler;
  readonly apps: Handler;
  readonly delta: Handler;
  readonly app: Handler;
  readonly appInstance: Handler;
  readonly instance: Handler;
  readonly vip: Handler;
  readonly svip: Handler;
}

function eurekaScope(
  scope: FastifyInstance,
  h: EurekaHandlers,
  log: Logger,
  count: (operation: string, code: number) => void,
): void {
  const route = (
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    urls: readonly string[],
    operation: string,
    handler: Handler,
  ): void => {
    const reads = method === 'GET';
    for (const url of urls) {
      scope.route({
        method,
        url,
        handler: async (req, reply) => {
          // Writes answer no body (but errors): renewals, the hot path, skip the negotiation.
          const format = reads ? negotiateFormat(req.headers.accept) : undefined;
          let answer: Answer;
          try {
            answer = await handler(req, format ?? 'json');
          } catch (err) {
            const e = toEurekaError(err, format ?? negotiateFormat(req.headers.accept));
            if (logsAsError(err, e.status))
              log.error({ err, method: req.method, url: req.url }, 'request failed');
            else
              log.debug({ method: req.method, url: req.url, status: e.status }, 'request refused');
            count(operation, e.status);
            return reply.status(e.status).header('content-type', e.contentType).send(e.body);
          }
          count(operation, answer.status);
          return send(reply, answer, format ?? 'json', req.headers['accept-encoding']);
        },
      });
    }
  };
  route('POST', ['/apps/:app', '/apps/:app/'], 'register', h.register);
  route('PUT', ['/apps/:app/:id'], 'renew', h.renew);
  route('DELETE', ['/apps/:app/:id'], 'cancel', h.cancel);
  route('PUT', ['/apps/:app/:id/status'], 'status', h.putStatus);
  route('DELETE', ['/apps/:app/:id/status'], 'status', h.deleteStatus);
  route('PUT', ['/apps/:app/:id/metadata'], 'metadata', h.putMetadata);
  route('GET', ['/apps', '/apps/'], 'apps', h.apps);
  route('GET', ['/apps/delta', '/apps/delta/'], 'delta', h.delta);
  route('GET', ['/apps/:app', '/apps/:app/'], 'app', h.app);
  route('GET', ['/apps/:app/:id', '/apps/:app/:id/'], 'instance', h.appInstance);
  route('GET', ['/instances/:id', '/instances/:id/'], 'instance', h.instance);
  route('GET', ['/vips/:vip', '/vips/:vip/'], 'vip', h.vip);
  route('GET', ['/svips/:svip', '/svips/:svip/'], 'svip', h.svip);
}

async function send(
  reply: FastifyReply,
  answer: Answer,
  format: EurekaFormat,
  acceptEncoding: string | undefined,
): Promise<FastifyReply> {
  void reply.status(answer.status);
  if (answer.body === undefined) return reply.send();
  void reply.header('content-type', contentTypeOf(format));
  if (answer.gzip === undefined) return reply.send(answer.body);
  void reply.header('vary', 'accept-encoding');
  // gzip where the client accepts it (and prefers it or does not mind), else as it is.
  if (acceptEncoding === undefined || negotiate(acceptEncoding, ENCODINGS) !== 'gzip')
    return reply.send(answer.body);
  return reply.header('content-encoding', 'gzip').send(await answer.gzip());
}

/** The encodings of a whole-registry answer, by preference. */
const ENCODINGS = ['gzip', 'identity'];

/** The Eureka routes' handlers, shared by both prefixes. */
function createEurekaHandlers(
  options: EurekaRoutesOptions,
  delta: EurekaDeltaQueue,
  cancelledHere: Set<string>,
  viewOf: InstanceViewer,
): EurekaHandlers {
  const { registry, leases } = options;
  const clock = options.clock ?? systemClock;
  const cacheMs = options.responseCacheMs ?? DEFAULT_RESPONSE_CACHE_MS;
  const responses = new Map<string, CachedAnswer>();
  /**
   * The 200 answer `build` makes, reused for `key` while the index holds (at most `cacheMs`),
   * with its gzipped form made on first demand and kept with it.
   */
  const cached = (key: string, build: () => string): Answer => {
    const index = registry.index;
    const now = clock.now();
    let entry = responses.get(key);
    if (entry === undefined || entry.index !== index || now - entry.at >= cacheMs) {
      entry = { index, at: now, body: build(), gzipped: undefined };
      if (cacheMs > 0) responses.set(key, entry);
    }
    const e = entry;
    return { status: 200, body: e.body, gzip: () => (e.gzipped ??= gzipAsync(e.body)) };
  };
  const viewContext = (): EurekaViewContext => ({
    agentMaintenance: registry.agentMaintenance?.enabled === true,
    ...(leases === undefined ? {} : { lastRenewal: (id: string) => leases.lastRenewal(id) }),
  });
  const lookup = (id: string): InstanceDto | undefined => registry.instance(id);
  const found = (req: FastifyRequest): InstanceDto => {
    const i = findEurekaInstance(lookup, param(req, 'app'), param(req, 'id'));
    if (i === undefined) throw notFound(`instance ${param(req, 'app')}/${param(req, 'id')}`);
    return i;
  };
  const statusQuery = (req: FastifyRequest, name: string): EurekaStatus | undefined => {
    const v = queryString(req, name);
    if (v === undefined || v === '') return undefined;
    if (!isEurekaStatus(v))
      throw badQuery(name, `"${v}" is not one of UP, DOWN, STARTING, OUT_OF_SERVICE, UNKNOWN`);
    return v;
  };
  /** Re-registers `dto` with `edit` applied to its meta. */
  const rewriteMeta = async (
    dto: InstanceDto,
    edit: (meta: Record<string, string>) => void,
  ): Promise<void> => {
    const def = registry.instanceDefinition(dto.id);
    if (def === undefined) throw notFound(`instance ${dto.id}`);
    const meta = { ...def.meta };
    edit(meta);
    await registry.register(registrationOfInstance(def, meta), {
      source: def.source,
      managedBy: def.managedBy,
    });
  };
  /** Edits the meta of an instance registered through Eureka (others keep theirs). */
  const rewriteMetaIfEureka = async (
    dto: InstanceDto,
    edit: (meta: Record<string, string>) => void,
  ): Promise<void> => {
    if (!isEurekaInstance(dto)) return;
    const before = JSON.stringify(dto.meta);
    const meta = { ...dto.meta };
    edit(meta);
    if (JSON.stringify(meta) !== before) await rewriteMeta(dto, edit);
  };
  const hasLease = (dto: Pick<InstanceDto, 'checks'> | Instance): boolean =>
    dto.checks.some((c) => c.id === EUREKA_LEASE_CHECK_ID);
  const views = (instances: readonly InstanceDto[]): EurekaInstanceView[] => {
    const ctx = viewContext();
    return instances.map((d) => viewOf(d, ctx));
  };
  const vipHandler =
    (key: 'vipAddress' | 'secureVipAddress', name: string): Handler =>
    async (req, format) => {
      const vip = param(req, name);
      const r = registryView(
        registry.allInstances(),
        viewContext(),
        registry.index,
        (v) => vipListHas(v[key], vip),
        viewOf,
      );
      if (r.applications.length === 0) throw notFound(`${name} ${vip}`);
      return { status: 200, body: renderApplications(r, format) };
    };

  return {
    register: async (req) => {
      const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const format = bodyFormat(req.headers['content-type'], raw);
      const input = parseInstanceBody(raw, format);
      const r = registrationFromEureka(input, param(req, 'app'), registry.limits.checkFloors.ttlMs);
      // An override set through the API survives the client's re-registration (a restart, or
      // the re-registration a 404 renewal triggers), as Eureka keeps overrides server-side.
      const kept = registry.instance(r.registration.id ?? '')?.meta[EUREKA_META.overriddenStatus];
      const override =
        input.overriddenStatus === 'UNKNOWN' && kept !== undefined && isEurekaStatus(kept)
          ? kept
          : undefined;
      const registration =
        override === undefined
          ? r.registration
          : {
              ...r.registration,
              meta: { ...r.registration.meta, [EUREKA_META.overriddenStatus]: override },
            };
      const status = override === undefined ? r.status : effectiveStatus(input.status, override);
      const { instance } = await registry.register(registration, { source: 'self' });
      await registry.heartbeat(
        instance.id,
        leaseCheckStatus(status),
        renewalOutput(status),
        EUREKA_LEASE_CHECK_ID,
      );
      // Likewise an OUT_OF_SERVICE override (maintenance) is not lifted by a re-registration.
      if (r.outOfService && !instance.maintenance.enabled)
        await registry.setMaintenance(instance.id, true, EUREKA_OVERRIDE_REASON);
      leases?.registered(r.service, instance.id, r.lease);
      return { status: 204 };
    },

    // The hot path: one lookup and one heartbeat, no scan.
    renew: async (req) => {
      const reported = statusQuery(req, 'status');
      statusQuery(req, 'overriddenstatus');
      // The stored definition: reading it copies nothing (an InstanceDto is built per read).
      const dto = findEurekaInstance(
        (id) => registry.instanceDefinition(id),
        param(req, 'app'),
        param(req, 'id'),
      );
      if (dto === undefined || !hasLease(dto))
        throw notFound(`instance ${param(req, 'app')}/${param(req, 'id')}`);
      const meta = dto.meta;
      const registered = meta[EUREKA_META.status];
      const override = meta[EUREKA_META.overriddenStatus];
      const status = effectiveStatus(
        reported ?? (registered !== undefined && isEurekaStatus(registered) ? registered : 'UP'),
        override !== undefined && isEurekaStatus(override) ? override : 'UNKNOWN',
      );
      await registry.heartbeat(
        dto.id,
        leaseCheckStatus(status),
        renewalOutput(status),
        EUREKA_LEASE_CHECK_ID,
      );
      leases?.renewed(dto.service, dto.id);
      return { status: 200 };
    },

    cancel: async (req) => {
      const dto = found(req);
      // Marked before the deregistration: the change feed may tell of it before it returns.
      if (leases !== undefined) cancelledHere.add(dto.id);
      let deleted = false;
      try {
        deleted = (await registry.deregister(dto.id)).deleted;
      } finally {
        if (!deleted) cancelledHere.delete(dto.id);
      }
      if (!deleted) throw notFound(`instance ${param(req, 'app')}/${param(req, 'id')}`);
      leases?.cancelled(dto.service, dto.id);
      return { status: 200 };
    },

    putStatus: async (req) => {
      const value = statusQuery(req, 'value');
      if (value === undefined)
        throw badQuery('value', 'is required (a status: UP, OUT_OF_SERVICE...)');
      const dto = found(req);
      await rewriteMetaIfEureka(dto, (meta) => {
        if (value === 'UNKNOWN' || value === 'OUT_OF_SERVICE' || value === 'UP')
          delete meta[EUREKA_META.overriddenStatus];
        else meta[EUREKA_META.overriddenStatus] = value;
      });
      const out = value === 'OUT_OF_SERVICE';
      await registry.setMaintenance(dto.id, out, out ? EUREKA_OVERRIDE_REASON : '');
      if (hasLease(dto) && value !== 'OUT_OF_SERVICE' && value !== 'UNKNOWN') {
        const registered = dto.meta[EUREKA_META.status];
        const status = effectiveStatus(
          registered !== undefined && isEurekaStatus(registered) ? registered : 'UP',
          value,
        );
        await registry.heartbeat(
          dto.id,
          leaseCheckStatus(status),
          renewalOutput(status),
          EUREKA_LEASE_CHECK_ID,
        );
      }
      return { status: 200 };
    },

    deleteStatus: async (req) => {
      const dto = found(req);
      statusQuery(req, 'value');
      await rewriteMetaIfEureka(dto, (meta) => delete meta[EUREKA_META.overriddenStatus]);
      if (dto.maintenance.enabled) await registry.setMaintenance(dto.id, false, '');
      return { status: 200 };
    },

    putMetadata: async (req) => {
      const dto = found(req);
      const q = (req.query ?? {}) as Query;
      const updates: Record<string, string> = {};
      for (const [k, v] of Object.entries(q)) {
        const value = Array.isArray(v) ? v[v.length - 1] : v;
        if (value === undefined) continue;
        if (k.startsWith(EUREKA_META_PREFIX))
          throw badQuery(
            k,
            `metadata keys starting with "${EUREKA_META_PREFIX}" are Meshwork's own`,
          );
        updates[k] = value;
      }
      if (Object.keys(updates).length === 0)
        throw badQuery('query', 'give the metadata to set as key=value query parameters');
      await rewriteMeta(dto, (meta) => {
        const metadata = { ...metaToMetadata(meta), ...updates };
        for (const k of Object.keys(meta)) if (!k.startsWith(EUREKA_META_PREFIX)) delete meta[k];
        delete meta[EUREKA_META.metadata];
        metadataToMeta(metadata, meta);
      });
      return { status: 200 };
    },

    apps: async (_req, format) =>
      cached(`apps ${format} ${String(registry.agentMaintenance?.enabled === true)}`, () =>
        renderApplications(
          registryView(registry.allInstances(), viewContext(), registry.index, undefined, viewOf),
          format,
        ),
      ),

    delta: async (_req, format) =>
      cached(`delta ${format} ${String(registry.agentMaintenance?.enabled === true)}`, () => {
        const ctx = viewContext();
        const changed = delta.recent().map((c) => instanceView(c.instance, ctx, c.action));
        return renderApplications(
          {
            versionsDelta: registry.index,
            // The FULL registry's hash, so a client that applied the delta can check its copy.
            appsHashCode: appsHashCode(
              registry.allInstances().map((d) => eurekaStatusOf(d, ctx.agentMaintenance)),
            ),
            applications: applicationsOf(changed),
          },
          format,
        );
      }),

    app: async (req, format) => {
      const service = serviceOfApp(param(req, 'app'));
      const instances = service === undefined ? [] : registry.serviceInstances(service);
      if (instances.length === 0 || service === undefined)
        throw notFound(`application ${param(req, 'app')}`);
      return {
        status: 200,
        body: renderApplication(
          { name: service.toUpperCase(), instances: views(instances) },
          format,
        ),
      };
    },

    appInstance: async (req, format) => ({
      status: 200,
      body: renderInstance(viewOf(found(req), viewContext()), format),
    }),

    instance: async (req, format) => {
      const id = param(req, 'id');
      const dto = registry.allInstances().find((i) => eurekaIdOf(i) === id);
      if (dto === undefined) throw notFound(`instance ${id}`);
      return { status: 200, body: renderInstance(viewOf(dto, viewContext()), format) };
    },

    vip: vipHandler('vipAddress', 'vip'),
    svip: vipHandler('secureVipAddress', 'svip'),
  };
}
