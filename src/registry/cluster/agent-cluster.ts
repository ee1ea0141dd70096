/** @module createAgentCluster: an agent's membership and check ownership, alone or in etcd. */
import type { Logger } from '../../core/logger.js';
import type { AgentMember } from '../../protocol/api-types.js';
import type { EtcdConnection } from '../store/etcd/etcd-connection.js';
import type { AgentMembership } from './agent-membership.js';
import { OWN_EVERYTHING, type CheckOwnership } from './check-ownership.js';
import type { EtcdServersView } from '../../protocol/cluster-servers.js';
import { RendezvousOwnership } from './rendezvous-ownership.js';

/** Options of {@link createAgentCluster}. */
export interface AgentClusterOptions {
  /** This agent's node name: its membership key and its identity in ownership. */
  readonly nodeName: string;
  /** Cluster mode: the etcd the agents share (the catalog store's). Absent: the agent is alone. */
  readonly etcd?: EtcdConnection & { readonly prefix: string };
  readonly logger?: Logger;
}

/**
 * The agent's place in its cluster: who else is live, and which instances' checks it runs.
 *
 * Contract: the composition root calls, in this order, `start()` before the registry starts,
 * `join()` once the agent serves (its URL known), and `leave()` once, on close or when startup
 * fails (after `start()` or not). An agent alone is the whole cluster: the calls do nothing,
 * `membership` is undefined and `ownership` owns everything.
 */
export interface AgentCluster {
  /** Which instances' checks this agent runs; the registry's `ownership`. */
  readonly ownership: CheckOwnership;
  /** The live agents, in cluster mode only. */
  readonly membership: AgentMembership | undefined;
  /**
   * The etcd members holding the cluster's state and their leader, in cluster mode; undefined
   * for an agent alone. Rejects with STORE_UNAVAILABLE.
   */
  servers(): Promise<EtcdServersView | undefined>;
  /** Loads the live members and follows them. Rejects with STORE_UNAVAILABLE. */
  start(): Promise<void>;
  /** Announces this agent under a lease kept alive until `leave()`. Rejects with STORE_UNAVAILABLE. */
  join(self: Omit<AgentMember, 'status'>): Promise<void>;
  /** Leaves at once (the others take over this agent's checks) and stops following. */
  leave(): Promise<void>;
}

const ALONE: AgentCluster = Object.freeze({
  ownership: OWN_EVERYTHING,
  membership: undefined,
  servers: async () => undefined,
  start: async () => undefined,
  join: async () => undefined,
  leave: async () => undefined,
});

/**
 * Cluster mode (`etcd` given): agents list each other under etcd leases ({@link EtcdMembership})
 * and split the checks between them by rendezvous hashing ({@link RendezvousOwnership});
 * otherwise this agent is the cluster and runs every check.
 *
 * @example
 * const cluster = await createAgentCluster({ nodeName: 'agent-a', etcd: { endpoints, prefix } });
 * const registry = createRegistry({ store, nodeName: 'agent-a', ownership: cluster.ownership });
 * await cluster.start();
 */
export async function createAgentCluster(options: AgentClusterOptions): Promise<AgentCluster> {
  if (options.etcd === undefined) return ALONE;
  // On use: an agent alone never loads etcd3 (test/unit/cli/commands/agent-footprint.test.ts).
  const [{ EtcdMembership }, { EtcdServers }] = await Promise.all([
    import('./etcd-membership.js'),
    import('./etcd-servers.js'),
  ]);
  const membership = new EtcdMembership({ ...options.etcd, logger: options.logger });
  const servers = new EtcdServers(options.etcd);
  return {
    ownership: new RendezvousOwnership(options.nodeName, membership),
    membership,
    servers: () => servers.read(),
    start: () => membership.start(),
    join: (self) => membership.join(self),
    leave: async () => {
      servers.close();
      await membership.leave();
    },
  };
}
