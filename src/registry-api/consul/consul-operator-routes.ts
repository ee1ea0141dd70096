/**
 * @module The Consul /v1/operator/raft/configuration endpoint, describing Meshwork's consensus
 * honestly. Alone, an agent is its own one-server datacenter: the only server, the leader, a
 * voter. In cluster mode (`--store etcd`) the consensus is etcd's: each etcd member is listed as
 * a voting server (a learner as a non-voter), its raft leader marked, at its peer address; the
 * agents follow as non-voting servers (they hold no vote: they read and write through etcd), at
 * their HTTP address. Needs operator:read, as in Consul.
 */
import type { AgentMember } from '../../protocol/api-types.js';
import type { EtcdServersView } from '../../protocol/cluster-servers.js';
import type { ConsulContext } from './consul-context.js';
import { nodeId } from './consul-shapes.js';
import { checkDatacenter } from './consul-query.js';

/** What the operator routes read beyond the context. */
export interface ConsulOperatorOptions {
  /** The agents of the cluster (this one alone outside cluster mode). */
  readonly members?: () => Promise<readonly AgentMember[]>;
  /** The etcd members in cluster mode; undefined (or absent) for an agent alone. */
  readonly etcdServers?: () => Promise<EtcdServersView | undefined>;
}

/** One server of Consul's `RaftConfigurationResponse`. */
export interface ConsulRaftServer {
  readonly ID: string;
  readonly Node: string;
  readonly Address: string;
  readonly Leader: boolean;
  readonly ProtocolVersion: string;
  readonly Voter: boolean;
  readonly LastIndex: number;
}

/** `host:port` of a URL (etcd's peer URL, an agent's API URL); the URL itself if unparsable. */
function hostPortOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

/** The cluster-mode answer: etcd's members as voters (the leader marked), the agents as non-voters. */
export function clusterRaftServers(
  etcd: EtcdServersView,
  agents: readonly AgentMember[],
): ConsulRaftServer[] {
  return [
    ...etcd.members.map((m) => ({
      ID: m.id,
      Node: m.name === '' ? '(unknown)' : m.name,
      Address: hostPortOf(m.peerUrls[0] ?? ''),
      Leader: m.leader,
      ProtocolVersion: '3',
      Voter: !m.learner,
      // etcd reports the raft index of the member that answered, not of each member.
      LastIndex: m.leader ? etcd.raftIndex : 0,
    })),
    ...agents.map((a) => ({
      ID: nodeId(a.nodeName),
      Node: a.nodeName,
      Address: hostPortOf(a.url),
      Leader: false,
      ProtocolVersion: '3',
      Voter: false,
      LastIndex: 0,
    })),
  ];
}

/** Adds the /v1/operator routes to the context's router. */
export function registerConsulOperatorRoutes(
  ctx: ConsulContext,
  options: ConsulOperatorOptions,
): void {
  const { registry, node, route, q, json } = ctx;

  route(['GET'], '/operator/raft/configuration', async (req, reply) => {
    checkDatacenter(q(req), node.datacenter);
    const etcd = await options.etcdServers?.();
    if (etcd === undefined) {
      const self: ConsulRaftServer = {
        ID: nodeId(node.nodeName),
        Node: node.nodeName,
        Address: `${node.address}:8300`,
        Leader: true,
        ProtocolVersion: '3',
        Voter: true,
        LastIndex: registry.index,
      };
      return json(req, reply, { Servers: [self], Index: registry.index });
    }
    const agents = (await options.members?.()) ?? [];
    return json(req, reply, { Servers: clusterRaftServers(etcd, agents), Index: etcd.raftIndex });
  });
}
