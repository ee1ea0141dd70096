/**
 * @module The Consul-compatible HTTP API under /v1: an adapter over the same catalog as the
 * native API (shared/docs/consul-api.md is the wire spec; docs/consul-compatibility.md lists
 * what differs). Errors are plain text with Consul's status codes, mapped in one place.
 */
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Counter, type Registry as PromRegistry } from 'prom-client';
import { ERROR_CODES, isMeshError } from '../../core/errors.js';
import { silentLogger, type Logger } from '../../core/logger.js';
import type { CheckDefinition, CheckStatus, KvEntry } from '../../core/types.js';
import type { InstanceDto } from '../../protocol/api-types.js';
import type { ParsedRegistration } from '../../protocol/registration.js';
import { LIMITS } from '../../protocol/limits.js';
import type { Registry } from '../../registry/registry.js';
import { serviceTopic, type Topic } from '../../registry/watch/watch-hub.js';
import { assertUtf8, rawBody } from '../body.js';
import { logsAsError, toHttpError } from '../error-mapping.js';
import { jsonArrayAnswer, kvEntryPieces, kvJsonBytes } from '../json-stream.js';
import { filterKey, waitForRequest, type Query } from '../query.js';
import {
  CATALOG_DEREGISTER_SPEC,
  CATALOG_REGISTER_SPEC,
  CHECK_SPEC,
  CHECK_UPDATE_SPEC,
  normaliseBody,
  parseJsonBody,
  SERVICE_SPEC,
  type BodySpec,
  type NormalisedBody,
} from './consul-body.js';
import { compileConsulFilter, type ConsulFilter } from './consul-filter.js';
import {
  agentService,
  aggregatedStatus,
  checkDefinitions,
  checkFromConsul,
  checkInputOf,
  consulNode,
  findCheck,
  META_REGISTERED,
  NODE_MAINTENANCE_DEFAULT,
  nodeChecks,
  nodeId,
  nodeService,
  refuse,
  registrationFromConsul,
  SERVICE_MAINTENANCE_DEFAULT,
  serviceChecks,
  serviceNode,
  type ConsulCheckPolicy,
  type ConsulNodeInfo,
} from './consul-mapping.js';
import {
  checkDatacenter,
  checkReadOptions,
  every,
  first,
  fromBrowser,
  parseBoolParam,
  parseConsulBlocking,
  parseEnable,
  readToken,
} from './consul-query.js';

export interface ConsulRoutesOptions {
  readonly registry: Registry;
  readonly node: ConsulNodeInfo;
  /**
   * Accept GET on the write endpoints python-consul 0.7 calls with GET (deregister, check
   * pass/warn/fail, join, force-leave), as Consul did before 1.0. Browser requests are refused.
   */
  readonly legacyVerbs: boolean;
  /** Version reported by /v1/agent/self (Meshwork's). */
  readonly version: string;
  readonly logger?: Logger;
  /** Where the adapter's metrics are registered (omitted: kept unregistered). */
  readonly metrics?: PromRegistry;
}

/** The Consul API version whose shapes the adapter answers (agent/self Config.Version). */
export const CONSUL_API_VERSION = '1.17.0';

