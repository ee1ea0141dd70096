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
  add(['PUT'], '/v1/kv/*', kv('write'));
  // Intentions are AuthorizationPolicies (mesh resources): read and write as the mesh.
  for (const url of [
    '/v1/connect/intentions',
    '/v1/connect/intentions/check',
    '/v1/connect/intentions/match',
    '/v1/connect/intentions/exact',
    '/v1/connect/intentions/:id',
  ]) {
    add(['GET'], url, fixed(['mesh', '', 'read']));
    add(['POST', 'PUT', 'DELETE'], url, fixed(['mesh', '', 'write']));
  }
  add(['POST'], '/v1/agent/connect/authorize', fixed(['mesh', '', 'read']));
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
