/**
 * @module MeshSubscriber: the proxy side of the push protocol. Holds one stream to an agent,
 * applies each snapshot whole or not at all, ACKs or NACKs it, persists the last good one, and
 * starts from that file when no agent answers (static stability).
 */
import { EventEmitter } from 'node:events';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Dispatcher } from 'undici';
import { Agent, request } from './undici.js';
import { registryConnectOptions, type RegistryTlsOptions } from './tls-files.js';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { errors } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type { MeshSnapshot, ProxyIdentity, PushAck, PushFrame } from '../protocol/mesh/snapshot.js';

/** The file under `dataDir` that holds the last good snapshot. */
export const SNAPSHOT_FILE = 'mesh-snapshot.json';

export interface MeshSubscriberOptions {
  /** Agent base URLs; the stream goes to one, and to the next when it fails. */
  readonly registry: readonly string[];
  /** TLS for `https://` agents (see RegistryClientOptions.tls). */
  readonly registryTls?: RegistryTlsOptions | undefined;
  /** ACL token sent on the stream and the ACKs (`X-Consul-Token`): `mesh read` + its service's. */
  readonly token?: string | undefined;
  readonly proxy: ProxyIdentity;
  /** Where the last good snapshot is kept; omitted: nothing is persisted. */
  readonly dataDir?: string;
  /**
   * Puts a snapshot in force, whole or not at all: it returns once the proxy routes by it, or
   * throws (the snapshot is refused, NACKed with the message, and the last good one stays).
   */
  readonly apply: (snapshot: MeshSnapshot) => void;
  readonly logger?: Logger;
  readonly clock?: Clock;
  /** Uniform in [0, 1), for the backoff's jitter. */
  readonly random?: () => number;
  /** Reconnection backoff: doubles from `initialMs` up to `maxMs`, with jitter. */
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
  /** How long `start()` waits for an agent's first snapshot when there is none on disk. */
  readonly startTimeoutMs?: number;
  /** The ping interval assumed when the agent does not say (its header does). */
  readonly pingIntervalMs?: number;
  /** How long an ACK may take. */
  readonly ackTimeoutMs?: number;
}

export const DEFAULT_MESH_SUBSCRIBER_OPTIONS = Object.freeze({
  backoff: Object.freeze({ initialMs: 250, maxMs: 30_000 }),
  startTimeoutMs: 10_000,
  pingIntervalMs: 15_000,
  ackTimeoutMs: 5_000,
});

/** A stream silent for this many ping intervals is taken for dead. */
const SILENT_PINGS = 3;
const PING_INTERVAL_HEADER = 'x-meshwork-ping-interval-ms';

/**
 * Events: `applied` (snapshot, from) after a snapshot is put in force; `nack` (version, error)
 * when `apply` refused one; `answered` (ack) once the agent took an ACK or NACK; `connected`
 * (url) when a stream opens; `disconnected` (url, reason) when it ends or fails.
 */
export interface MeshSubscriberEvents {
  applied: [snapshot: MeshSnapshot, from: 'disk' | 'agent'];
  nack: [version: string, error: string];
  answered: [ack: PushAck];
  connected: [url: string];
  disconnected: [url: string, reason: string];
}

/** Where `start()` found the first snapshot: on disk, from an agent, or nowhere in time. */
export type MeshStartSource = 'disk' | 'agent' | 'none';

/**
 * Subscribes one proxy to its snapshots.
 * @example
 * const sub = new MeshSubscriber({ registry: ['http://127.0.0.1:8500'], proxy, dataDir,
 *   apply: (s) => engine.swap(compile(s)) });
 * await sub.start(); // 'disk' | 'agent' | 'none'
 */
export class MeshSubscriber extends EventEmitter<MeshSubscriberEvents> {
  readonly #registry: readonly string[];
  readonly #proxy: ProxyIdentity;
  readonly #dataDir: string | undefined;
  readonly #apply: (snapshot: MeshSnapshot) => void;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #backoff: { readonly initialMs: number; readonly maxMs: number };
  readonly #startTimeoutMs: number;
  readonly #pingIntervalMs: number;
  readonly #ackTimeoutMs: number;
  readonly #dispatcher: Dispatcher;
  /** The ACL token header, when a token is given. */
  readonly #auth: Record<string, string>;
  #current: MeshSnapshot | undefined;
  #started = false;
  #closed = false;
  #closing: Promise<void> | undefined;
  #running: Promise<void> | undefined;
  #abort: AbortController | undefined;
  /** Ends the open stream (to `url`) with a reason, so that the next one resyncs. */
  #cut: { readonly url: string; readonly end: (reason: string) => void } | undefined;
  #sleep: { timer: TimerHandle; wake: () => void } | undefined;
  /** The newest snapshot not yet handled, and the agent it came from. */
  #pending: { snapshot: MeshSnapshot; url: string } | undefined;
  #handling: Promise<void> | undefined;
  #firstFromAgent: (() => void) | undefined;

