/** @module createAgentDns: the agent's DNS interface, wired to its registry and cluster members. */
import type { DiscoveredNode } from '../core/discovery.js';
import type { Logger } from '../core/logger.js';
import type { AgentOptions } from '../agent/options.js';
import { createDnsServer, type DnsAddress } from '../dns/dns-server.js';
import { createRegistryDiscovery } from '../registry/discovery-adapter.js';
import type { Registry } from '../registry/registry.js';
import type { AgentMembership } from '../registry/cluster/agent-membership.js';
import type { Registry as MetricsRegistry } from 'prom-client';

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
  const server = createDnsServer({
    discovery: createRegistryDiscovery(o.registry, () => nodes),
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
