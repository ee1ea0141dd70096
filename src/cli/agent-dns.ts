/** @module createAgentDns: the agent's DNS interface, wired to its registry and cluster members. */
import type { DiscoveredNode } from '../core/discovery.js';
import type { Logger } from '../core/logger.js';
import type { AgentOptions } from '../agent/options.js';
import { createDnsServer, type DnsAddress } from '../dns/dns-server.js';
import { createRegistryDiscovery } from '../registry/discovery-adapter.js';
import type { Registry } from '../registry/registry.js';
import type { AgentMembership } from '../registry/cluster/agent-membership.js';
import type { Registry as MetricsRegistry } from 'prom-client';
import { aclFilteredDiscovery } from '../registry/acl/acl-discovery.js';
import type { AclSystem } from '../registry/acl/acl-system.js';
import type { Authorizer } from '../registry/acl/acl-contract.js';

export interface AgentDns {
  listen(): Promise<DnsAddress>;
  /** Cluster mode, once joined: name every live agent as a node, kept current. */
  followMembers(): void;
  close(): Promise<void>;
  readonly address: DnsAddress;
}

/** The DNS server of an agent, or undefined with `dns.listen: off`. Not listening yet. */
export function createAgentDns(o: {
  options: AgentOptions;
  registry: Registry;
  /** The agent's HTTP host: the address its own node name resolves to. */
  host: string;
  membership: AgentMembership | undefined;
  logger: Logger;
  metrics: MetricsRegistry;
  /** With ACLs on and `acl.dns`: DNS answers what the anonymous token may read. */
  acl?: AclSystem;
}): AgentDns | undefined {
  if (o.options.dns.listen === 'off') return undefined;
  const { membership, logger } = o;
  let nodes: readonly DiscoveredNode[] = [{ name: o.options.nodeName, address: o.host }];
  // Kept from the membership's changes, so a lookup never waits on etcd.
  const refresh = (): void => {
    membership?.members().then(
      (members) => {
        nodes = members.map((m) => ({
          name: m.nodeName,
          address: new URL(m.url).hostname.replace(/^\[|\]$/g, ''),
        }));
      },
      // etcd being away is reported by the store and the membership; DNS keeps the last list.
      (err: unknown) => logger.debug({ err }, 'DNS: could not list the cluster members'),
    );
  };
  const registryDiscovery = createRegistryDiscovery(o.registry, () => nodes);
  const server = createDnsServer({
    discovery:
      o.acl === undefined
        ? registryDiscovery
        : aclFilteredDiscovery(registryDiscovery, anonymous(o.acl)),
    options: o.options.dns,
    datacenter: o.options.datacenter,
    logger,
    metrics: o.metrics,
  });
  return {
    listen: () => server.listen(),
    followMembers: () => {
      if (membership === undefined) return;
      membership.onChange(refresh);
      refresh();
    },
    close: () => server.close(),
    get address() {
      return server.address;
    },
  };
}

/**
 * The anonymous token's Authorizer, answered without waiting: the last one resolved (nothing is
 * allowed before the first), refreshed in the background when the cache has gone stale.
 */
function anonymous(acl: AclSystem): () => Authorizer {
  let last: Authorizer = {
    accessorId: 'anonymous',
    check: (kind, name, access) => ({ allowed: false, missing: `${kind}:${name} ${access}` }),
  };
  let pending = false;
  const refresh = (): void => {
    if (pending) return;
    pending = true;
    void acl.resolve(undefined).then((a) => {
      last = a;
      pending = false;
    });
  };
  refresh();
  return () => {
    const cached = acl.resolveCached(undefined);
    if (cached !== undefined) return (last = cached);
    refresh();
    return last;
  };
}
