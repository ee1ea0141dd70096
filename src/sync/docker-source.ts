/**
 * @module DockerSource: the Docker Engine as a {@link RuntimeSource}, through dockerode: follows
 * the events stream, lists the running containers on every (re)connection, and reconnects with
 * a backoff when the daemon goes away.
 */
import Docker from 'dockerode';
import type { Logger } from '../core/logger.js';
import { registrationFromLabels, type ContainerFacts, type LabelOptions } from './docker-labels.js';
import type { RuntimeSource, SourceHandlers, Workload } from './source.js';

/** How to reach the daemon and read its containers. */
export interface DockerSourceOptions extends LabelOptions {
  /** `unix:///var/run/docker.sock`, or `tcp://host:2375` / `http://host:2375`. */
  readonly docker: string;
  readonly logger: Logger;
  /** First and longest wait between reconnection attempts. */
  readonly reconnectMinMs?: number;
  readonly reconnectMaxMs?: number;
}

/** Events that end a container's instance at once (`kill` only for signals that stop it). */
const GONE = new Set(['die', 'stop', 'destroy', 'oom']);
const STOPPING_SIGNALS = new Set(['9', '15', '2', 'SIGKILL', 'SIGTERM', 'SIGINT', 'KILL', 'TERM']);
const CHANGED = new Set(['start', 'pause', 'unpause', 'restart']);

/** The daemon's address as dockerode's connection options. */
export function dockerConnection(url: string): Docker.DockerOptions {
  if (url.startsWith('unix://')) return { socketPath: url.slice('unix://'.length) };
  if (url.startsWith('/')) return { socketPath: url };
  const u = new URL(url.replace(/^tcp:/, 'http:'));
  return {
    protocol: u.protocol === 'https:' ? 'https' : 'http',
    host: u.hostname,
    port: Number(u.port || (u.protocol === 'https:' ? 2376 : 2375)),
  };
}

