/**
 * @module The Consul /v1/event endpoints: fire (stored for every agent of the cluster) and list,
 * a blocking query whose index is derived from the last event's ID, as Consul's.
 */
import { rawBody } from '../body.js';
import { mayRead } from '../acl/request-acl.js';
import { waitForRequest } from '../query.js';
import type { ConsulContext } from './consul-context.js';
import { ConsulEvents, eventListIndex, validateUserEvent } from './consul-events.js';
import { checkDatacenter, checkReadOptions, first, parseConsulBlocking } from './consul-query.js';

/** Adds the /v1/event routes to the context's router. */
export function registerConsulEventRoutes(ctx: ConsulContext): void {
  const { registry, node, route, q, json, param } = ctx;
  const events = new ConsulEvents(registry.reservedKv);
  const target = {
    nodeName: node.nodeName,
    services: () => registry.allInstances().map((i) => ({ name: i.service, tags: i.tags })),
  };

  route(['PUT'], '/event/fire/:name', async (req, reply) => {
    const query = q(req);
    checkDatacenter(query, node.datacenter);
    const request = {
      name: param(req, 'name'),
      payload: rawBody(req),
      nodeFilter: first(query.node) ?? '',
      serviceFilter: first(query.service) ?? '',
      tagFilter: first(query.tag) ?? '',
    };
    validateUserEvent(request);
    return json(req, reply, await events.fire(request));
  });

  route(['GET'], '/event/list', async (req, reply) => {
    const query = q(req);
    checkReadOptions(query, node.datacenter);
    const name = first(query.name);
    // Consul drops what the token may not read (event:read on its name), no 403.
    const listed = () => events.list(target, name).filter((e) => mayRead(req, 'event', e.Name));
    const blocking = parseConsulBlocking(query);
    // Consul's event index is not monotonic: a list waits while its index equals ?index= and
    // answers at once when it differs (events.ts makes ours grow, so both readings agree).
    const current = () => eventListIndex(listed());
    const moved = () => (current() === blocking.index ? blocking.index : Number.MAX_SAFE_INTEGER);
    if (blocking.index !== 0 && current() === blocking.index)
      await waitForRequest(registry, req, 'reserved', blocking, moved);
    const list = listed();
    return json(req, reply, list, eventListIndex(list));
  });
}