  constructor(options: MeshSubscriberOptions) {
    super();
    const d = DEFAULT_MESH_SUBSCRIBER_OPTIONS;
    if (options.registry.length === 0)
      throw errors.validation('registry', 'give at least one agent address');
    this.#registry = options.registry.map((u) => u.replace(/\/+$/, ''));
    this.#proxy = options.proxy;
    this.#dataDir = options.dataDir;
    this.#apply = options.apply;
    this.#log = (options.logger ?? silentLogger).child({ component: 'mesh-subscriber' });
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    this.#backoff = options.backoff ?? d.backoff;
    this.#startTimeoutMs = options.startTimeoutMs ?? d.startTimeoutMs;
    this.#pingIntervalMs = options.pingIntervalMs ?? d.pingIntervalMs;
    this.#ackTimeoutMs = options.ackTimeoutMs ?? d.ackTimeoutMs;
    const connect = registryConnectOptions(options.registryTls);
    this.#dispatcher = new Agent({ keepAliveTimeout: 10_000, ...(connect && { connect }) });
    this.#auth =
      options.token === undefined || options.token === ''
        ? {}
        : { 'x-consul-token': options.token };
  }

  /** The snapshot in force (the last good one), if any. */
  get current(): MeshSnapshot | undefined {
    return this.#current;
  }

