/** @module RegistryDiscovery: the Discovery interface served from the registry contract's reads. */
import type { DiscoveredInstance, DiscoveredNode, Discovery } from '../core/discovery.js';
import type { CatalogReader } from './catalog-facade.js';

/**
 * Discovery over a running registry's reads. Its view is fed by the store's events (embedded or
 * etcd), so this answers the same in cluster mode. `nodes` lists the agents DNS names as nodes.
 */
export function createRegistryDiscovery(
  catalog: CatalogReader,
  nodes: () => readonly DiscoveredNode[],
): Discovery {
  return {
    serviceIndex: (service) => catalog.serviceIndex(service),
    instances: (service) => catalog.serviceInstances(service),
    instancesByAddress: (address) => {
      const out: DiscoveredInstance[] = [];
      for (const i of catalog.instancesWhere((i) => i.address === address)) {
        const dto = catalog.instance(i.id);
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
      return catalog.index;
    },
  };
}
