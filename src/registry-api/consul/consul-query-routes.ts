/**
 * @module The Consul /v1/query endpoints (prepared queries): create, list, read, update, delete,
 * execute and explain. Queries live in the store (consul-prepared-query-store.ts); executing one
 * reads this agent's catalog as /v1/health/service does. One node per agent: `Near` sorts
 * nothing (the order is shuffled, as Consul's without coordinates), and failover to other
 * datacenters finds none (`Failovers: 0`).
 */
import type { FastifyRequest } from 'fastify';
import type { InstanceDto } from '../../protocol/api-types.js';
import { rawBody } from '../body.js';
import { mayRead, requireAcl } from '../acl/request-acl.js';
import type { ConsulContext } from './consul-context.js';
import {
  parsePreparedQuery,
  REDACTED_TOKEN,
  renderPreparedQuery,
  resolvePreparedQuery,
  type PreparedQueryDef,
} from './consul-prepared-query.js';
import { PreparedQueryStore, type StoredPreparedQuery } from './consul-prepared-query-store.js';
import { checkDatacenter, first } from './consul-query.js';
import { refuse } from './consul-refuse.js';
import { consulNode, nodeService, serviceChecks } from './consul-shapes.js';

/** Adds the /v1/query routes to the context's router. */
export function registerConsulQueryRoutes(ctx: ConsulContext): void {
  const { registry, node, route, q, json, done, blocking, param, ourNodeChecks } = ctx;
  const store = new PreparedQueryStore(registry.reservedKv);

  /** A query as Consul shows it: its indexes, its Token hidden. */
  const shown = (s: StoredPreparedQuery): Record<string, unknown> => ({
    ...s.def,
    Token: s.def.Token === '' ? '' : REDACTED_TOKEN,
    CreateIndex: s.createIndex,
    ModifyIndex: s.modifyIndex,
  });
  const notFound = () => refuse('Query not found', 404);
  /** Consul's ACL prefix of a query: its name (a template's too). */
  const aclName = (def: PreparedQueryDef): string => def.Name;
  const existing = (req: FastifyRequest): StoredPreparedQuery => {
    const found = store.get(param(req, 'id'));
    if (found === undefined) throw notFound();
    return found;
  };

  route(['POST'], '/query', async (req, reply) => {
    checkDatacenter(q(req), node.datacenter);
    const def = parsePreparedQuery(rawBody(req), store.newId());
    requireAcl(req, 'query', aclName(def), 'write');
    await store.put(def);
    return json(req, reply, { ID: def.ID });
  });

  route(['GET'], '/query', async (req, reply) => {
    await blocking(req, 'reserved', () => store.index);
    const list = store.list().filter((s) => mayRead(req, 'query', aclName(s.def)));
    return json(req, reply, list.map(shown), store.index);
  });

  route(['GET'], '/query/:id', async (req, reply) => {
    await blocking(req, 'reserved', () => store.index);
    const found = existing(req);
    requireAcl(req, 'query', aclName(found.def), 'read');
    return json(req, reply, [shown(found)], store.index);
  });

  route(['PUT'], '/query/:id', async (req, reply) => {
    checkDatacenter(q(req), node.datacenter);
    const prev = existing(req);
    requireAcl(req, 'query', aclName(prev.def), 'write');
    const def = parsePreparedQuery(rawBody(req), prev.def.ID);
    requireAcl(req, 'query', aclName(def), 'write');
    await store.put(def);
    return done(reply);
  });

  route(['DELETE'], '/query/:id', async (req, reply) => {
    checkDatacenter(q(req), node.datacenter);
    requireAcl(req, 'query', aclName(existing(req).def), 'write');
    await store.delete(param(req, 'id'));
    return done(reply);
  });

  /** The query `:id` names (ID, name or template), rendered for that name. */
  const resolved = (req: FastifyRequest): PreparedQueryDef => {
    checkDatacenter(q(req), node.datacenter);
    const idOrName = param(req, 'id');
    const def = resolvePreparedQuery(
      store.list().map((s) => s.def),
      idOrName,
    );
    if (def === undefined) throw notFound();
    requireAcl(req, 'query', aclName(def), 'read');
    return renderPreparedQuery(def, idOrName);
  };

  route(['GET'], '/query/:id/explain', async (req, reply) => {
    const def = resolved(req);
    return json(
      req,
      reply,
      { Query: { ...def, Token: def.Token === '' ? '' : REDACTED_TOKEN } },
      store.index,
    );
  });

  route(['GET'], '/query/:id/execute', async (req, reply) => {
    const def = resolved(req);
    const query = q(req);
    const rawLimit = first(query.limit);
    if (rawLimit !== undefined && rawLimit !== '' && !/^\d{1,9}$/.test(rawLimit))
      throw refuse(`Bad limit: strconv.Atoi: parsing "${rawLimit}": invalid syntax`);
    const limit = rawLimit === undefined || rawLimit === '' ? 0 : Number(rawLimit);
    const svc = def.Service;
    requireAcl(req, 'service', svc.Service, 'read');
    const nodeMeta = consulNode(node).Meta as Record<string, string>;
    const onNode = Object.entries(svc.NodeMeta).every(([k, v]) => nodeMeta[k] === v);
    const ignored = new Set(svc.IgnoreCheckIDs);
    const want = svc.Tags.filter((t) => !t.startsWith('!')).map((t) => t.toLowerCase());
    const not = svc.Tags.filter((t) => t.startsWith('!')).map((t) => t.slice(1).toLowerCase());
    const nChecks = ourNodeChecks();
    const nodeObj = consulNode(node);
    const keep = (i: InstanceDto): boolean => {
      const tags = i.tags.map((t) => t.toLowerCase());
      if (!want.every((t) => tags.includes(t)) || not.some((t) => tags.includes(t))) return false;
      return Object.entries(svc.ServiceMeta).every(([k, v]) => i.meta[k] === v);
    };
    const nodes = (onNode ? registry.serviceInstances(svc.Service) : [])
      .filter(keep)
      .map((i) => ({
        Node: nodeObj,
        Service: nodeService(i),
        Checks: [...nChecks, ...serviceChecks(node, i)],
      }))
      .filter((e) => {
        const statuses = e.Checks.filter((c) => !ignored.has(String(c.CheckID))).map(
          (c) => c.Status,
        );
        return svc.OnlyPassing
          ? statuses.every((s) => s === 'passing')
          : !statuses.includes('critical');
      });
    // Consul shuffles, then sorts by distance from `near` (one node here: nothing to sort; the
    // agent's own node would come first, and every instance is on it).
    for (let i = nodes.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [nodes[i], nodes[j]] = [
        nodes[j] as (typeof nodes)[number],
        nodes[i] as (typeof nodes)[number],
      ];
    }
    return json(
      req,
      reply,
      {
        Service: svc.Service,
        Nodes: limit > 0 ? nodes.slice(0, limit) : nodes,
        DNS: { TTL: def.DNS.TTL },
        Datacenter: node.datacenter,
        // Other datacenters are not reachable from Meshwork: the failover finds none.
        Failovers: 0,
      },
      store.index,
    );
  });
}
