/** @module RegistryDiscovery: the Discovery interface served from the Registry's catalog view. */
import type { DiscoveredInstance, DiscoveredNode, Discovery } from '../core/discovery.js';
import type { Registry } from './registry.js';

/**
 * Discovery over a running {@link Registry}. The view is fed by the store's events (embedded or
 * etcd), so this answers the same in cluster mode. `nodes` lists the agents DNS names as nodes.
 */
export function createRegistryDiscovery(
  registry: Registry,
  nodes: () => readonly DiscoveredNode[],
): Discovery {
  const view = registry.view;
  return {
    serviceIndex: (service) => view.serviceIndex(service),
    instances: (service) => view.serviceInstances(service),
    instancesByAddress: (address) => {
      const out: DiscoveredInstance[] = [];
      for (const i of view.instancesWhere((i) => i.address === address)) {
        const dto = view.dto(i.id);
        if (dto !== undefined) out.push(dto);
      }
      return out;
    },
    node: (name) => {
      const lower = name.toLowerCase();
      return nodes().find((n) => n.name.toLowerCase() === lower);
    },
    nodes,
    get index() {
      return view.index;
    },
  };
}
