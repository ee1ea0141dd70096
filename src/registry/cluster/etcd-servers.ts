/**
 * @module EtcdServers: the etcd members behind a cluster and which one leads, read from etcd's
 * cluster and maintenance APIs (what `etcdctl member list` and `endpoint status` show). The
 * Consul API's `operator/raft/configuration` describes a cluster-mode agent's consensus with it.
 */
import { Etcd3 } from 'etcd3';
import { errors } from '../../core/errors.js';
import { etcdClientOptions, type EtcdConnection } from '../store/etcd/etcd-connection.js';
import { withTimeout } from '../store/etcd/with-timeout.js';
import type { EtcdServersView } from '../../protocol/cluster-servers.js';

/** How long a read may wait for etcd before the API answers it unavailable. */
const READ_TIMEOUT_MS = 5_000;

const hex = (decimal: string): string => BigInt(decimal).toString(16);

/**
 * Reads the members on demand, over a client of its own (opened at the first read).
 *
 * Contract: `read()` MAY reject with MESHWORK_ERR_STORE_UNAVAILABLE; `close()` is called once,
 * when the agent leaves, and later reads reject.
 */
export class EtcdServers {
  readonly #connection: EtcdConnection;
  #client: Etcd3 | undefined;
  #closed = false;

  constructor(connection: EtcdConnection) {
    this.#connection = connection;
  }

  async read(): Promise<EtcdServersView> {
    if (this.#closed) throw errors.storeUnavailable('the agent is leaving the cluster');
    this.#client ??= new Etcd3(etcdClientOptions(this.#connection));
    const client = this.#client;
    try {
      const [list, status] = await Promise.all([
        withTimeout(client.cluster.memberList({}), READ_TIMEOUT_MS),
        withTimeout(client.maintenance.status({}), READ_TIMEOUT_MS),
      ]);
      return {
        raftIndex: Number(status.raftIndex),
        members: list.members.map((m) => ({
          id: hex(m.ID),
          name: m.name,
          peerUrls: m.peerURLs,
          clientUrls: m.clientURLs,
          leader: m.ID === status.leader,
          learner: m.isLearner,
        })),
      };
    } catch (err) {
      throw errors.storeUnavailable(`etcd unreachable: ${(err as Error).message}`, err);
    }
  }

  close(): void {
    this.#closed = true;
    this.#client?.close();
    this.#client = undefined;
  }
}
