/** @module The Consul /v1/health endpoints: service health (cached per index), checks, state, node. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { serviceTopic } from '../../registry/catalog-facade.js';
import { filterKey } from '../query.js';
import type { ConsulContext } from './consul-context.js';
import { mayRead } from '../acl/request-acl.js';
import { refuse } from './consul-refuse.js';
import { consulNode, nodeService, serviceChecks } from './consul-shapes.js';
import { parseBoolParam } from './consul-query.js';

/** Adds the /v1/health routes to the context's router. */
export function registerConsulHealthRoutes(ctx: ConsulContext): void {
  const { registry, node, route, q, json, blocking, filterOf, param } = ctx;
  const { withTags, isOurNode, ourNodeChecks } = ctx;

  // Serialised health/service answers per query while the service's index holds: the hot read of
  // Consul clients, and the one the benchmark compares with the native endpoint.
  // Kept as bytes, as the native list cache is (re-encoding a string on every hit costs).
  const healthCache = new Map<string, { index: number; body: Buffer }>();

  route(['GET'], '/health/service/:name', async (req, reply) => {
    const name = param(req, 'name');
    const query = q(req);
    const passing = parseBoolParam(query, 'passing');
    await blocking(req, serviceTopic(name), () => registry.serviceIndex(name));
    const index = registry.serviceIndex(name);
    // Consul filters what the token may not read: an empty list, not a 403.
    if (!mayRead(req, 'service', name)) return json(req, reply, [], index);
    const key = `${name}?${filterKey(query)}`;
    const cached = healthCache.get(key);
    if (cached !== undefined && cached.index === index) return json(req, reply, cached.body, index);
    const keep = filterOf(req);
    const nChecks = ourNodeChecks();
    const nodeObj = consulNode(node);
    const entries = withTags(req, registry.serviceInstances(name))
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
    const readable = checks.filter((c) =>
      c.ServiceName === '' || c.ServiceName === undefined
        ? mayRead(req, 'node', node.nodeName)
        : mayRead(req, 'service', String(c.ServiceName)),
    );
    return json(req, reply, keep === undefined ? readable : readable.filter(keep), index);
  };

  route(['GET'], '/health/checks/:name', async (req, reply) => {
    const name = param(req, 'name');
    await blocking(req, serviceTopic(name), () => registry.serviceIndex(name));
    const checks = registry.serviceInstances(name).flatMap((i) => serviceChecks(node, i));
    return checksAnswer(req, reply, checks, registry.serviceIndex(name));
  });

  route(['GET'], '/health/state/:state', async (req, reply) => {
    const state = param(req, 'state');
    if (state === '') throw refuse('Missing check state');
    if (!['any', 'passing', 'warning', 'critical'].includes(state))
      throw refuse(`Invalid check state "${state}": use any, passing, warning or critical`);
    await blocking(req, 'catalog', () => registry.catalogIndex);
    const all = [
      ...ourNodeChecks(),
      ...registry.allInstances().flatMap((i) => serviceChecks(node, i)),
    ];
    const checks = state === 'any' ? all : all.filter((c) => c.Status === state);
    return checksAnswer(req, reply, checks, registry.catalogIndex);
  });

  route(['GET'], '/health/node/:node', async (req, reply) => {
    await blocking(req, 'catalog', () => registry.catalogIndex);
    const checks = isOurNode(param(req, 'node'))
      ? [...ourNodeChecks(), ...registry.allInstances().flatMap((i) => serviceChecks(node, i))]
      : [];
    return checksAnswer(req, reply, checks, registry.catalogIndex);
  });
}
