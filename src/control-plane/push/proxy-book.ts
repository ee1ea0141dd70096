/**
 * @module ProxyBook: per connected proxy, what was sent and what it answered (the state behind
 * `meshwork proxy-status`), and the cluster health it last reported (ejections, panic mode),
 * kept as long as the proxy's stream is here.
 */
import type { Clock } from '../../core/clock.js';
import { errors } from '../../core/errors.js';
import type {
  ProxyIdentity,
  ProxyStatus,
  ProxySyncState,
  PushAck,
} from '../../protocol/mesh/snapshot.js';
import type { ClusterHealth } from '../../protocol/mesh/proxy-health.js';
import type { PushMetrics } from './push-metrics.js';

/** What a connection is to the book: something it can end when the same id connects again. */
export interface Connection {
  end(): void;
}

interface Entry {
  readonly proxy: ProxyIdentity;
  readonly connection: Connection;
  readonly connectedAt: number;
  sent: string | undefined;
  /** Monotonic ms when `sent` was written (undefined: it was held already, never written). */
  sentAtMs: number | undefined;
  acked: string | undefined;
  nack: { readonly version: string; readonly error: string } | undefined;
  health: ProxyHealth | undefined;
}

/** What a proxy last reported of its clusters' health (never an empty list). */
interface ProxyHealth {
  readonly clusters: readonly ClusterHealth[];
  /** The list as JSON: a report that repeats it changes nothing. */
  readonly key: string;
  /** When it was first reported (ms since the epoch). */
  readonly since: number;
}

/** The sync state of one proxy: SYNCED when `sent` is ACKed, NACKED when refused, else STALE. */
export function syncState(
  sent: string | undefined,
  acked: string | undefined,
  nackedVersion: string | undefined,
): ProxySyncState {
  if (sent !== undefined && acked === sent) return 'SYNCED';
  if (sent !== undefined && nackedVersion === sent) return 'NACKED';
  return 'STALE';
}

/** The proxies connected to this agent. Not safe to share between agents (it is this one's). */
export class ProxyBook {
  readonly #entries = new Map<string, Entry>();
  readonly #agent: string;
  readonly #clock: Clock;
  readonly #metrics: PushMetrics;
  /** Bumped by every change `list()` shows; blocking reads of the proxies wait on it. */
  #revision = 1;
  readonly #waiters = new Set<() => void>();

  constructor(agent: string, clock: Clock, metrics: PushMetrics) {
    this.#agent = agent;
    this.#clock = clock;
    this.#metrics = metrics;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Grows with every change to what `list()` answers (never 0). */
  get revision(): number {
    return this.#revision;
  }

  /**
   * Resolves once the revision passes `revision`, or after `timeoutMs` (a blocking read of
   * `GET /api/v1/mesh/proxies?index=N&wait=`: the dashboard's live proxy list).
   */
  changed(revision: number, timeoutMs: number): Promise<void> {
    if (this.#revision > revision) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = (): void => {
        this.#clock.clearTimeout(timer);
        this.#waiters.delete(wake);
        resolve();
      };
      const timer = this.#clock.setTimeout(wake, timeoutMs);
      this.#waiters.add(wake);
    });
  }

  /**
   * Records a new stream for `proxy`, ending the one the same id held (a proxy that reconnects
   * before the agent noticed its old connection died). `heldVersion`: the version the proxy
   * says it holds, taken as sent and ACKed.
   */
  connect(proxy: ProxyIdentity, connection: Connection, heldVersion: string | undefined): void {
    const old = this.#entries.get(proxy.id);
    if (old !== undefined) {
      this.#remove(old);
      old.connection.end();
    }
    this.#entries.set(proxy.id, {
      proxy,
      connection,
      connectedAt: this.#clock.now(),
      sent: heldVersion,
      sentAtMs: undefined,
      acked: heldVersion,
      nack: undefined,
      // A proxy that reconnects keeps what it reported (it sends it again only within an interval).
      health: old?.health,
    });
    this.#metrics.connected.inc({ kind: proxy.kind });
    this.#changed();
  }

  /** Forgets the stream of `id`, if `connection` is still the one it holds. */
  disconnect(id: string, connection: Connection): void {
    const entry = this.#entries.get(id);
    if (entry !== undefined && entry.connection === connection) this.#remove(entry);
  }

  /** Records that `version` was written to `id`'s stream. */
  sent(id: string, version: string): void {
    const entry = this.#entries.get(id);
    if (entry === undefined) return;
    entry.sent = version;
    entry.sentAtMs = this.#clock.monotonicMs();
    this.#metrics.pushes.inc();
    this.#changed();
  }

  /**
   * Records an ACK (the proxy runs `version`) or a NACK (it refused `version`, and stays on the
   * last version it ACKed). Throws MESH_PROXY_NOT_CONNECTED when `id` has no stream here.
   */
  answer(ack: PushAck): void {
    const entry = this.#entries.get(ack.id);
    if (entry === undefined) throw errors.meshProxyNotConnected(ack.id);
    if (ack.error === undefined) {
      this.#metrics.acks.inc({ result: 'ack' });
      if (ack.version === entry.sent && entry.sentAtMs !== undefined && entry.acked !== ack.version)
        this.#metrics.pushToAck.observe((this.#clock.monotonicMs() - entry.sentAtMs) / 1000);
      entry.acked = ack.version;
      if (entry.nack?.version === ack.version) entry.nack = undefined;
    } else {
      this.#metrics.acks.inc({ result: 'nack' });
      entry.nack = { version: ack.version, error: ack.error };
    }
    this.#changed();
  }

  /**
   * Records the cluster health `id` reported (its clusters with ejections or in panic; []: none
   * any more). Answers false, keeping nothing, when `id` has no stream here: the health of a
   * proxy is shown by the agent it streams from.
   */
  reportHealth(id: string, clusters: readonly ClusterHealth[]): boolean {
    const entry = this.#entries.get(id);
    if (entry === undefined) return false;
    const key = clusters.length === 0 ? '' : JSON.stringify(clusters);
    if (key === (entry.health?.key ?? '')) return true;
    entry.health = key === '' ? undefined : { clusters, key, since: this.#clock.now() };
    this.#changed();
    return true;
  }

  /** The connected proxies, by id. */
  list(): ProxyStatus[] {
    const out: ProxyStatus[] = [];
    for (const e of this.#entries.values()) {
      const state = syncState(e.sent, e.acked, e.nack?.version);
      out.push({
        ...e.proxy,
        agent: this.#agent,
        connectedAt: e.connectedAt,
        ...(e.sent === undefined ? {} : { sent: e.sent }),
        ...(e.acked === undefined ? {} : { acked: e.acked }),
        state,
        ...(state === 'NACKED' && e.nack !== undefined
          ? { error: e.nack.error, nackedVersion: e.nack.version }
          : {}),
        ...(e.health === undefined
          ? {}
          : { health: e.health.clusters, healthSince: e.health.since }),
      });
    }
    return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Ends every stream (agent shutdown). */
  endAll(): void {
    for (const entry of [...this.#entries.values()]) {
      this.#remove(entry);
      entry.connection.end();
    }
  }

  #remove(entry: Entry): void {
    this.#entries.delete(entry.proxy.id);
    this.#metrics.connected.dec({ kind: entry.proxy.kind });
    this.#changed();
  }

  #changed(): void {
    this.#revision += 1;
    for (const wake of [...this.#waiters]) wake();
  }
}
