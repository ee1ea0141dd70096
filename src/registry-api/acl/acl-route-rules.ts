/**
 * @module What each API endpoint needs of a token, where its URL decides it (docs/security.md,
 * "Registry ACLs", has the same table). Endpoints whose body decides (registrations, applies,
 * check writes) and lists filtered by read rights check in their handlers; the matrix test
 * (test/integration/acl-matrix.test.ts) covers both.
 */
import type { FastifyRequest } from 'fastify';
import type { AclAccess, AclResourceKind } from '../../registry/acl/acl-contract.js';
import type { CatalogFacade } from '../../registry/catalog-facade.js';
import { requireAcl, type AclRouteRule } from './request-acl.js';

type Check = readonly [AclResourceKind, string, AclAccess];

const param = (req: FastifyRequest, name: string): string =>
  (req.params as Record<string, string | undefined>)[name] ?? '';

const query = (req: FastifyRequest, name: string): string | undefined => {
  const v = (req.query as Record<string, unknown> | undefined)?.[name];
  return typeof v === 'string' ? v : undefined;
};

/** Builds the table of URL-decided checks, keyed `METHOD /route/url`. */
export function aclRouteRules(registry: CatalogFacade): ReadonlyMap<string, AclRouteRule> {
  const node = registry.nodeName;
  const rules = new Map<string, AclRouteRule>();
  const add = (methods: readonly string[], url: string, rule: AclRouteRule): void => {
    for (const m of methods) rules.set(`${m} ${url}`, rule);
  };
  const fixed =
    (...checks: Check[]): AclRouteRule =>
    () =>
      checks;
  /** The service an instance id belongs to: unknown ids need nothing (they answer 404). */
  const ofInstance =
    (access: AclAccess, name = 'id'): AclRouteRule =>
    (req) => {
      const service = registry.instanceDefinition(param(req, name))?.service;
      return service === undefined ? [] : [['service', service, access]];
    };
  const kv =
    (access: AclAccess): AclRouteRule =>
    (req) => [['kv', param(req, '*'), access]];

  // ---- agent-wide -------------------------------------------------------------------------
  add(['GET'], '/metrics', fixed(['agent', node, 'read']));

  // ---- native /api/v1 ---------------------------------------------------------------------
  add(['GET'], '/api/v1/instances/:id', ofInstance('read'));
  add(['DELETE'], '/api/v1/instances/:id', ofInstance('write'));
  add(['PUT'], '/api/v1/instances/:id/heartbeat', ofInstance('write'));
  add(['PUT'], '/api/v1/instances/:id/maintenance', ofInstance('write'));
  add(['PUT'], '/api/v1/agent/maintenance', fixed(['node', node, 'write']));
  add(['GET'], '/api/v1/agent', fixed(['agent', node, 'read']));
  add(['GET'], '/api/v1/agents', fixed(['node', '', 'read']));
  add(['GET'], '/api/v1/services/:name/instances', (req) => [
    ['service', param(req, 'name'), 'read'],
  ]);
  // Without ?service= the stream carries every service: it takes read on all of them.
  add(['GET'], '/api/v1/watch', (req) => [['service', query(req, 'service') ?? '', 'read']]);
  add(['PUT'], '/api/v1/kv/*', kv('write'));
  add(['DELETE'], '/api/v1/kv/*', kv('write'));
  add(['POST'], '/api/v1/mesh/apply', fixed(['mesh', '', 'write']));
  add(['GET'], '/api/v1/mesh/resources', fixed(['mesh', '', 'read']));
  add(['GET'], '/api/v1/mesh/resources/:kind', fixed(['mesh', '', 'read']));
  add(['GET'], '/api/v1/mesh/resources/:kind/:namespace/:name', fixed(['mesh', '', 'read']));
  add(['DELETE'], '/api/v1/mesh/resources/:kind/:namespace/:name', fixed(['mesh', '', 'write']));
  // The push stream: a sidecar subscribes as its service (it reads that service's inbound
  // policies); a gateway needs mesh read alone.
  add(['GET'], '/api/v1/mesh/stream', (req) =>
    query(req, 'kind') === 'sidecar'
      ? [
          ['mesh', '', 'read'],
          ['service', query(req, 'name') ?? '', 'read'],
        ]
      : [['mesh', '', 'read']],
  );
  add(['POST'], '/api/v1/mesh/ack', fixed(['mesh', '', 'read']));
  add(['GET'], '/api/v1/mesh/proxies', fixed(['mesh', '', 'read']));
  // The call graph: a proxy posts its edge counts with the token it streams with (mesh read,
  // as an ACK); the graph names every service of the catalog: mesh read and read on them all.
  add(['POST'], '/api/v1/mesh/edges', fixed(['mesh', '', 'read']));
  add(['GET'], '/api/v1/mesh/graph', fixed(['mesh', '', 'read'], ['service', '', 'read']));
  // Eureka's self-preservation: its state is an operator's reading, its reset (evicting lapsed
  // leases now) an operator's act.
  add(['GET'], '/api/v1/eureka/self-preservation', fixed(['operator', '', 'read']));
  add(['POST'], '/api/v1/eureka/self-preservation/reset', fixed(['operator', '', 'write']));

  // ---- Consul /v1 ---------------------------------------------------------------------------
  add(['GET'], '/v1/agent/self', fixed(['agent', node, 'read']));
  add(['GET'], '/v1/agent/service/:id', ofInstance('read'));
  // GET too: python-consul 0.7 sends these with GET (legacy verbs).
  add(['PUT', 'GET'], '/v1/agent/service/deregister/:id', ofInstance('write'));
  add(['PUT'], '/v1/agent/service/maintenance/:id', ofInstance('write'));
  add(['PUT'], '/v1/agent/maintenance', fixed(['node', node, 'write']));
  add(['GET'], '/v1/agent/health/service/id/:id', ofInstance('read'));
  add(['GET'], '/v1/agent/health/service/name/:name', (req) => [
    ['service', param(req, 'name'), 'read'],
  ]);
  add(['PUT', 'GET'], '/v1/agent/join/:address', fixed(['agent', node, 'write']));
  add(['PUT', 'GET'], '/v1/agent/force-leave/:node', fixed(['operator', '', 'write']));
  add(['PUT'], '/v1/agent/leave', fixed(['agent', node, 'write']));
  add(['PUT'], '/v1/agent/reload', fixed(['agent', node, 'write']));
  add(['PUT'], '/v1/agent/token/:type', fixed(['acl', '', 'write']));
  add(['GET'], '/v1/catalog/node/:node', (req) => [['node', param(req, 'node'), 'read']]);
  add(['GET'], '/v1/catalog/node-services/:node', (req) => [['node', param(req, 'node'), 'read']]);
  // As Consul: host details and the raft peers take operator read, metrics agent read.
  add(['GET'], '/v1/agent/host', fixed(['operator', '', 'read']));
  add(['GET'], '/v1/agent/metrics', fixed(['agent', node, 'read']));
  add(['GET'], '/v1/operator/raft/configuration', fixed(['operator', '', 'read']));
  add(['GET'], '/v1/coordinate/node/:node', (req) => [['node', param(req, 'node'), 'read']]);
  add(['PUT'], '/v1/kv/*', kv('write'));
  add(['PUT'], '/v1/event/fire/:name', (req) => [['event', param(req, 'name'), 'write']]);
  // Intentions are AuthorizationPolicies (consul-intentions.ts): mesh rights, as an apply.
  for (const url of [
    '/v1/connect/intentions',
    '/v1/connect/intentions/check',
    '/v1/connect/intentions/match',
    '/v1/connect/intentions/exact',
    '/v1/connect/intentions/:id',
  ])
    add(['GET'], url, fixed(['mesh', '', 'read']));
  add(['POST'], '/v1/connect/intentions', fixed(['mesh', '', 'write']));
  add(['PUT', 'DELETE'], '/v1/connect/intentions/exact', fixed(['mesh', '', 'write']));
  add(['PUT', 'DELETE'], '/v1/connect/intentions/:id', fixed(['mesh', '', 'write']));

  // ---- Eureka /eureka/v2 and /eureka ---------------------------------------------------------
  // As the Consul equivalents: an app's reads take service read, its writes service write; the
  // whole-registry reads (apps, delta, vips, an instance by id alone) take read on every service.
  const ofApp =
    (access: AclAccess): AclRouteRule =>
    (req) => [['service', param(req, 'app').toLowerCase(), access]];
  for (const prefix of ['/eureka/v2', '/eureka']) {
    const both = (url: string): string[] => [`${prefix}${url}`, `${prefix}${url}/`];
    for (const url of both('/apps/:app')) add(['POST'], url, ofApp('write'));
    add(['PUT', 'DELETE'], `${prefix}/apps/:app/:id`, ofApp('write'));
    add(['PUT', 'DELETE'], `${prefix}/apps/:app/:id/status`, ofApp('write'));
    add(['PUT'], `${prefix}/apps/:app/:id/metadata`, ofApp('write'));
    for (const url of [...both('/apps/:app'), ...both('/apps/:app/:id')])
      add(['GET'], url, ofApp('read'));
    for (const url of [
      ...both('/apps'),
      ...both('/apps/delta'),
      ...both('/instances/:id'),
      ...both('/vips/:vip'),
      ...both('/svips/:svip'),
    ])
      add(['GET'], url, fixed(['service', '', 'read']));
  }
  return rules;
}

