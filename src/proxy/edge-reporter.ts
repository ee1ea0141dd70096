/**
 * @module EdgeReporter: sends a proxy's edge counts (edge-counts.ts) to its agent every
 * interval, one ProxyEdgeReport per side that saw calls, off the request path. A report that
 * fails is added back into its counter (within the counter's edge limit) and goes with the next.
 *
 * With `health`, the reports also carry the proxy's cluster health (cluster-health.ts: ejected
 * instances, panic mode): with every periodic report while there is something to say (so an
 * agent the proxy moved to learns it within an interval), and at once when it changed: the
 * reporter looks every `healthCheckIntervalMs` (1 s) and sends a report when the health differs
 * from what the agent was last sent, so a change reaches the agent within about a second and
 * costs at most one report a second however often ejections flap (the debounce).
 */
import type { Clock, TimerHandle } from '../core/clock.js';
import { repeatEvery, type Repeating } from '../core/repeat.js';
import type { Logger } from '../core/logger.js';
import type { ProxyEdgeReport } from '../protocol/mesh/graph.js';
import type { ClusterHealth } from '../protocol/mesh/proxy-health.js';
import type { EdgeCounter } from './edge-counts.js';

/** How often a proxy reports its edges, by default. */
export const DEFAULT_EDGE_REPORT_INTERVAL_MS = 10_000;

/** How often the reporter looks for a change of the clusters' health, by default. */
export const DEFAULT_HEALTH_CHECK_INTERVAL_MS = 1_000;

/** How long a stopping proxy waits for its last report. */
export const EDGE_REPORT_STOP_WAIT_MS = 1_000;

export interface EdgeReporterOptions {
  /** The proxy's id (its snapshot's proxy.id). */
  readonly proxy: string;
  /** The counters of the proxy's sides, by the reporter role they play. */
  readonly sides: readonly {
    readonly reporter: ProxyEdgeReport['reporter'];
    readonly counter: EdgeCounter;
  }[];
  /** Sends one report (the RegistryClient's meshReportEdges); rejects when it was not taken. */
  readonly send: (report: ProxyEdgeReport) => Promise<void>;
  readonly intervalMs: number;
  /**
   * The proxy's clusters with ejections or in panic, now (clusterHealth of its clusters). Called
   * every healthCheckIntervalMs; MUST NOT throw. Absent: the reports carry no health.
   */
  readonly health?: () => readonly ClusterHealth[];
  /** How often to look for a health change (default DEFAULT_HEALTH_CHECK_INTERVAL_MS). */
  readonly healthCheckIntervalMs?: number;
  readonly clock: Clock;
  readonly logger: Logger;
}

/** The health the agent is not known to hold (a send failed): the next flush sends it again. */
const UNKNOWN_HEALTH = '?';

/** A health list as a comparable key ('' for nothing to say). */
const healthKey = (health: readonly ClusterHealth[]): string =>
  health.length === 0 ? '' : JSON.stringify(health);

/** Reports every `intervalMs` until `close()`. */
export class EdgeReporter {
  readonly #o: EdgeReporterOptions;
  readonly #log: Logger;
  #reports: Repeating | undefined;
  #healthChecks: Repeating | undefined;
  /** healthKey of what the agent was last sent ('' at the start: it holds nothing). */
  #sentHealth = '';
  #inFlight: Promise<void> | undefined;
  #lastMs: number;
  #closed = false;
  #failures = 0;

  constructor(options: EdgeReporterOptions) {
    this.#o = options;
    this.#log = options.logger.child({ component: 'edge-reporter' });
    this.#lastMs = options.clock.monotonicMs();
  }

  /** Reports that failed since the start. */
  get failures(): number {
    return this.#failures;
  }

  start(): void {
    if (this.#closed) return;
    this.#reports = repeatEvery(this.#o.clock, this.#o.intervalMs, () => this.flush());
    if (this.#o.health !== undefined)
      this.#healthChecks = repeatEvery(
        this.#o.clock,
        this.#o.healthCheckIntervalMs ?? DEFAULT_HEALTH_CHECK_INTERVAL_MS,
        () => this.#checkHealth(),
      );
  }

  /** Sends what was counted now (the next interval starts from here); resolves when done. */
  flush(): Promise<void> {
    if (this.#inFlight !== undefined) return this.#inFlight;
    const now = this.#o.clock.monotonicMs();
    const intervalMs = Math.max(1, Math.round(now - this.#lastMs));
    this.#lastMs = now;
    const sends: Promise<void>[] = [];
    // The health goes with the first report (alone when no side saw calls): when it changed,
    // or while there is something to say.
    const health = this.#o.health?.();
    const key = health === undefined ? '' : healthKey(health);
    let withHealth = health !== undefined && (key !== '' || key !== this.#sentHealth);
    const send = (report: ProxyEdgeReport, onFailure: () => void): void => {
      const carries = report.health !== undefined;
      sends.push(
        this.#o.send(report).then(
          () => {
            if (carries) this.#sentHealth = key;
          },
          (err: unknown) => {
            this.#failures++;
            if (carries) this.#sentHealth = UNKNOWN_HEALTH;
            onFailure();
            this.#log.debug({ err, edges: report.edges.length }, 'edge report not sent');
          },
        ),
      );
    };
    for (const side of this.#o.sides) {
      const edges = side.counter.drain();
      if (edges.length === 0) continue;
      send(
        {
          proxy: this.#o.proxy,
          reporter: side.reporter,
          intervalMs,
          edges,
          ...(withHealth && health !== undefined ? { health } : {}),
        },
        () => side.counter.add(edges),
      );
      withHealth = false;
    }
    if (withHealth && health !== undefined)
      send(
        { proxy: this.#o.proxy, reporter: 'source', intervalMs, edges: [], health },
        () => undefined,
      );
    if (sends.length === 0) return Promise.resolve();
    const done = Promise.all(sends).then(() => {
      this.#inFlight = undefined;
    });
    this.#inFlight = done;
    return done;
  }

  /**
   * Stops reporting and sends what was counted, waiting at most `waitMs` for the agent (a stop
   * must not wait on an agent that is away): what is not sent by then is dropped.
   */
  async stop(waitMs: number): Promise<void> {
    this.close();
    let timer: TimerHandle | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = this.#o.clock.setTimeout(resolve, waitMs);
    });
    await Promise.race([this.flush(), deadline]);
    if (timer !== undefined) this.#o.clock.clearTimeout(timer);
  }

  /** Stops reporting (what is counted and not sent is dropped). */
  close(): void {
    this.#closed = true;
    this.#reports?.stop();
    this.#healthChecks?.stop();
  }

  /** Sends a report now when the health differs from what the agent was last sent. */
  #checkHealth(): Promise<void> | undefined {
    const health = this.#o.health;
    if (health === undefined || this.#inFlight !== undefined) return undefined;
    return healthKey(health()) === this.#sentHealth ? undefined : this.flush();
  }
}
