/**
 * @module EtcdMembership: agents list each other in cluster mode. Each agent keeps a key under a
 * lease of its own; an agent that dies stops renewing it, and etcd removes it after the TTL. A
 * watch on those keys gives every agent the same live set, from which check ownership follows.
 */
import { Etcd3, type Lease, type Watcher } from 'etcd3';
import { errors } from '../../core/errors.js';
import { silentLogger, type Logger } from '../../core/logger.js';
import type { AgentMember } from '../../protocol/api-types.js';
import { etcdClientOptions, type EtcdConnection } from '../store/etcd/etcd-connection.js';
import { EtcdKeyLayout } from '../store/etcd/etcd-key-layout.js';
import type { AgentMembership } from './agent-membership.js';

/** Options of {@link EtcdMembership}. */
export interface EtcdMembershipOptions extends EtcdConnection {
  readonly prefix: string;
  /** An agent that stops renewing is gone after this long. */
  readonly ttlSeconds?: number;
  readonly logger?: Logger;
}

/**
 * 3 s: an agent killed with -9 loses its checks to the others within about 3–4 s (etcd checks
 * lease expiry twice a second). Shorter leases would flap on a busy agent's event-loop stalls.
 */
export const DEFAULT_ETCD_MEMBERSHIP_OPTIONS = Object.freeze({ ttlSeconds: 3 });

/** The {@link AgentMembership} of cluster mode: member keys `<prefix>m/<nodeName>` under leases. */
export class EtcdMembership implements AgentMembership {
  readonly #client: Etcd3;
  readonly #prefix: string;
  readonly #ttlSeconds: number;
  readonly #log: Logger;
  #lease: Lease | undefined;
  #watcher: Watcher | undefined;
  /** Live members by node name, as the watch delivered them. */
  readonly #live = new Map<string, Omit<AgentMember, 'status'>>();
  readonly #listeners = new Set<() => void>();
  #closed = false;

  constructor(options: EtcdMembershipOptions) {
    this.#client = new Etcd3(etcdClientOptions(options));
    this.#prefix = new EtcdKeyLayout(options.prefix).members();
    this.#ttlSeconds = options.ttlSeconds ?? DEFAULT_ETCD_MEMBERSHIP_OPTIONS.ttlSeconds;
    this.#log = (options.logger ?? silentLogger).child({ component: 'membership' });
  }

  /** Loads the live members and follows them. Call before `join()`. */
  async start(): Promise<void> {
    let res;
    try {
      res = await this.#client.getAll().prefix(this.#prefix).exec();
    } catch (err) {
      throw errors.storeUnavailable(`etcd unreachable: ${(err as Error).message}`, err);
    }
    for (const kv of res.kvs) this.#set(kv.key.toString('utf8'), kv.value.toString('utf8'));
    this.#watcher = await this.#client
      .watch()
      .prefix(this.#prefix)
      .startRevision(String(Number(res.header.revision) + 1))
      .create();
    this.#watcher.on('put', (kv) => {
      if (this.#set(kv.key.toString('utf8'), kv.value.toString('utf8'))) this.#changed();
    });
    this.#watcher.on('delete', (kv) => {
      const name = kv.key.toString('utf8').slice(this.#prefix.length);
      if (this.#live.delete(name)) {
        this.#log.info({ nodeName: name }, 'agent left the cluster');
        this.#changed();
      }
    });
    this.#watcher.on('error', (err) =>
      this.#log.error({ err: err.message }, 'membership watch failed'),
    );
  }

  /** Announces this agent under a lease that the client keeps alive. */
  async join(member: Omit<AgentMember, 'status'>): Promise<void> {
    const lease = this.#client.lease(this.#ttlSeconds);
    lease.on('lost', (err) => {
      if (this.#closed) return;
      this.#log.warn({ err: err.message }, 'membership lease lost; rejoining');
      this.#lease = undefined;
      this.#rejoin(member);
    });
    try {
      await lease.put(this.#prefix + member.nodeName).value(JSON.stringify(member));
    } catch (err) {
      lease.removeAllListeners('lost');
      void lease.revoke().catch(() => undefined);
      throw errors.storeUnavailable(`cannot join the cluster: ${(err as Error).message}`, err);
    }
    this.#lease = lease;
  }

  /** The agents whose lease is alive, by node name. */
  async members(): Promise<AgentMember[]> {
    let values: Record<string, string>;
    try {
      values = await this.#client.getAll().prefix(this.#prefix).strings();
    } catch (err) {
      throw errors.storeUnavailable(`etcd unreachable: ${(err as Error).message}`, err);
    }
    return Object.values(values)
      .map((v) => ({ ...(JSON.parse(v) as Omit<AgentMember, 'status'>), status: 'alive' as const }))
      .sort((a, b) => (a.nodeName < b.nodeName ? -1 : a.nodeName > b.nodeName ? 1 : 0));
  }

  isLive(nodeName: string): boolean {
    return this.#live.has(nodeName);
  }

  liveNames(): Iterable<string> {
    return this.#live.keys();
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Leaves at once (revokes the lease), stops watching and closes the client. */
  async leave(): Promise<void> {
    this.#closed = true;
    this.#listeners.clear();
    const lease = this.#lease;
    this.#lease = undefined;
    if (lease !== undefined) {
      lease.removeAllListeners('lost');
      await lease.revoke().catch(() => undefined);
    }
    await this.#watcher?.cancel().catch(() => undefined);
    this.#client.close();
  }

  // ---- internals -------------------------------------------------------------------------

  /** Records a member key; answers whether the set of names changed. */
  #set(key: string, value: string): boolean {
    const name = key.slice(this.#prefix.length);
    let member: Omit<AgentMember, 'status'>;
    try {
      member = JSON.parse(value) as Omit<AgentMember, 'status'>;
    } catch {
      this.#log.error({ key }, 'unreadable member key skipped');
      return false;
    }
    const isNew = !this.#live.has(name);
    this.#live.set(name, member);
    if (isNew) this.#log.info({ nodeName: name, url: member.url }, 'agent joined the cluster');
    return isNew;
  }

  #changed(): void {
    for (const l of this.#listeners) {
      try {
        l();
      } catch (err) {
        this.#log.error({ err: (err as Error).message }, 'membership listener failed');
      }
    }
  }

  #rejoin(member: Omit<AgentMember, 'status'>): void {
    if (this.#closed) return;
    this.join(member).catch((e: unknown) => {
      this.#log.error({ err: (e as Error).message }, 'cannot rejoin the cluster; retrying in 1 s');
      setTimeout(() => this.#rejoin(member), 1_000).unref();
    });
  }
}