  /**
   * Applies the persisted snapshot, if there is a valid one, then connects in the background.
   * Resolves `'disk'` at once when the file served, else `'agent'` once an agent's first
   * snapshot is applied, or `'none'` after `startTimeoutMs` (it keeps trying afterwards).
   */
  async start(): Promise<MeshStartSource> {
    if (this.#started) throw new Error('MeshSubscriber.start() was called already');
    this.#started = true;
    const fromDisk = await this.#loadPersisted();
    const first = new Promise<MeshStartSource>((resolve) => {
      if (fromDisk || this.#closed) {
        resolve(fromDisk ? 'disk' : 'none');
        return;
      }
      const timer = this.#clock.setTimeout(() => resolve('none'), this.#startTimeoutMs);
      timer.unref?.();
      this.#firstFromAgent = () => {
        this.#clock.clearTimeout(timer);
        resolve(this.#current === undefined ? 'none' : 'agent');
      };
    });
    this.#running = this.#run();
    return first;
  }

  /** Closes the stream and stops reconnecting; resolves once an ACK in flight is done. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      this.#abort?.abort();
      this.#wake();
      this.#firstFromAgent?.();
      await this.#running;
      await this.#handling;
      await this.#dispatcher.close();
    })();
    return this.#closing;
  }

  async #run(): Promise<void> {
    let failures = 0;
    for (let turn = 0; !this.#closed; turn++) {
      const url = this.#registry[turn % this.#registry.length] as string;
      const connected = await this.#follow(url);
      if (this.#closed) break;
      failures = connected ? 0 : failures + 1;
      const ceiling = Math.min(this.#backoff.maxMs, this.#backoff.initialMs * 2 ** failures);
      // Half fixed, half random: a restarted agent is not met by every proxy at once.
      await this.#pause(ceiling / 2 + (this.#random() * ceiling) / 2);
    }
  }

  /** Holds one stream to `url` until it ends; answers whether it opened. */
  async #follow(url: string): Promise<boolean> {
    const abort = new AbortController();
    this.#abort = abort;
    const q = new URLSearchParams({
      id: this.#proxy.id,
      kind: this.#proxy.kind,
      name: this.#proxy.name,
      namespace: this.#proxy.namespace,
    });
    if (this.#proxy.upstreams !== undefined) q.set('upstreams', this.#proxy.upstreams.join(','));
    if (this.#current !== undefined) q.set('version', this.#current.version);
    let silence: TimerHandle | undefined;
    let opened = false;
    let reason = 'the agent ended the stream';
    try {
      const res = await request(`${url}/api/v1/mesh/stream?${q.toString()}`, {
        dispatcher: this.#dispatcher,
        signal: abort.signal,
        headers: this.#auth,
        headersTimeout: this.#pingIntervalMs * SILENT_PINGS,
        bodyTimeout: 0,
      });
      if (res.statusCode !== 200) {
        const text = await res.body.text();
        reason = `HTTP ${res.statusCode}: ${text.slice(0, 300)}`;
        this.#log.warn({ url, status: res.statusCode, body: text.slice(0, 300) }, 'stream refused');
        return false;
      }
      opened = true;
      this.#cut = {
        url,
        end: (why) => {
          reason = why;
          abort.abort();
        },
      };
      this.emit('connected', url);
      const header = Number(res.headers[PING_INTERVAL_HEADER]);
      const silentMs =
        SILENT_PINGS * (Number.isFinite(header) && header > 0 ? header : this.#pingIntervalMs);
      const arm = (): void => {
        if (silence !== undefined) this.#clock.clearTimeout(silence);
        silence = this.#clock.setTimeout(
          () => this.#cut?.end(`no frame for ${silentMs} ms`),
          silentMs,
        );
        silence.unref?.();
      };
      arm();
      res.body.setEncoding('utf8');
      let buffered = '';
      for await (const chunk of res.body as AsyncIterable<string>) {
        arm();
        buffered += chunk;
        let end: number;
        while ((end = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, end);
          buffered = buffered.slice(end + 1);
          if (line.trim() !== '') this.#onLine(line, url);
        }
      }
    } catch (err) {
      if (!abort.signal.aborted) reason = (err as Error).message;
    } finally {
      if (silence !== undefined) this.#clock.clearTimeout(silence);
      if (this.#cut?.url === url) this.#cut = undefined;
    }
    if (this.#closed) reason = 'closed';
    if (opened) this.emit('disconnected', url, reason);
    else this.#log.debug({ url, reason }, 'agent unreachable');
    return opened;
  }

  #onLine(line: string, url: string): void {
    let frame: PushFrame;
    try {
      frame = JSON.parse(line) as PushFrame;
    } catch {
      this.#log.warn({ url, line: line.slice(0, 200) }, 'stream frame is not JSON');
      return;
    }
    if (frame.type !== 'snapshot') return;
    if (typeof frame.snapshot?.version !== 'string') {
      this.#log.warn({ url }, 'snapshot frame without a version');
      return;
    }
    // Only the newest waits: one that arrives while another is applied replaces the waiting one.
    this.#pending = { snapshot: frame.snapshot, url };
    this.#handling ??= this.#handlePending().finally(() => (this.#handling = undefined));
  }

  async #handlePending(): Promise<void> {
    for (let next = this.#pending; next !== undefined; next = this.#pending) {
      this.#pending = undefined;
      const { snapshot, url } = next;
      if (snapshot.version === this.#current?.version) {
        await this.#answer(url, { id: this.#proxy.id, version: snapshot.version });
        continue;
      }
      try {
        this.#apply(snapshot);
      } catch (err) {
        const message = (err as Error).message || String(err);
        this.#log.warn({ url, version: snapshot.version, error: message }, 'snapshot refused');
        this.emit('nack', snapshot.version, message);
        await this.#answer(url, {
          id: this.#proxy.id,
          version: snapshot.version,
          error: message.slice(0, 4096),
        });
        continue;
      }
      this.#current = snapshot;
      this.emit('applied', snapshot, 'agent');
      this.#firstFromAgent?.();
      this.#firstFromAgent = undefined;
      await this.#persist(snapshot);
      await this.#answer(url, { id: this.#proxy.id, version: snapshot.version });
    }
  }

  /**
   * Sends an ACK or NACK to the agent whose stream delivered the snapshot. When it does not get
   * there (the agent is away, slow, or has no stream for this id any more), the stream to that
   * agent is ended: the next one says which version this proxy holds, which records the ACK (or
   * has the refused snapshot sent again, and NACKed again).
   */
  async #answer(url: string, ack: PushAck): Promise<void> {
    let failure: string;
    try {
      const res = await request(`${url}/api/v1/mesh/ack`, {
        method: 'POST',
        dispatcher: this.#dispatcher,
        headers: { 'content-type': 'application/json', ...this.#auth },
        body: JSON.stringify(ack),
        headersTimeout: this.#ackTimeoutMs,
        bodyTimeout: this.#ackTimeoutMs,
      });
      const text = await res.body.text();
      if (res.statusCode < 300) {
        this.emit('answered', ack);
        return;
      }
      failure = `HTTP ${res.statusCode}: ${text.slice(0, 300)}`;
    } catch (err) {
      failure = (err as Error).message;
    }
    if (this.#closed) return;
    this.#log.warn({ url, version: ack.version, failure }, 'ACK failed: resyncing');
    if (this.#cut?.url === url) this.#cut.end(`ACK failed (${failure})`);
  }

  /** Writes the snapshot where a restart finds it: a temporary file, fsync, rename, fsync dir. */
  async #persist(snapshot: MeshSnapshot): Promise<void> {
    if (this.#dataDir === undefined) return;
    const file = join(this.#dataDir, SNAPSHOT_FILE);
    const temp = `${file}.${process.pid}.tmp`;
    try {
      await mkdir(this.#dataDir, { recursive: true });
      const fh = await open(temp, 'w', 0o600);
      try {
        await fh.writeFile(JSON.stringify(snapshot));
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(temp, file);
      const dir = await open(this.#dataDir, 'r');
      try {
        await dir.sync();
      } catch {
        // Some file systems refuse fsync on a directory; the rename is done either way.
      } finally {
        await dir.close();
      }
    } catch (err) {
      await rm(temp, { force: true }).catch(() => undefined);
      this.#log.warn({ file, err }, 'cannot persist the snapshot');
    }
  }

  /** Applies the persisted snapshot, if one is there, of this proxy, and `apply` takes it. */
  async #loadPersisted(): Promise<boolean> {
    if (this.#dataDir === undefined) return false;
    const file = join(this.#dataDir, SNAPSHOT_FILE);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        this.#log.warn({ file, err }, 'cannot read the persisted snapshot');
      return false;
    }
    let snapshot: unknown;
    try {
      snapshot = JSON.parse(text) as unknown;
    } catch (err) {
      this.#log.warn({ file, err }, 'the persisted snapshot is not JSON');
      return false;
    }
    const problem = persistedProblem(snapshot, this.#proxy);
    if (problem !== undefined) {
      this.#log.warn({ file, problem }, 'persisted snapshot ignored');
      return false;
    }
    try {
      this.#apply(snapshot as MeshSnapshot);
    } catch (err) {
      this.#log.warn({ file, error: (err as Error).message }, 'persisted snapshot refused');
      return false;
    }
    this.#current = snapshot as MeshSnapshot;
    this.emit('applied', this.#current, 'disk');
    this.#log.info({ file, version: this.#current.version }, 'routing from the persisted snapshot');
    return true;
  }

  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.#closed) {
        resolve();
        return;
      }
      const timer = this.#clock.setTimeout(() => this.#wake(), ms);
      timer.unref?.();
      this.#sleep = { timer, wake: resolve };
    });
  }

  #wake(): void {
    const sleep = this.#sleep;
    this.#sleep = undefined;
    if (sleep === undefined) return;
    this.#clock.clearTimeout(sleep.timer);
    sleep.wake();
  }
}

/**
 * Why a persisted value cannot be this proxy's snapshot (undefined: it can): the fields a proxy
 * reads first must be there, and it must be for the same gateway or service (a sidecar's id
 * changes from run to run; its kind, name and namespace do not).
 */
export function persistedProblem(value: unknown, proxy: ProxyIdentity): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not an object';
  const s = value as Record<string, unknown>;
  if (typeof s.version !== 'string' || s.version === '') return 'version: missing';
  if (!Array.isArray(s.routes)) return 'routes: not a list';
  if (!Array.isArray(s.clusters)) return 'clusters: not a list';
  if (typeof s.egress !== 'object' || s.egress === null) return 'egress: missing';
  const p = s.proxy as Partial<ProxyIdentity> | undefined;
  if (typeof p !== 'object' || p === null) return 'proxy: missing';
  if (p.kind !== proxy.kind || p.name !== proxy.name || p.namespace !== proxy.namespace)
    return `proxy: for ${String(p.kind)} "${String(p.name)}" in "${String(p.namespace)}", not this one`;
  return undefined;
}