/**
 * An apply of `set` rewrites the instances it owns: it takes write on the service of each
 * instance given and of each it owns now (which the apply may delete).
 */
export function requireSetWrite(
  req: FastifyRequest,
  registry: CatalogFacade,
  set: string,
  inputs: readonly { readonly service: string }[],
): void {
  const services = new Set(inputs.map((i) => i.service));
  for (const i of registry.instancesWhere((x) => x.managedBy === set)) services.add(i.service);
  for (const service of services) requireAcl(req, 'service', service, 'write');
}

/**
 * The API routes outside the table: their handlers check (bodies, filtered lists), or they need
 * nothing. A route in neither logs a warning at start (and fails the ACL coverage test).
 */
export const ACL_CLASSIFIED_ROUTES: ReadonlySet<string> = new Set([
  // handler: the body names the service (or the check its owner)
  'PUT /api/v1/instances',
  'PUT /api/v1/apply',
  'PUT /v1/agent/service/register',
  'PUT /v1/agent/check/register',
  'PUT /v1/catalog/register',
  'PUT /v1/catalog/deregister',
  'PUT /v1/agent/check/deregister/:id',
  'GET /v1/agent/check/deregister/:id',
  'PUT /v1/agent/check/pass/:id',
  'GET /v1/agent/check/pass/:id',
  'PUT /v1/agent/check/warn/:id',
  'GET /v1/agent/check/warn/:id',
  'PUT /v1/agent/check/fail/:id',
  'GET /v1/agent/check/fail/:id',
  'PUT /v1/agent/check/update/:id',
  // handler: session write on the session's node (create: the body's Node)
  'PUT /v1/session/create',
  'PUT /v1/session/destroy/:id',
  'PUT /v1/session/renew/:id',
  // handler: lists filtered by read rights, single keys checked
  'GET /api/v1/services',
  'GET /api/v1/kv/*',
  'GET /v1/kv/*',
  'DELETE /v1/kv/*',
  'GET /v1/agent/services',
  'GET /v1/agent/checks',
  'GET /v1/agent/members',
  'GET /v1/catalog/nodes',
  'GET /v1/catalog/services',
  'GET /v1/catalog/service/:name',
  'GET /v1/health/service/:name',
  'GET /v1/health/checks/:name',
  'GET /v1/health/state/:state',
  'GET /v1/health/node/:node',
  'GET /v1/coordinate/nodes',
  'GET /v1/session/info/:id',
  'GET /v1/session/node/:node',
  'GET /v1/session/list',
  // handler: acl read/write (token/self: any valid token; bootstrap: once)
  'PUT /v1/acl/bootstrap',
  'PUT /v1/acl/token',
  'GET /v1/acl/token/self',
  'GET /v1/acl/token/:id',
  'PUT /v1/acl/token/:id',
  'DELETE /v1/acl/token/:id',
  'GET /v1/acl/tokens',
  'PUT /v1/acl/policy',
  'GET /v1/acl/policy/:id',
  'GET /v1/acl/policy/name/:name',
  'PUT /v1/acl/policy/:id',
  'DELETE /v1/acl/policy/:id',
  'GET /v1/acl/policies',
  'PUT /v1/acl/create',
  'PUT /v1/acl/update',
  'PUT /v1/acl/destroy/:id',
  'PUT /v1/acl/clone/:id',
  'GET /v1/acl/info/:id',
  'GET /v1/acl/list',
  // handler: each txn op takes key or service rights (consul-txn-routes.ts)
  'PUT /v1/txn',
  // handler: events listed are filtered by event:read on their names
  'GET /v1/event/list',
  // handler: prepared queries take query rights on their names (the body or the stored query)
  'POST /v1/query',
  'GET /v1/query',
  'GET /v1/query/:id',
  'PUT /v1/query/:id',
  'DELETE /v1/query/:id',
  'GET /v1/query/:id/execute',
  'GET /v1/query/:id/explain',
  // handler: connect/authorize takes write on the target service (consul-intention-routes.ts)
  'POST /v1/agent/connect/authorize',
  // handler: the CA's (leaf: service write, rotate: operator write)
  'POST /api/v1/mesh/ca/leaf',
  'POST /api/v1/mesh/ca/rotate',
  // handler: Consul's agent-side leaf takes write on its service (consul-connect-ca-routes.ts)
  'GET /v1/agent/connect/ca/leaf/:service',
  // nothing: public (the trust bundle, the datacenter, the leader)
  'GET /api/v1/mesh/ca/roots',
  'GET /v1/agent/connect/ca/roots',
  'GET /v1/catalog/datacenters',
  'GET /v1/status/leader',
  'GET /v1/status/peers',
  // nothing: public in Consul too (the build's version, the datacenters' WAN coordinates)
  'GET /v1/agent/version',
  'GET /v1/coordinate/datacenters',
]);
