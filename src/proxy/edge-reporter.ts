/**
 * @module EdgeReporter: sends a proxy's edge counts (edge-counts.ts) to its agent every
 * interval, one ProxyEdgeReport per side that saw calls, off the request path. A report that
 * fails is added back into its counter (within the counter's edge limit) and goes with the next.
 */
import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { ProxyEdgeReport } from '../protocol/mesh/graph.js';
import type { EdgeCounter } from './edge-counts.js';

/** How often a proxy reports its edges, by default. */
export const DEFAULT_EDGE_REPORT_INTERVAL_MS = 10_000;

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
  readonly clock: Clock;
  readonly logger: Logger;
}

/** Reports every `intervalMs` until `close()`. */
export class EdgeReporter {
  readonly #o: EdgeReporterOptions;
  readonly #log: Logger;
  #timer: TimerHandle | undefined;
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
    this.#schedule();
  }

  /** Sends what was counted now (the next interval starts from here); resolves when done. */
  flush(): Promise<void> {
    if (this.#inFlight !== undefined) return this.#inFlight;
    const now = this.#o.clock.monotonicMs();
    const intervalMs = Math.max(1, Math.round(now - this.#lastMs));
    this.#lastMs = now;
    const sends: Promise<void>[] = [];
    for (const side of this.#o.sides) {
      const edges = side.counter.drain();
      if (edges.length === 0) continue;
      const report: ProxyEdgeReport = {
        proxy: this.#o.proxy,
        reporter: side.reporter,
        intervalMs,
        edges,
      };
      sends.push(
        this.#o.send(report).catch((err: unknown) => {
          this.#failures++;
          side.counter.add(edges);
          this.#log.debug({ err, edges: edges.length }, 'edge report not sent: kept for the next');
        }),
      );
    }
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
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#timer = this.#o.clock.setTimeout(() => {
      void this.flush().finally(() => this.#schedule());
    }, this.#o.intervalMs);
    this.#timer.unref?.();
  }
}
