/**
 * @module A Discovery that shows only what a token may read (`service:<name> read`,
 * `node:<name> read`): DNS answers with the anonymous token's rights when `acl.dns` is on.
 */
import type { Discovery } from '../../core/discovery.js';
import type { Authorizer } from './acl-contract.js';

/** `discovery` seen through `authorizer()` (asked per lookup: it may change). */
export function aclFilteredDiscovery(
  discovery: Discovery,
  authorizer: () => Authorizer,
): Discovery {
  const service = (name: string): boolean => authorizer().check('service', name, 'read').allowed;
  const node = (name: string): boolean => authorizer().check('node', name, 'read').allowed;
  return {
    // Answers cached by index must not outlive a change of rights: the sign carries them.
    serviceIndex: (name) => (service(name) ? 1 : -1) * discovery.serviceIndex(name),
    instances: (name) => (service(name) ? discovery.instances(name) : []),
    instancesByAddress: (address) =>
      discovery.instancesByAddress(address).filter((i) => service(i.service)),
    node: (name) => {
      const found = discovery.node(name);
      return found !== undefined && node(found.name) ? found : undefined;
    },
    nodes: () => discovery.nodes().filter((n) => node(n.name)),
    get index() {
      return discovery.index;
    },
  };
}
