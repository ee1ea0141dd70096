/** @module ConsulContext: what every /v1 endpoint area shares, built once per scope. */
import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Counter, type Registry as PromRegistry } from 'prom-client';
import { ERROR_CODES, isMeshError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { CheckState } from '../../core/types.js';
import type { CheckDto, InstanceDto } from '../../protocol/api-types.js';
import type { ParsedRegistration } from '../../protocol/registration.js';
import type { CatalogFacade, NodeChecksDto, Topic } from '../../registry/catalog-facade.js';
import { assertUtf8, rawBody } from '../body.js';
import { jsonArrayAnswer } from '../json-stream.js';
import { waitForRequest, type Query } from '../query.js';
import { normaliseBody, parseJsonBody, type BodySpec, type NormalisedBody } from './consul-body.js';
import { compileConsulFilter, type ConsulFilter } from './consul-filter.js';
import { refuse } from './consul-refuse.js';
import type { ConsulCheckPolicy } from './consul-registration.js';
import { consulNode, nodeChecks, type ConsulNodeInfo } from './consul-shapes.js';
import { checkReadOptions, every, first, parseConsulBlocking } from './consul-query.js';
import type { ConsulRouter } from './consul-router.js';

/** What {@link createConsulContext} needs. */
export interface ConsulContextOptions {
  readonly registry: CatalogFacade;
  readonly node: ConsulNodeInfo;
  /** Version reported by /v1/agent/self (Meshwork's). */
  readonly version: string;
  /** The adapter's logger (already a `consul-api` child). */
  readonly log: Logger;
  /** Where the adapter's metrics are registered (omitted: kept unregistered). */
  readonly metrics?: PromRegistry;
  readonly router: ConsulRouter;
}

/**
 * The shared context of the /v1 endpoint areas (agent, catalog, health, kv, status): the catalog,
 * this node, the check policy, the router, and the answer helpers (JSON with Consul's query meta,
 * blocking, `?filter=`, body decoding, tag and node-meta filters).
 */
export type ConsulContext = ReturnType<typeof createConsulContext>;

/** Builds the context once per /v1 scope. */
export function createConsulContext(options: ConsulContextOptions) {
  const { registry, node, log } = options;
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

  /** This node's meta: fixed for the scope, so built once rather than per request. */
  const nodeMeta = consulNode(node).Meta as Record<string, string>;

  /** Whether this node matches every `?node-meta=key:value` (one node: all or nothing). */
  const nodeMetaMatches = (req: FastifyRequest): boolean =>
    every(q(req)['node-meta']).every((kv) => {
      const at = kv.indexOf(':');
      const [k, v] = at < 0 ? [kv, ''] : [kv.slice(0, at), kv.slice(at + 1)];
      return nodeMeta[k] === v;
    });

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

  /**
   * `checks` with the outputs this agent holds for them (`local`: CatalogFacade's
   * unwrittenCheckStates), undefined when none is fresher than the stored one. A new output under
   * the same status reaches the store (and the catalog and health endpoints) at most every
   * `checks.updateIntervalMs`; Consul's agent endpoints answer with its local state at once.
   */
  const withLocalOutputs = (
    checks: readonly CheckDto[],
    local: ReadonlyMap<string, CheckState>,
  ): CheckDto[] | undefined => {
    if (local.size === 0) return undefined;
    let fresher = false;
    const out = checks.map((c) => {
      const s = local.get(c.id);
      if (s === undefined || s.status !== c.status || s.output === c.output) return c;
      fresher = true;
      return { ...c, output: s.output };
    });
    return fresher ? out : undefined;
  };

  /** This node's checks as Consul shows them: serfHealth, registered node checks, maintenance. */
  const ourNodeChecks = (): Record<string, unknown>[] =>
    nodeChecks(node, registry.agentMaintenance, registry.nodeChecks());

  /**
   * ourNodeChecks as this agent holds them, for its own endpoints (/v1/agent/...): the
   * registered node checks with their latest outputs (withLocalOutputs).
   */
  const agentNodeChecks = (): Record<string, unknown>[] => {
    const registered = registry.nodeChecks();
    const checks =
      registered && withLocalOutputs(registered.checks, registry.unwrittenNodeCheckStates());
    if (checks === undefined) return ourNodeChecks();
    return nodeChecks(node, registry.agentMaintenance, {
      ...(registered as NodeChecksDto),
      checks,
    });
  };

  /** Refuses a registration whose CheckIDs are this node's checks' (CheckIDs are per agent). */
  const ownCheckIds = (reg: ParsedRegistration): ParsedRegistration => {
    const taken = registry.nodeChecks()?.checks ?? [];
    const clash = (reg.checks ?? []).find((c) => taken.some((t) => t.id === c.id));
    if (clash !== undefined)
      throw refuse(
        `Invalid check: CheckID "${String(clash.id)}" is already a check of the node: deregister it first`,
      );
    return reg;
  };

  return {
    registry,
    node,
    version: options.version,
    log,
    policy,
    route: options.router.route,
    q,
    json,
    jsonArray,
    meta,
    done,
    blocking,
    filterOf,
    decode,
    param,
    nodeMetaMatches,
    withTags,
    isOurNode,
    withLocalOutputs,
    ourNodeChecks,
    agentNodeChecks,
    ownCheckIds,
  };
}
