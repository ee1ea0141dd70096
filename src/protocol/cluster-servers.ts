/**
 * @module The etcd members behind a cluster-mode agent, as the registry reads them
 * (registry/cluster/etcd-servers.ts) and the Consul API's operator/raft/configuration shows them.
 */

/** One etcd member. */
export interface EtcdServer {
  /** etcd's member ID, in hex as etcdctl prints it. */
  readonly id: string;
  readonly name: string;
  readonly peerUrls: readonly string[];
  readonly clientUrls: readonly string[];
  /** Whether the member answering the status call sees it as the raft leader. */
  readonly leader: boolean;
  /** A raft learner (no vote) rather than a voting member. */
  readonly learner: boolean;
}

/** The etcd members and the raft index of the member that answered. */
export interface EtcdServersView {
  readonly members: readonly EtcdServer[];
  readonly raftIndex: number;
}
