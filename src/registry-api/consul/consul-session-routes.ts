/**
 * @module The Consul /v1/session endpoints: create, destroy, renew, info, node, list. Sessions
 * are the registry's (registry-sessions.ts); shapes are Consul's session entries.
 */
import type { FastifyRequest } from 'fastify';
import { formatDurationMs } from '../../core/duration.js';
import { ERROR_CODES, isMeshError } from '../../core/errors.js';
import type { SessionCheck } from '../../core/types.js';
import type { StoredSession } from '../../registry/catalog-facade.js';
import { mayRead, requireAcl } from '../acl/request-acl.js';
import type { ConsulCheckWrites } from './consul-checks.js';
import type { ConsulContext } from './consul-context.js';
import { refuse, refuseExternalNode } from './consul-refuse.js';
import { parseSessionCreate, SESSION_CREATE_SPEC } from './consul-session-body.js';
import { checkDatacenter } from './consul-query.js';

/** The node check every Consul session binds by default: here, this agent answering. */
const SERF_HEALTH = 'serfHealth';

/** A session as Consul's session endpoints answer it (LockDelay in nanoseconds). */
export function consulSession(s: StoredSession): Record<string, unknown> {
  const { session } = s;
  const service = session.checks.filter((c) => c.kind === 'service');
  return {
    ID: session.id,
    Name: session.name,
    Node: session.node,
    LockDelay: session.lockDelayMs * 1e6,
    Behavior: session.behavior,
    TTL: session.ttlMs === 0 ? '' : formatDurationMs(session.ttlMs),
    NodeChecks: [
      ...session.agentChecks,
      ...session.checks.filter((c) => c.kind === 'node').map((c) => c.id),
    ],
    ServiceChecks: service.length === 0 ? null : service.map((c) => ({ ID: c.id, Namespace: '' })),
    CreateIndex: s.createIndex,
    // Sessions never change (Consul's too): modified when created.
    ModifyIndex: s.createIndex,
  };
}

/** Adds the /v1/session routes to the context's router. */
export function registerConsulSessionRoutes(ctx: ConsulContext, checks: ConsulCheckWrites): void {
  const { registry, node, route, q, json, blocking, decode, param, isOurNode } = ctx;

  /** The sessions `req`'s token may read (Consul filters lists by session read on the node). */
  const readable = (req: FastifyRequest, list: readonly StoredSession[]) =>
    list.filter((s) => mayRead(req, 'session', s.session.node)).map(consulSession);

  /** A session's Consul node checks as bindings; refuses unknown and critical checks. */
  const bindNodeCheck = (id: string): SessionCheck => {
    const check = registry.nodeChecks()?.checks.find((c) => c.id === id);
    if (check === undefined) throw refuse(`Missing check '${id}' registration`);
    if (check.status === 'critical') throw refuse(`Check '${id}' is in critical state`);
    return { id, kind: 'node', instanceId: '', checkId: check.id };
  };

  const bindServiceCheck = (id: string): SessionCheck => {
    const found = checks.findCheckById(id);
    if (found?.instance === undefined) throw refuse(`Missing check '${id}' registration`);
    if (found.check.status === 'critical') throw refuse(`Check '${id}' is in critical state`);
    return { id, kind: 'service', instanceId: found.instance.id, checkId: found.check.id };
  };

  route(['PUT'], '/session/create', async (req, reply) => {
    checkDatacenter(q(req), node.datacenter);
    // python-consul sends no body at all when every option is left at its default.
    const body = parseSessionCreate(decode(req, SESSION_CREATE_SPEC, {}));
    const nodeName = body.node ?? node.nodeName;
    if (!isOurNode(nodeName)) throw refuseExternalNode(nodeName);
    requireAcl(req, 'session', nodeName, 'write');
    const nodeChecks = body.nodeChecks ?? [SERF_HEALTH];
    const bound = [
      ...nodeChecks.filter((id) => id !== SERF_HEALTH).map(bindNodeCheck),
      ...body.serviceChecks.map(bindServiceCheck),
    ];
    const { session } = await registry.createSession({
      name: body.name,
      node: nodeName,
      lockDelayMs: body.lockDelayMs,
      behavior: body.behavior,
      ttlMs: body.ttlMs,
      agentChecks: nodeChecks.filter((id) => id === SERF_HEALTH),
      checks: bound,
    });
    return json(req, reply, { ID: session.session.id });
  });

  /** The session `id` names (its node's write right taken), or undefined when there is none. */
  const writable = (req: FastifyRequest, id: string): StoredSession | undefined => {
    const s = registry.session(id);
    if (s !== undefined) requireAcl(req, 'session', s.session.node, 'write');
    return s;
  };

  route(['PUT'], '/session/destroy/:id', async (req, reply) => {
    checkDatacenter(q(req), node.datacenter);
    const id = param(req, 'id');
    if (writable(req, id) !== undefined) await registry.destroySession(id);
    return json(req, reply, true);
  });

  route(['PUT'], '/session/renew/:id', async (req, reply) => {
    checkDatacenter(q(req), node.datacenter);
    const id = param(req, 'id');
    if (writable(req, id) === undefined) throw refuse(`Session id '${id}' not found`, 404);
    try {
      return json(req, reply, [consulSession(await registry.renewSession(id))]);
    } catch (err) {
      if (isMeshError(err, ERROR_CODES.SESSION_NOT_FOUND))
        throw refuse(`Session id '${id}' not found`, 404);
      throw err;
    }
  });

  route(['GET'], '/session/info/:id', async (req, reply) => {
    await blocking(req, 'session', () => registry.sessionIndex);
    const s = registry.session(param(req, 'id'));
    return json(req, reply, readable(req, s === undefined ? [] : [s]), registry.sessionIndex);
  });

  route(['GET'], '/session/node/:node', async (req, reply) => {
    await blocking(req, 'session', () => registry.sessionIndex);
    const name = param(req, 'node');
    const mine = registry.sessions().filter((s) => s.session.node === name);
    return json(req, reply, readable(req, mine), registry.sessionIndex);
  });

  route(['GET'], '/session/list', async (req, reply) => {
    await blocking(req, 'session', () => registry.sessionIndex);
    return json(req, reply, readable(req, registry.sessions()), registry.sessionIndex);
  });
}
