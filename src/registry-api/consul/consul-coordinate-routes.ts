/**
 * @module The Consul /v1/coordinate endpoints. Consul estimates round-trip times between nodes
 * with Vivaldi network coordinates learned from gossip; a Meshwork agent is one node and gossips
 * with no one, so its coordinate is the one a Consul node starts from (the origin: zero vector,
 * Error 1.5, Height 1e-5) and never moves. `?near=` sorting is meaningless on one node either way.
 */
import { mayRead } from '../acl/request-acl.js';
import type { ConsulContext } from './consul-context.js';
import { every } from './consul-query.js';

/**
 * The coordinate a Consul node starts with (serf's `NewCoordinate` with the default config:
 * 8 dimensions, `VivaldiErrorMax` 1.5, `HeightMin` 10e-6), which this agent keeps.
 */
export const ORIGIN_COORDINATE = Object.freeze({
  Vec: Object.freeze([0, 0, 0, 0, 0, 0, 0, 0]),
  Error: 1.5,
  Adjustment: 0,
  Height: 1e-5,
});

/** Adds the /v1/coordinate routes to the context's router. */
export function registerConsulCoordinateRoutes(ctx: ConsulContext): void {
  const { registry, node, route, q, json, meta, blocking, param, isOurNode } = ctx;

  /** This node's LAN coordinate entries, kept by `?segment=` as Consul filters them. */
  const entries = (segments: string[]) =>
    segments.length > 0 && segments[0] !== ''
      ? []
      : [{ Node: node.nodeName, Segment: '', Coord: ORIGIN_COORDINATE }];

  route(['GET'], '/coordinate/datacenters', async (req, reply) =>
    json(req, reply, [
      {
        Datacenter: node.datacenter,
        AreaID: 'WAN',
        // Consul names servers in the WAN pool <node>.<datacenter>.
        Coordinates: [
          { Node: `${node.nodeName}.${node.datacenter}`, Segment: '', Coord: ORIGIN_COORDINATE },
        ],
      },
    ]),
  );

  route(['GET'], '/coordinate/nodes', async (req, reply) => {
    // The node's coordinate never changes: a blocking query waits for its deadline, or for the
    // catalog to move past ?index= as Consul's would when nodes change.
    await blocking(req, 'catalog', () => registry.catalogIndex);
    // A list: a node the token may not read is left out, as Consul filters it.
    const readable = mayRead(req, 'node', node.nodeName) ? entries(every(q(req).segment)) : [];
    return json(req, reply, readable, registry.catalogIndex);
  });

  route(['GET'], '/coordinate/node/:node', async (req, reply) => {
    await blocking(req, 'catalog', () => registry.catalogIndex);
    const found = isOurNode(param(req, 'node')) ? entries(every(q(req).segment)) : [];
    if (found.length === 0) {
      // Consul answers an unknown node 404 with an empty body and the query meta headers.
      meta(req, reply, registry.catalogIndex);
      return reply.status(404).send();
    }
    return json(req, reply, found, registry.catalogIndex);
  });
}