type Method = 'GET' | 'PUT' | 'POST' | 'DELETE';
const METHODS: readonly Method[] = ['GET', 'PUT', 'POST', 'DELETE'];
type Handler = (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

/** Maps any error to Consul's status and plain-text body. The one place this happens for /v1. */
export function toConsulError(err: unknown): { status: number; text: string } {
  if (isMeshError(err, ERROR_CODES.CONSUL_REQUEST)) {
    const status = err.details?.status;
    return { status: typeof status === 'number' ? status : 400, text: err.message };
  }
  const { status, body } = toHttpError(err);
  return { status, text: body.error.message };
}

/** Sends `err` as Consul does: its status, a plain-text message. */
export function sendConsulError(reply: FastifyReply, err: unknown): void {
  const { status, text } = toConsulError(err);
  void reply.status(status).header('content-type', 'text/plain; charset=utf-8').send(text);
}

/** Registers the /v1 routes (a fastify plugin scope of their own: plain-text errors). */
export function registerConsulRoutes(app: FastifyInstance, options: ConsulRoutesOptions): void {
  void app.register(
    async (scope) => {
      consulScope(scope, options);
    },
    { prefix: '/v1' },
  );
}

function consulScope(scope: FastifyInstance, options: ConsulRoutesOptions): void {
  const { registry, node } = options;
  const log = (options.logger ?? silentLogger).child({ component: 'consul-api' });
  const view = registry.view;
  const raisedDurations = new Counter({
    name: 'meshwork_consul_check_floor_raises_total',
    help: 'Check durations sent below their floor through /v1 and raised to it, by Consul field.',
    labelNames: ['field'],
    registers: options.metrics === undefined ? [] : [options.metrics],
  });
  /** Consul raises short check durations with a warning; so does the adapter (docs/health.md). */
  const policy: ConsulCheckPolicy = {
    floors: registry.limits.checkFloors,
    maxChecks: registry.limits.maxChecksPerInstance,
    onRaised: (field, fromMs, toMs) => {
      raisedDurations.inc({ field });
      log.warn({ field, fromMs, toMs }, 'check duration below its floor raised to it');
    },
  };

  scope.setErrorHandler((err, req, reply) => {
    const { status } = toConsulError(err);
    if (logsAsError(err, status))
      log.error({ err, method: req.method, url: req.url }, 'request failed');
    else log.debug({ method: req.method, url: req.url, status }, 'request refused');
    sendConsulError(reply, err);
  });
  scope.setNotFoundHandler((_req, reply) => {
    void reply
      .status(404)
      .header('content-type', 'text/plain; charset=utf-8')
      .send('Invalid URL path: not a recognized HTTP API endpoint\n');
  });
  // A callback hook, not an async one: no promise and microtask per request on the hot path.
  scope.addHook('onRequest', (req, _reply, done) => {
    // ACLs are not enforced yet (docs/consul-compatibility.md); tokens are accepted and ignored.
    if (readToken(req.query as Query, req.headers) !== '')
      log.debug({ url: req.url }, 'token ignored');
    done();
  });

  /** Handlers by path and method; registered together at the end (see `registerAll`). */
  const table = new Map<string, { handlers: Partial<Record<Method, Handler>>; legacy: boolean }>();

  /**
   * Adds `handler` for `methods` on `path`. `legacy`: the PUT handler also answers GET when
   * legacyVerbs is on (python-consul 0.7), but never to a browser.
   */
  const route = (
    methods: readonly Method[],
    path: string,
    handler: Handler,
    legacy = false,
  ): void => {
    const entry = table.get(path) ?? { handlers: {}, legacy: false };
    for (const m of methods) entry.handlers[m] = handler;
    entry.legacy ||= legacy;
    table.set(path, entry);
  };

  /** Registers every path: its handlers, 405 with Allow for the other methods, and OPTIONS. */
  const registerAll = (): void => {
    for (const [path, { handlers, legacy }] of table) {
      const methods = METHODS.filter((m) => handlers[m] !== undefined);
      const allow = `OPTIONS,${methods.join(',')}`;
      const put = handlers.PUT;
      for (const m of METHODS) {
        let handler = handlers[m];
        if (handler === undefined && m === 'GET' && legacy && options.legacyVerbs && put) {
          handler = async (req, reply) => {
            if (fromBrowser(req.headers))
              throw refuse(
                'GET on a write endpoint is refused for browser requests (Origin or Sec-Fetch-Site present): use PUT',
                403,
              );
            return put(req, reply);
          };
        }
        scope.route({
          method: m,
          url: path,
          handler:
            handler ??
            (async (_req, reply) =>
              reply
                .status(405)
                .header('allow', allow)
                .header('content-type', 'text/plain; charset=utf-8')
                .send(`method ${m} not allowed`)),
        });
      }
      scope.route({
        method: 'OPTIONS',
        url: path,
        handler: async (_req, reply) => reply.status(200).header('allow', allow).send(),
      });
    }
  };

  // ---- answers ---------------------------------------------------------------------------

  const q = (req: FastifyRequest): Query => req.query as Query;

  const consistency = (query: Query): string =>
    'stale' in query ? 'stale' : 'consistent' in query ? 'consistent' : 'leader';

  /** A JSON answer; `index` sets X-Consul-Index and the other query meta headers. */
  const json = (
    req: FastifyRequest,
    reply: FastifyReply,
    body: unknown,
    index?: number,
    status = 200,
  ): FastifyReply => {
    if (index !== undefined) meta(req, reply, index);
    const query = q(req);
    const text =
      Buffer.isBuffer(body) || body instanceof Readable
        ? body
        : 'pretty' in query
          ? JSON.stringify(body, null, 4)
          : JSON.stringify(body);
    return reply.status(status).header('content-type', 'application/json').send(text);
  };

  /**
   * A JSON array answer, streamed when large (a KV listing can reach the KV quota): each item as
   * `encode` writes it, or with `?pretty` as JSON.stringify(items.map(toJson), null, 4) would.
   */
  const jsonArray = <T>(
    req: FastifyRequest,
    reply: FastifyReply,
    items: readonly T[],
    how: {
      encode: (item: T) => string | Iterable<string>;
      toJson: (item: T) => unknown;
      estimateBytes: (item: T) => number;
    },
    index: number,
  ): FastifyReply => {
    const pretty = 'pretty' in q(req) && items.length > 0;
    const shape = pretty
      ? {
          head: '[\n    ',
          tail: '\n]',
          separator: ',\n    ',
          encode: (i: T) => JSON.stringify(how.toJson(i), null, 4).replaceAll('\n', '\n    '),
        }
      : { head: '[', tail: ']', encode: how.encode };
    const body = jsonArrayAnswer(items, shape, how.estimateBytes);
    return json(req, reply, typeof body === 'string' ? Buffer.from(body) : body, index);
  };

  const meta = (req: FastifyRequest, reply: FastifyReply, index: number): void => {
    void reply
      .header('x-consul-index', String(Math.max(index, 1)))
      .header('x-consul-knownleader', 'true')
      .header('x-consul-lastcontact', '0')
      .header('x-consul-effective-consistency', consistency(q(req)));
  };

  /** A void agent operation: 200, empty body. */
  const done = (reply: FastifyReply): FastifyReply => reply.status(200).send();

  /** Validates read options, then blocks while `currentIndex()` has not passed `?index=`. */
  const blocking = (req: FastifyRequest, topic: Topic, currentIndex: () => number) => {
    const query = q(req);
    checkReadOptions(query, node.datacenter);
    return waitForRequest(registry, req, topic, parseConsulBlocking(query), currentIndex);
  };

  const filterOf = (req: FastifyRequest): ConsulFilter | undefined => {
    const f = first(q(req).filter);
    if (f === undefined || f === '') return undefined;
    try {
      return compileConsulFilter(f);
    } catch (err) {
      const reason = isMeshError(err, ERROR_CODES.VALIDATION) ? err.details?.reason : undefined;
      if (typeof reason === 'string') throw refuse(reason);
      throw err;
    }
  };

  const decode = (req: FastifyRequest, spec: BodySpec, whenEmpty?: unknown): NormalisedBody => {
    // Consul reads any Content-Type as JSON; a charset other than UTF-8 would be misread.
    assertUtf8(req.headers['content-type']);
    try {
      return normaliseBody(parseJsonBody(rawBody(req), whenEmpty), spec);
    } catch (err) {
      if (isMeshError(err, ERROR_CODES.VALIDATION))
        throw refuse(`Request decode failed: ${err.message}`);
      throw err;
    }
  };

  const param = (req: FastifyRequest, name: string): string =>
    (req.params as Record<string, string>)[name] ?? '';

  /** Whether this node matches every `?node-meta=key:value` (one node: all or nothing). */
  const nodeMetaMatches = (req: FastifyRequest): boolean => {
    const meta = consulNode(node).Meta as Record<string, string>;
    return every(q(req)['node-meta']).every((kv) => {
      const at = kv.indexOf(':');
      const [k, v] = at < 0 ? [kv, ''] : [kv.slice(0, at), kv.slice(at + 1)];
      return meta[k] === v;
    });
  };

  /**
   * Instances with every tag of `?tag=` (case-insensitive, as Consul's serviceTagsFilter), none
   * when `?node-meta=` does not match this node.
   */
  const withTags = (req: FastifyRequest, instances: InstanceDto[]): InstanceDto[] => {
    if (!nodeMetaMatches(req)) return [];
    const tags = every(q(req).tag).map((t) => t.toLowerCase());
    if (tags.length === 0) return instances;
    return instances.filter((i) => tags.every((t) => i.tags.some((x) => x.toLowerCase() === t)));
  };

  const isOurNode = (name: string): boolean => name === node.nodeName;

  /** This node's checks as Consul shows them: serfHealth, registered node checks, maintenance. */
  const ourNodeChecks = (): Record<string, unknown>[] =>
    nodeChecks(node, view.agentMaintenance, view.nodeChecks());

  // Serialised health/service answers per query while the service's index holds: the hot read of
  // Consul clients, and the one the benchmark compares with the native endpoint.
  // Kept as bytes, as the native list cache is (re-encoding a string on every hit costs).
  const healthCache = new Map<string, { index: number; body: Buffer }>();

  /** Refuses a registration whose CheckIDs are this node's checks' (CheckIDs are per agent). */
  const ownCheckIds = (reg: ParsedRegistration): ParsedRegistration => {
    const taken = view.nodeChecks()?.checks ?? [];
    const clash = (reg.checks ?? []).find((c) => taken.some((t) => t.id === c.id));
    if (clash !== undefined)
      throw refuse(
        `Invalid check: CheckID "${String(clash.id)}" is already a check of the node: deregister it first`,
      );
    return reg;
  };

  // ---- agent -----------------------------------------------------------------------------

  const member = (): Record<string, unknown> => ({
    Name: node.nodeName,
    Addr: node.address,
    Port: 8301,
    Tags: {
      dc: node.datacenter,
      role: 'consul',
      port: '8300',
      build: `${CONSUL_API_VERSION}:meshwork-${options.version}`,
      vsn: '2',
      vsn_min: '2',
      vsn_max: '3',
      id: nodeId(node.nodeName),
    },
    Status: 1,
    ProtocolMin: 1,
    ProtocolMax: 5,
    ProtocolCur: 2,
    DelegateMin: 2,
    DelegateMax: 5,
    DelegateCur: 4,
  });

  route(['GET'], '/agent/self', async (req, reply) =>
    json(req, reply, {
      Config: {
        Datacenter: node.datacenter,
        PrimaryDatacenter: node.datacenter,
        NodeName: node.nodeName,
        NodeID: nodeId(node.nodeName),
        Revision: `meshwork-${options.version}`,
        Server: true,
        Version: CONSUL_API_VERSION,
        BuildDate: '',
      },
      DebugConfig: {},
      Coord: null,
      Member: member(),
      Stats: { meshwork: { version: options.version, store: registry.storeKind } },
      Meta: { 'consul-network-segment': '' },
    }),
  );

  route(['GET'], '/agent/members', async (req, reply) => json(req, reply, [member()]));

  route(['GET'], '/agent/services', async (req, reply) => {
    const keep = filterOf(req);
    const out: Record<string, unknown> = {};
    for (const i of view.allInstances()) {
      const s = agentService(node, i);
      if (keep === undefined || keep(s)) out[i.id] = s;
    }
    return json(req, reply, out, view.catalogIndex);
  });

  route(['GET'], '/agent/service/:id', async (req, reply) => {
    const id = param(req, 'id');
    const dto = view.dto(id);
    if (dto === undefined) throw refuse(`unknown service ID: ${id}`, 404);
    return json(req, reply, agentService(node, dto), dto.modifyIndex);
  });

  route(['GET'], '/agent/checks', async (req, reply) => {
    const keep = filterOf(req);
    const out: Record<string, unknown> = {};
    const all = [
      ...ourNodeChecks().filter((c) => c.CheckID !== 'serfHealth'),
      ...view.allInstances().flatMap((i) => serviceChecks(node, i)),
    ];
    for (const c of all) if (keep === undefined || keep(c)) out[String(c.CheckID)] = c;
    return json(req, reply, out, view.catalogIndex);
  });

  route(['PUT'], '/agent/service/register', async (req, reply) => {
    const body = decode(req, SERVICE_SPEC);
    const reg = ownCheckIds(registrationFromConsul(body, node, policy));
    const prev = view.get(reg.id ?? '');
    const ids = new Set((reg.checks ?? []).map((c) => c.id));
    // Consul keeps checks registered earlier unless told to replace them.
    const kept =
      prev === undefined || 'replace-existing-checks' in q(req) || prev.service !== reg.service
        ? []
        : prev.checks.filter((c) => !ids.has(c.id)).map((c) => checkInputOf(c, policy.floors));
    // Consul replaces a service whose ID moves to another name; the catalog refuses the move.
    if (prev !== undefined && prev.service !== reg.service) await registry.deregister(prev.id);
    await registry.register({ ...reg, checks: [...(reg.checks ?? []), ...kept] });
    return done(reply);
  });

  route(
    ['PUT'],
    '/agent/service/deregister/:id',
    async (req, reply) => {
      const id = param(req, 'id');
      const r = await registry.deregister(id);
      if (!r.deleted) throw unknownService(id);
      return done(reply);
    },
    true,
  );

  route(['PUT'], '/agent/service/maintenance/:id', async (req, reply) => {
    const id = param(req, 'id');
    const enable = parseEnable(q(req));
    if (view.get(id) === undefined) throw unknownService(id);
    const reason = first(q(req).reason) ?? '';
    await registry.setMaintenance(id, enable, reason || SERVICE_MAINTENANCE_DEFAULT);
    return done(reply);
  });

  route(['PUT'], '/agent/maintenance', async (req, reply) => {
    const enable = parseEnable(q(req));
    const reason = first(q(req).reason) ?? '';
    await registry.setAgentMaintenance(enable, reason || NODE_MAINTENANCE_DEFAULT);
    return done(reply);
  });

  /** Adds `def`, or replaces the check with its id, keeping at most `policy.maxChecks`. */
  const withCheck =
    (def: CheckDefinition, owner: string) =>
    (checks: readonly CheckDefinition[]): CheckDefinition[] => {
      if (checks.length >= policy.maxChecks && !checks.some((c) => c.id === def.id))
        throw refuse(`Invalid check: at most ${policy.maxChecks} checks per ${owner}`);
      return [...checks.filter((c) => c.id !== def.id), def];
    };

  /**
   * Validates one Consul check body and answers the write that registers it: on the service
   * `ServiceID` names, or on the node when there is none (a node-level check applies to every
   * service of this node). Validating first lets a request of several checks refuse all or none.
   */
  const prepareCheck = (body: NormalisedBody): (() => Promise<void>) => {
    const name = body.Name as string | undefined;
    if (name === undefined || name === '') throw refuse('Missing check name');
    const checkId = (body.CheckID as string | undefined) || name;
    const serviceId = body.ServiceID as string | undefined;
    const target = serviceId ? view.get(serviceId) : undefined;
    if (serviceId && target === undefined)
      throw refuse(`ServiceID "${serviceId}" does not exist`, 404);
    const input = checkFromConsul(
      { ...body, CheckID: checkId },
      { serviceId: serviceId ?? '', serviceName: target?.service ?? '', policy },
    );
    const [def] = checkDefinitions([input], policy.floors);
    if (def === undefined) throw refuse('Invalid check');
    // CheckIDs are unique on the agent; Consul would move the check, Meshwork asks to deregister.
    const other = findCheckById(checkId);
    const otherOwner = other === undefined ? undefined : (other.instance?.id ?? '');
    if (otherOwner !== undefined && otherOwner !== (target?.id ?? ''))
      throw refuse(
        `Invalid check: CheckID "${checkId}" is already a check of ${otherOwner === '' ? 'the node' : `service "${otherOwner}"`}: deregister it first`,
      );
    return async () => {
      if (target === undefined) await registry.updateNodeChecks(withCheck(def, 'node'));
      else await registry.updateChecks(target.id, withCheck(def, 'service'));
    };
  };

  route(['PUT'], '/agent/check/register', async (req, reply) => {
    await prepareCheck(decode(req, CHECK_SPEC))();
    return done(reply);
  });

  /**
   * The check behind a Consul CheckID: a node check (no `instance`) or a service's check. Node
   * checks are looked up first: registration keeps CheckIDs unique.
   */
  const findCheckById = (
    checkId: string,
  ): { instance?: InstanceDto; check: InstanceDto['checks'][number] } | undefined => {
    const nodeCheck = view.nodeChecks()?.checks.find((c) => c.id === checkId);
    if (nodeCheck !== undefined) return { check: nodeCheck };
    const m = /^service:(.+?)(?::\d+)?$/.exec(checkId);
    const direct = m?.[1] === undefined ? undefined : view.dto(m[1]);
    return (
      (direct === undefined ? undefined : findCheck([direct], checkId)) ??
      findCheck(
        view
          .instancesWhere(
            (i) => i.meta[META_REGISTERED] === 'true' && i.checks.some((c) => c.id === checkId),
          )
          .flatMap((i) => view.dto(i.id) ?? []),
        checkId,
      )
    );
  };

  /** {@link findCheckById}, or Consul's 404. */
  const checkById = (checkId: string) => {
    const found = findCheckById(checkId);
    if (found === undefined)
      throw refuse(
        `Unknown check ID "${checkId}". Ensure that the check ID is passed, not the check name.`,
        404,
      );
    return found;
  };

  /** Removes the check behind a Consul CheckID (404 when there is none). */
  const deregisterCheck = async (checkId: string): Promise<void> => {
    const { instance, check } = checkById(checkId);
    const without = (checks: readonly CheckDefinition[]) => checks.filter((c) => c.id !== check.id);
    if (instance === undefined) await registry.updateNodeChecks(without);
    else await registry.updateChecks(instance.id, without);
  };

  route(
    ['PUT'],
    '/agent/check/deregister/:id',
    async (req, reply) => {
      await deregisterCheck(param(req, 'id'));
      return done(reply);
    },
    true,
  );

  const ttlUpdate = async (checkId: string, status: CheckStatus, output: string): Promise<void> => {
    const { instance, check } = checkById(checkId);
    if (check.kind !== 'ttl')
      throw refuse(`CheckID "${checkId}" does not have associated TTL`, 500);
    if (output.length > LIMITS.maxOutputLength)
      throw refuse(`Output must be at most ${LIMITS.maxOutputLength} characters`);
    if (instance === undefined) await registry.heartbeatNodeCheck(check.id, status, output);
    else await registry.heartbeat(instance.id, status, output, check.id);
  };

  for (const [verb, status] of [
    ['pass', 'passing'],
    ['warn', 'warning'],
    ['fail', 'critical'],
  ] as const) {
    route(
      ['PUT'],
      `/agent/check/${verb}/:id`,
      async (req, reply) => {
        await ttlUpdate(param(req, 'id'), status, first(q(req).note) ?? '');
        return done(reply);
      },
      true,
    );
  }

  route(['PUT'], '/agent/check/update/:id', async (req, reply) => {
    const body = decode(req, CHECK_UPDATE_SPEC);
    const status = body.Status as string | undefined;
    if (status !== 'passing' && status !== 'warning' && status !== 'critical')
      throw refuse(`Invalid check status: '${status ?? ''}'`);
    await ttlUpdate(param(req, 'id'), status, (body.Output as string | undefined) ?? '');
    return done(reply);
  });

  /** Consul's agent health answer: 200 passing, 429 warning, 503 critical or maintenance. */
  const healthAnswer = (i: InstanceDto): { status: number; aggregated: string; body: object } => {
    const checks = [...ourNodeChecks(), ...serviceChecks(node, i)];
    const aggregated = aggregatedStatus(checks);
    const status = aggregated === 'passing' ? 200 : aggregated === 'warning' ? 429 : 503;
    return {
      status,
      aggregated,
      body: { AggregatedStatus: aggregated, Service: agentService(node, i), Checks: checks },
    };
  };

  route(['GET'], '/agent/health/service/id/:id', async (req, reply) => {
    const id = param(req, 'id');
    const dto = view.dto(id);
    const text = first(q(req).format) === 'text';
    if (dto === undefined) {
      if (text)
        return reply
          .status(404)
          .header('content-type', 'text/plain')
          .send(`ServiceId ${id} not found`);
      throw refuse(`ServiceId ${id} not found`, 404);
    }
    const a = healthAnswer(dto);
    if (text) return reply.status(a.status).header('content-type', 'text/plain').send(a.aggregated);
    return json(req, reply, a.body, undefined, a.status);
  });

  route(['GET'], '/agent/health/service/name/:name', async (req, reply) => {
    const name = param(req, 'name');
    const answers = view.serviceInstances(name).map(healthAnswer);
    const text = first(q(req).format) === 'text';
    if (answers.length === 0) {
      if (text)
        return reply
          .status(404)
          .header('content-type', 'text/plain')
          .send(`ServiceName ${name} Not Found`);
      throw refuse(`ServiceName ${name} Not Found`, 404);
    }
    // The worst instance decides the status, as in Consul.
    const status = Math.max(...answers.map((a) => (a.status === 200 ? 0 : a.status)));
    const worst = answers.find((a) => a.status === status) ?? answers[0];
    const code = status === 0 ? 200 : status;
    if (text)
      return reply
        .status(code)
        .header('content-type', 'text/plain')
        .send(worst?.aggregated ?? 'passing');
    return json(
      req,
      reply,
      answers.map((a) => a.body),
      undefined,
      code,
    );
  });

  // Membership is one node: these are accepted and change nothing.
  route(['PUT'], '/agent/join/:address', async (_req, reply) => done(reply), true);
  route(['PUT'], '/agent/force-leave/:node', async (_req, reply) => done(reply), true);
  route(['PUT'], '/agent/leave', async (_req, reply) => done(reply));
  route(['PUT'], '/agent/reload', async (_req, reply) => done(reply));
  route(['PUT'], '/agent/token/:type', async () => {
    throw refuse('ACL support disabled', 401);
  });

  // ---- catalog ---------------------------------------------------------------------------

  /** The `Node` of a catalog write: it must be this agent's, in this datacenter. */
  const catalogNode = (body: NormalisedBody): string => {
    checkDatacenter({ dc: body.Datacenter as string | undefined }, node.datacenter);
    const nodeName = body.Node as string | undefined;
    if (nodeName === undefined || nodeName === '') throw refuse('Missing node name');
    if (!isOurNode(nodeName)) throw externalNode(nodeName);
    return nodeName;
  };

  route(['PUT'], '/catalog/register', async (req, reply) => {
    const body = decode(req, CATALOG_REGISTER_SPEC);
    catalogNode(body);
    const service = body.Service as NormalisedBody | undefined;
    const checks = [
      ...(body.Check === undefined ? [] : [body.Check as NormalisedBody]),
      ...((body.Checks as NormalisedBody[] | undefined) ?? []),
    ].map((c) => ({ ...((c.Definition as NormalisedBody | undefined) ?? {}), ...c }));
    if (service === undefined) {
      // The node itself always exists; checks without a service are the node's (or, with a
      // ServiceID, checks of a service already registered), as in Consul.
      for (const write of checks.map(prepareCheck)) await write();
      return json(req, reply, true);
    }
    const reg = ownCheckIds(
      registrationFromConsul(
        {
          ...service,
          Checks: [...((service.Checks as NormalisedBody[] | undefined) ?? []), ...checks],
        },
        node,
        policy,
      ),
    );
    await registry.register(reg);
    return json(req, reply, true);
  });

  route(['PUT'], '/catalog/deregister', async (req, reply) => {
    const body = decode(req, CATALOG_DEREGISTER_SPEC);
    const nodeName = catalogNode(body);
    const serviceId = body.ServiceID as string | undefined;
    const checkId = body.CheckID as string | undefined;
    if (serviceId !== undefined && serviceId !== '') {
      await registry.deregister(serviceId);
    } else if (checkId !== undefined && checkId !== '') {
      await deregisterCheck(checkId);
    } else {
      throw refuse(
        `Deregistering node "${nodeName}" itself is not supported: it is this agent; deregister its services`,
      );
    }
    return json(req, reply, true);
  });

  route(['GET'], '/catalog/datacenters', async (req, reply) => json(req, reply, [node.datacenter]));

  route(['GET'], '/catalog/nodes', async (req, reply) => {
    await blocking(req, 'catalog', () => view.catalogIndex);
    const keep = filterOf(req);
    const nodes = [consulNode(node)].filter(
      (n) => nodeMetaMatches(req) && (keep === undefined || keep(n)),
    );
    return json(req, reply, nodes, view.catalogIndex);
  });

  route(['GET'], '/catalog/node/:node', async (req, reply) => {
    await blocking(req, 'catalog', () => view.catalogIndex);
    if (!isOurNode(param(req, 'node'))) return json(req, reply, null, view.catalogIndex);
    const keep = filterOf(req);
    const services: Record<string, unknown> = {};
    for (const i of view.allInstances()) {
      const s = nodeService(i);
      if (keep === undefined || keep(s)) services[i.id] = s;
    }
    return json(req, reply, { Node: consulNode(node), Services: services }, view.catalogIndex);
  });

  route(['GET'], '/catalog/services', async (req, reply) => {
    await blocking(req, 'catalog', () => view.catalogIndex);
    // A Consul server lists itself as the service "consul"; clients (node-consul's tests) expect it.
    const out: Record<string, string[]> = { consul: [] };
    for (const s of registry.listServices().services) out[s.name] = [...s.tags];
    return json(req, reply, out, view.catalogIndex);
  });

  route(['GET'], '/catalog/service/:name', async (req, reply) => {
    const name = param(req, 'name');
    await blocking(req, serviceTopic(name), () => view.serviceIndex(name));
    const keep = filterOf(req);
    const items = withTags(req, view.serviceInstances(name))
      .map((i) => serviceNode(node, i))
      .filter((s) => keep === undefined || keep(s));
    return json(req, reply, items, view.serviceIndex(name));
  });

  // ---- health ----------------------------------------------------------------------------

  route(['GET'], '/health/service/:name', async (req, reply) => {
    const name = param(req, 'name');
    const query = q(req);
    const passing = parseBoolParam(query, 'passing');
    await blocking(req, serviceTopic(name), () => view.serviceIndex(name));
    const index = view.serviceIndex(name);
    const key = `${name}?${filterKey(query)}`;
    const cached = healthCache.get(key);
    if (cached !== undefined && cached.index === index) return json(req, reply, cached.body, index);
    const keep = filterOf(req);
    const nChecks = ourNodeChecks();
    const nodeObj = consulNode(node);
    const entries = withTags(req, view.serviceInstances(name))
      .map((i) => ({
        Node: nodeObj,
        Service: nodeService(i),
        Checks: [...nChecks, ...serviceChecks(node, i)],
      }))
      .filter(
        (e) =>
          (!passing || e.Checks.every((c) => c.Status === 'passing')) &&
          (keep === undefined || keep(e)),
      );
    const body = Buffer.from(
      'pretty' in query ? JSON.stringify(entries, null, 4) : JSON.stringify(entries),
    );
    if (healthCache.size >= 10_000) healthCache.clear();
    healthCache.set(key, { index, body });
    return json(req, reply, body, index);
  });

  const checksAnswer = (
    req: FastifyRequest,
    reply: FastifyReply,
    checks: Record<string, unknown>[],
    index: number,
  ) => {
    const keep = filterOf(req);
    return json(req, reply, keep === undefined ? checks : checks.filter(keep), index);
  };

  route(['GET'], '/health/checks/:name', async (req, reply) => {
    const name = param(req, 'name');
    await blocking(req, serviceTopic(name), () => view.serviceIndex(name));
    const checks = view.serviceInstances(name).flatMap((i) => serviceChecks(node, i));
    return checksAnswer(req, reply, checks, view.serviceIndex(name));
  });

  route(['GET'], '/health/state/:state', async (req, reply) => {
    const state = param(req, 'state');
    if (state === '') throw refuse('Missing check state');
    if (!['any', 'passing', 'warning', 'critical'].includes(state))
      throw refuse(`Invalid check state "${state}": use any, passing, warning or critical`);
    await blocking(req, 'catalog', () => view.catalogIndex);
    const all = [...ourNodeChecks(), ...view.allInstances().flatMap((i) => serviceChecks(node, i))];
    const checks = state === 'any' ? all : all.filter((c) => c.Status === state);
    return checksAnswer(req, reply, checks, view.catalogIndex);
  });

  route(['GET'], '/health/node/:node', async (req, reply) => {
    await blocking(req, 'catalog', () => view.catalogIndex);
    const checks = isOurNode(param(req, 'node'))
      ? [...ourNodeChecks(), ...view.allInstances().flatMap((i) => serviceChecks(node, i))]
      : [];
    return checksAnswer(req, reply, checks, view.catalogIndex);
  });

  // ---- kv --------------------------------------------------------------------------------

  const kvKey = (req: FastifyRequest): string => param(req, '*');

  route(['GET'], '/kv/*', async (req, reply) => {
    const key = kvKey(req);
    const query = q(req);
    const list = 'recurse' in query || 'keys' in query;
    if (!list && key === '') throw refuse('Missing key name');
    // One key: its ModifyIndex, or the KV index once it is gone (so a delete wakes watchers).
    const current = (): number =>
      list ? view.kvIndex : (view.kvGet(key)?.modifyIndex ?? view.kvIndex);
    await blocking(req, 'kv', current);
    const index = current();
    if ('keys' in query) {
      const sep = first(query.separator) ?? first(query.seperator) ?? '';
      const keys = new Set<string>();
      for (const e of registry.kvList(key)) {
        const at = sep === '' ? -1 : e.key.indexOf(sep, key.length);
        keys.add(at < 0 ? e.key : e.key.slice(0, at + sep.length));
      }
      if (keys.size === 0 && key !== '') return notFound(req, reply, index);
      const sorted = [...keys].sort();
      const asJson = (k: string): string => JSON.stringify(k);
      return jsonArray(
        req,
        reply,
        sorted,
        { encode: asJson, toJson: (k) => k, estimateBytes: (k) => k.length + 3 },
        index,
      );
    }
    const entries =
      'recurse' in query
        ? registry.kvList(key)
        : [registry.kvGet(key)].filter((e) => e !== undefined);
    if (entries.length === 0) return notFound(req, reply, index);
    if ('raw' in query && !('recurse' in query)) {
      meta(req, reply, index);
      return reply
        .status(200)
        .header('content-type', 'text/plain; charset=utf-8')
        .header('x-content-type-options', 'nosniff')
        .header('content-security-policy', 'sandbox')
        .send(Buffer.from((entries[0] as KvEntry).value));
    }
    return jsonArray(
      req,
      reply,
      entries,
      { encode: dirEntryPieces, toJson: dirEntry, estimateBytes: kvJsonBytes },
      index,
    );
  });

  const notFound = (req: FastifyRequest, reply: FastifyReply, index: number): FastifyReply => {
    meta(req, reply, index);
    return reply.status(404).send();
  };

  const uintParam = (query: Query, name: string): number | undefined => {
    const v = first(query[name]);
    if (v === undefined) return undefined;
    if (!/^\d{1,15}$/.test(v))
      throw refuse(`Invalid ${name} value "${v}": must be an unsigned integer`);
    return Number(v);
  };

  route(['PUT'], '/kv/*', async (req, reply) => {
    const key = kvKey(req);
    const query = q(req);
    checkDatacenter(query, node.datacenter);
    if (key === '') throw refuse('Missing key name');
    const flagsGiven = ['cas', 'acquire', 'release'].filter((f) => f in query);
    if (flagsGiven.length > 1) throw refuse(`Conflicting flags: ${req.url.split('?')[1] ?? ''}`);
    if ('acquire' in query || 'release' in query)
      throw refuse('Sessions are not supported by Meshwork: acquire and release cannot be used');
    if (key.length > LIMITS.maxKvKeyLength)
      throw refuse(`Key too long: at most ${LIMITS.maxKvKeyLength} characters`);
    const value = rawBody(req);
    if (value.length > LIMITS.maxKvValueBytes)
      throw refuse(
        `Request body(${value.length} bytes) too large, max size: ${LIMITS.maxKvValueBytes} bytes. Key: "${key}".`,
        413,
      );
    const flags = uintParam(query, 'flags');
    const cas = uintParam(query, 'cas');
    const r = await registry.kvPut(key, value, {
      ...(flags === undefined ? {} : { flags }),
      ...(cas === undefined ? {} : { cas }),
    });
    return json(req, reply, r.ok);
  });

  route(['DELETE'], '/kv/*', async (req, reply) => {
    const key = kvKey(req);
    const query = q(req);
    checkDatacenter(query, node.datacenter);
    const recurse = 'recurse' in query;
    if (!recurse && key === '') throw refuse('Missing key name');
    if (recurse && 'cas' in query)
      throw refuse(`Conflicting flags: ${req.url.split('?')[1] ?? ''}`);
    const cas = uintParam(query, 'cas');
    // Consul: a compare-and-delete of a key that is already gone succeeds.
    if (cas !== undefined && view.kvGet(key) === undefined) return json(req, reply, true);
    const r = await registry.kvDelete(key, {
      recursive: recurse,
      ...(cas === undefined ? {} : { cas }),
    });
    return json(req, reply, r.ok);
  });

  // ---- status ----------------------------------------------------------------------------

  route(['GET'], '/status/leader', async (req, reply) => json(req, reply, `${node.address}:8300`));
  route(['GET'], '/status/peers', async (req, reply) => json(req, reply, [`${node.address}:8300`]));

  registerAll();
}

function unknownService(id: string) {
  return refuse(
    `Unknown service ID "${id}". Ensure that the service ID is passed, not the service name.`,
    404,
  );
}

function externalNode(nodeName: string) {
  return refuse(
    `Node "${nodeName}" is not this agent: Meshwork serves one node per agent, so register services of that node through its own agent`,
  );
}

/** KV entry as Consul's DirEntry: base64 value, null when empty. */
function dirEntry(e: KvEntry): Record<string, unknown> {
  return {
    LockIndex: 0,
    Key: e.key,
    Flags: e.flags,
    Value: e.value.length === 0 ? null : Buffer.from(e.value).toString('base64'),
    CreateIndex: e.createIndex,
    ModifyIndex: e.modifyIndex,
  };
}

/** {@link dirEntry} as JSON pieces, for listings (the value encoded a slice at a time). */
function dirEntryPieces(e: KvEntry): Iterable<string> {
  return kvEntryPieces(
    { LockIndex: 0, Key: e.key, Flags: e.flags },
    'Value',
    e.value.length === 0 ? null : e.value,
    { CreateIndex: e.createIndex, ModifyIndex: e.modifyIndex },
  );
}