/** What the labels are read from, out of a `GET /containers/json` entry. */
export function containerFacts(c: Docker.ContainerInfo): ContainerFacts {
  const networks = Object.values(c.NetworkSettings?.Networks ?? {});
  return {
    id: c.Id,
    name: (c.Names[0] ?? c.Id).replace(/^\//, ''),
    labels: c.Labels ?? {},
    hostNetwork: c.HostConfig?.NetworkMode === 'host',
    ports: (c.Ports ?? [])
      .filter((p) => p.Type === 'tcp')
      .map((p) => ({
        privatePort: p.PrivatePort,
        ...(p.PublicPort === undefined ? {} : { publicPort: p.PublicPort }),
        ...(p.IP === undefined ? {} : { ip: p.IP }),
      })),
    ipAddress: networks.find((n) => n.IPAddress !== '')?.IPAddress,
  };
}

/** The Docker source: see the module comment. */
export class DockerSource implements RuntimeSource {
  readonly kind = 'docker';
  readonly #docker: Docker;
  readonly #options: DockerSourceOptions;
  readonly #log: Logger;
  #stream: NodeJS.ReadableStream | undefined;
  #stopped = false;
  #retry: NodeJS.Timeout | undefined;
  #wake: (() => void) | undefined;
  #running: Promise<void> | undefined;

  constructor(options: DockerSourceOptions) {
    this.#options = options;
    this.#docker = new Docker(dockerConnection(options.docker));
    this.#log = options.logger.child({ component: 'docker-source' });
  }

  start(handlers: SourceHandlers): void {
    this.#running = this.#loop(handlers);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retry);
    this.#wake?.();
    (this.#stream as { destroy?: () => void } | undefined)?.destroy?.();
    await this.#running;
  }

  async #loop(handlers: SourceHandlers): Promise<void> {
    const min = this.#options.reconnectMinMs ?? 250;
    const max = this.#options.reconnectMaxMs ?? 5_000;
    let delay = min;
    while (!this.#stopped) {
      const err = await this.#follow(handlers, () => (delay = min));
      if (this.#stopped) return;
      handlers.disconnected(err);
      this.#log.warn({ err: err.message, retryMs: delay }, 'docker connection lost');
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        this.#retry = setTimeout(resolve, delay);
      });
      delay = Math.min(max, delay * 2);
    }
  }

  /**
   * One connection: opens the events stream first (so nothing that happens while the list is
   * read is missed), lists, sends the snapshot, then the events in order. Resolves with why it
   * ended.
   */
  async #follow(handlers: SourceHandlers, connected: () => void): Promise<Error> {
    let stream: NodeJS.ReadableStream;
    try {
      stream = (await this.#docker.getEvents({
        filters: JSON.stringify({ type: ['container'] }),
      })) as NodeJS.ReadableStream;
    } catch (err) {
      return err as Error;
    }
    this.#stream = stream;
    if (this.#stopped) (stream as { destroy?: () => void }).destroy?.();
    let queue: Promise<void> = Promise.resolve();
    const run = (step: () => Promise<void>): void => {
      queue = queue.then(step).catch((err: unknown) => {
        // A list or an event that could not be read leaves the desired set unsure: drop the
        // connection, so the reconnection's full reconcile sets it right.
        this.#log.warn({ err: (err as Error).message }, 'docker event not handled; reconnecting');
        (stream as { destroy?: () => void }).destroy?.();
      });
    };
    run(async () => {
      const list = await this.#docker.listContainers();
      const workloads = list.flatMap((c) => this.#workload(c) ?? []);
      if (this.#stopped) return;
      connected();
      handlers.snapshot(workloads);
    });
    let buffered = '';
    return new Promise<Error>((resolve) => {
      stream.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('utf8');
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl).trim();
          buffered = buffered.slice(nl + 1);
          if (line !== '') run(() => this.#onEvent(line, handlers));
        }
      });
      const end = (err?: Error): void => {
        this.#stream = undefined;
        // The steps already queued run first: a snapshot after a drop must not be overtaken.
        void queue.then(() => resolve(err ?? new Error('docker events stream ended')));
      };
      stream.once('error', end);
      stream.once('end', () => end());
      stream.once('close', () => end());
    });
  }

  async #onEvent(line: string, handlers: SourceHandlers): Promise<void> {
    let ev: {
      Action?: string;
      status?: string;
      id?: string;
      Actor?: { ID?: string; Attributes?: Record<string, string> };
    };
    try {
      ev = JSON.parse(line) as typeof ev;
    } catch {
      this.#log.warn({ line: line.slice(0, 200) }, 'unreadable docker event');
      return;
    }
    const action = (ev.Action ?? ev.status ?? '').split(':')[0] ?? '';
    const id = ev.Actor?.ID ?? ev.id;
    if (id === undefined || this.#stopped) return;
    this.#log.debug({ action, id: id.slice(0, 12) }, 'docker event');
    if (
      GONE.has(action) ||
      (action === 'kill' && STOPPING_SIGNALS.has(ev.Actor?.Attributes?.signal ?? ''))
    ) {
      handlers.remove(id);
      return;
    }
    if (!CHANGED.has(action)) return;
    const [c] = await this.#docker.listContainers({ filters: JSON.stringify({ id: [id] }) });
    if (this.#stopped) return;
    if (c === undefined || (c.State !== 'running' && c.State !== 'paused')) {
      handlers.remove(id);
      return;
    }
    // The list can still show the state before the event (a `pause` listed as running): the
    // event says what the container is now.
    const paused = action === 'pause' ? true : action === 'unpause' ? false : undefined;
    const w = this.#workload(c, paused);
    if (w !== undefined) handlers.upsert(w);
  }

  /** The workload of a listed container; undefined when it carries no service label. */
  #workload(c: Docker.ContainerInfo, paused = c.State === 'paused'): Workload | undefined {
    const facts = containerFacts(c);
    const r = registrationFromLabels(facts, this.#options);
    if (r.kind === 'unlabelled') return undefined;
    return {
      id: c.Id,
      name: facts.name,
      paused,
      registration: r.kind === 'ok' ? r.registration : undefined,
      problems: r.kind === 'invalid' ? r.problems : [],
    };
  }
}
