/**
 * @module EtcdMembership: agents list each other in cluster mode. Each agent keeps a key under a
 * lease of its own; an agent that dies stops renewing it, and etcd removes it after the TTL.
 */
import { Etcd3, type Lease } from 'etcd3';
import { errors } from '../../../core/errors.js';
import { silentLogger, type Logger } from '../../../core/logger.js';
import type { AgentMember } from '../../../protocol/api-types.js';

export interface EtcdMembershipOptions {
  readonly endpoints: readonly string[];
  readonly prefix: string;
  /** An agent that stops renewing is gone after this long. */
  readonly ttlSeconds?: number;
  readonly logger?: Logger;
}

export const DEFAULT_ETCD_MEMBERSHIP_OPTIONS = Object.freeze({ ttlSeconds: 5 });

export class EtcdMembership {
  readonly #client: Etcd3;
  readonly #prefix: string;
  readonly #ttlSeconds: number;
  readonly #log: Logger;
  #lease: Lease | undefined;

  constructor(options: EtcdMembershipOptions) {
    this.#client = new Etcd3({ hosts: [...options.endpoints] });
    this.#prefix = `${options.prefix}m/`;
    this.#ttlSeconds = options.ttlSeconds ?? DEFAULT_ETCD_MEMBERSHIP_OPTIONS.ttlSeconds;
    this.#log = (options.logger ?? silentLogger).child({ component: 'membership' });
  }

  /** Announces this agent under a lease that the client keeps alive. */
  async join(member: Omit<AgentMember, 'status'>): Promise<void> {
    const lease = this.#client.lease(this.#ttlSeconds);
    lease.on('lost', (err) => {
      this.#log.warn({ err: err.message }, 'membership lease lost; rejoining');
      this.#lease = undefined;
      this.join(member).catch((e: unknown) =>
        this.#log.error({ err: (e as Error).message }, 'cannot rejoin the cluster'),
      );
    });
    try {
      await lease.put(this.#prefix + member.nodeName).value(JSON.stringify(member));
    } catch (err) {
      throw errors.storeUnavailable(`cannot join the cluster: ${(err as Error).message}`, err);
    }
    this.#lease = lease;
  }

  /** The agents whose lease is alive, by node name. */
  async members(): Promise<AgentMember[]> {
    const values = await this.#client.getAll().prefix(this.#prefix).strings();
    return Object.values(values)
      .map((v) => ({ ...(JSON.parse(v) as Omit<AgentMember, 'status'>), status: 'alive' as const }))
      .sort((a, b) => (a.nodeName < b.nodeName ? -1 : a.nodeName > b.nodeName ? 1 : 0));
  }

  /** Leaves at once (revokes the lease) and closes the client. */
  async leave(): Promise<void> {
    const lease = this.#lease;
    this.#lease = undefined;
    if (lease !== undefined) {
      lease.removeAllListeners('lost');
      await lease.revoke().catch(() => undefined);
    }
    this.#client.close();
  }
}
