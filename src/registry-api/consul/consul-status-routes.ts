/** @module The Consul /v1/status endpoints: this agent is the leader and the only peer. */
import type { ConsulContext } from './consul-context.js';

/** Adds the /v1/status routes to the context's router. */
export function registerConsulStatusRoutes({ node, route, json }: ConsulContext): void {
  route(['GET'], '/status/leader', async (req, reply) => json(req, reply, `${node.address}:8300`));
  route(['GET'], '/status/peers', async (req, reply) => json(req, reply, [`${node.address}:8300`]));
}
