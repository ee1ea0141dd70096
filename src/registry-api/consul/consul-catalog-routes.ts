/** @module The Consul /v1/catalog endpoints: register, deregister, datacenters, nodes, services. */
import { serviceTopic } from '../../registry/catalog-facade.js';
import {
  CATALOG_DEREGISTER_SPEC,
  CATALOG_REGISTER_SPEC,
  type NormalisedBody,
} from './consul-body.js';
import type { ConsulCheckWrites } from './consul-checks.js';
import type { ConsulContext } from './consul-context.js';
import { mayRead, requireAcl } from '../acl/request-acl.js';
import { refuse, refuseExternalNode } from './consul-refuse.js';
import { registrationFromConsul } from './consul-registration.js';
import { consulNode, nodeService, serviceNode } from './consul-shapes.js';
import { checkDatacenter } from './consul-query.js';

/** Adds the /v1/catalog routes to the context's router. */
export function registerConsulCatalogRoutes(ctx: ConsulContext, checks: ConsulCheckWrites): void {
  const { registry, node, policy, route, json, blocking, filterOf, decode, param } = ctx;
  const { nodeMetaMatches, withTags, isOurNode, ownCheckIds } = ctx;
  const { prepareCheck, deregisterCheck } = checks;

  /** The `Node` of a catalog write: it must be this agent's, in this datacenter. */
  const catalogNode = (body: NormalisedBody): string => {
    checkDatacenter({ dc: body.Datacenter as string | undefined }, node.datacenter);
    const nodeName = body.Node as string | undefined;
    if (nodeName === undefined || nodeName === '') throw refuse('Missing node name');
    if (!isOurNode(nodeName)) throw refuseExternalNode(nodeName);
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
      for (const write of checks.map((c) => prepareCheck(req, c))) await write();
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
    requireAcl(req, 'service', reg.service, 'write');
    const prev = registry.instanceDefinition(reg.id ?? '');
    if (prev !== undefined) requireAcl(req, 'service', prev.service, 'write');
    await registry.register(reg);
    return json(req, reply, true);
  });

  route(['PUT'], '/catalog/deregister', async (req, reply) => {
    const body = decode(req, CATALOG_DEREGISTER_SPEC);
    const nodeName = catalogNode(body);
    const serviceId = body.ServiceID as string | undefined;
    const checkId = body.CheckID as string | undefined;
    if (serviceId !== undefined && serviceId !== '') {
      const service = registry.instanceDefinition(serviceId)?.service;
      if (service !== undefined) requireAcl(req, 'service', service, 'write');
      await registry.deregister(serviceId);
    } else if (checkId !== undefined && checkId !== '') {
      await deregisterCheck(req, checkId);
    } else {
      throw refuse(
        `Deregistering node "${nodeName}" itself is not supported: it is this agent; deregister its services`,
      );
    }
    return json(req, reply, true);
  });

  route(['GET'], '/catalog/datacenters', async (req, reply) => json(req, reply, [node.datacenter]));

  route(['GET'], '/catalog/nodes', async (req, reply) => {
    await blocking(req, 'catalog', () => registry.catalogIndex);
    const keep = filterOf(req);
    const nodes = [consulNode(node)].filter(
      (n) =>
        mayRead(req, 'node', node.nodeName) &&
        nodeMetaMatches(req) &&
        (keep === undefined || keep(n)),
    );
    return json(req, reply, nodes, registry.catalogIndex);
  });

  route(['GET'], '/catalog/node/:node', async (req, reply) => {
    await blocking(req, 'catalog', () => registry.catalogIndex);
    if (!isOurNode(param(req, 'node'))) return json(req, reply, null, registry.catalogIndex);
    const keep = filterOf(req);
    const services: Record<string, unknown> = {};
    for (const i of registry.allInstances()) {
      if (!mayRead(req, 'service', i.service)) continue;
      const s = nodeService(i);
      if (keep === undefined || keep(s)) services[i.id] = s;
    }
    return json(req, reply, { Node: consulNode(node), Services: services }, registry.catalogIndex);
  });

  // Consul 1.7+: the node's services as a list. An unknown node is 200 with both fields null,
  // as Consul answers it (its state store finds no node and returns an empty NodeServiceList).
  route(['GET'], '/catalog/node-services/:node', async (req, reply) => {
    await blocking(req, 'catalog', () => registry.catalogIndex);
    if (!isOurNode(param(req, 'node')))
      return json(req, reply, { Node: null, Services: null }, registry.catalogIndex);
    const keep = filterOf(req);
    const services = registry
      .allInstances()
      .filter((i) => mayRead(req, 'service', i.service))
      .map(nodeService)
      .filter((s) => keep === undefined || keep(s));
    return json(req, reply, { Node: consulNode(node), Services: services }, registry.catalogIndex);
  });

  route(['GET'], '/catalog/services', async (req, reply) => {
    await blocking(req, 'catalog', () => registry.catalogIndex);
    // A Consul server lists itself as the service "consul"; clients (node-consul's tests) expect it.
    const out: Record<string, string[]> = mayRead(req, 'service', 'consul') ? { consul: [] } : {};
    for (const s of registry.listServices().services)
      if (mayRead(req, 'service', s.name)) out[s.name] = [...s.tags];
    return json(req, reply, out, registry.catalogIndex);
  });

  route(['GET'], '/catalog/service/:name', async (req, reply) => {
    const name = param(req, 'name');
    await blocking(req, serviceTopic(name), () => registry.serviceIndex(name));
    const keep = filterOf(req);
    if (!mayRead(req, 'service', name)) return json(req, reply, [], registry.serviceIndex(name));
    const items = withTags(req, registry.serviceInstances(name))
      .map((i) => serviceNode(node, i))
      .filter((s) => keep === undefined || keep(s));
    return json(req, reply, items, registry.serviceIndex(name));
  });
}
