/**
 * @module AppHealthCheck: the sidecar probes its app (HTTP GET on a path, else a TCP connect)
 * with the thresholds the registry's checks have (successes before passing, failures before
 * critical, a start period in which failures do not count), on an injected clock. The sidecar
 * reports the decided status to the registry through a TTL check's heartbeats.
 */
import { EventEmitter } from 'node:events';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type { SidecarHealthOptions } from './options.js';

/** The app's health as the sidecar decides it. */
export type AppHealthStatus = 'passing' | 'critical';

/** One probe's result. */
export interface AppProbeResult {
  readonly ok: boolean;
  readonly output: string;
}

/**
 * Probes the app once. MUST resolve (never reject) and MUST give up when `signal` aborts (the
 * check's timeout), resolving a failure.
 */
export type AppProbe = (signal: AbortSignal) => Promise<AppProbeResult>;

/** Everything the state machine remembers. */
export interface AppHealthState {
  readonly status: AppHealthStatus;
  readonly output: string;
  /** False until a threshold is reached: the status is only the initial `critical`. */
  readonly settled: boolean;
  readonly successes: number;
  /** Counted failures only (not those in the start period). */
  readonly failures: number;
}

export const INITIAL_APP_HEALTH: AppHealthState = Object.freeze({
  status: 'critical',
  output: 'no probe has run yet',
  settled: false,
  successes: 0,
  failures: 0,
});

/**
 * One result applied to the state, as the registry's check machine applies one: passing after
 * `successesBeforePassing` consecutive successes; critical after `failuresBeforeCritical`
 * consecutive failures counted outside the start period (`inStartPeriod`).
 */
export function nextAppHealth(
  state: AppHealthState,
  result: AppProbeResult,
  thresholds: Pick<SidecarHealthOptions, 'successesBeforePassing' | 'failuresBeforeCritical'>,
  inStartPeriod: boolean,
): AppHealthState {
  if (result.ok) {
    const successes = Math.min(state.successes + 1, thresholds.successesBeforePassing);
    const passing = successes >= thresholds.successesBeforePassing;
    return {
      status: passing ? 'passing' : state.status,
      output: result.output,
      settled: state.settled || passing,
      successes,
      failures: 0,
    };
  }
  if (inStartPeriod) return { ...state, output: result.output, successes: 0 };
  const failures = Math.min(state.failures + 1, thresholds.failuresBeforeCritical);
  const critical = failures >= thresholds.failuresBeforeCritical;
  return {
    status: critical ? 'critical' : state.status,
    output: result.output,
    settled: state.settled || critical,
    successes: 0,
    failures,
  };
}

/** HTTP GET `http://host:port<path>`: 2xx passes, anything else fails. */
export function httpAppProbe(host: string, port: number, path: string): AppProbe {
  const label = `HTTP GET http://${host}:${port}${path}`;
  return (signal) =>
    new Promise((resolve) => {
      const req = httpRequest({ host, port, path, method: 'GET', agent: false, signal }, (res) => {
        res.resume();
        const code = res.statusCode ?? 0;
        resolve({ ok: code >= 200 && code < 300, output: `${label}: ${code}` });
      });
      req.setHeader('user-agent', 'meshwork-sidecar-health-check');
      req.on('error', (err) =>
        resolve({ ok: false, output: `${label}: ${signal.aborted ? 'timed out' : err.message}` }),
      );
      req.end();
    });
}

/** TCP connect to `host:port`: accepted passes. */
export function tcpAppProbe(host: string, port: number): AppProbe {
  const label = `TCP connect ${host}:${port}`;
  return (signal) =>
    new Promise((resolve) => {
      const socket = connect({ host, port, signal });
      socket.once('connect', () => {
        socket.destroy();
        resolve({ ok: true, output: `${label}: connected` });
      });
      socket.once('error', (err) => {
        socket.destroy();
        resolve({ ok: false, output: `${label}: ${signal.aborted ? 'timed out' : err.message}` });
      });
    });
}

export interface AppHealthCheckOptions {
  readonly probe: AppProbe;
  readonly health: SidecarHealthOptions;
  readonly clock?: Clock;
  readonly logger?: Logger;
}

/** Events: `change` (state) when the status changes; `result` (state, probe) after every probe. */
export interface AppHealthCheckEvents {
  change: [state: AppHealthState];
  result: [state: AppHealthState, probe: AppProbeResult];
}

/** Probes the app every `intervalMs` from `start()` until `stop()`. */
export class AppHealthCheck extends EventEmitter<AppHealthCheckEvents> {
  readonly #probe: AppProbe;
  readonly #health: SidecarHealthOptions;
  readonly #clock: Clock;
  readonly #log: Logger;
  #state: AppHealthState = INITIAL_APP_HEALTH;
  #startedAt = 0;
  #timer: TimerHandle | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;
  #probes = { passed: 0, failed: 0 };

  constructor(options: AppHealthCheckOptions) {
    super();
    this.#probe = options.probe;
    this.#health = options.health;
    this.#clock = options.clock ?? systemClock;
    this.#log = (options.logger ?? silentLogger).child({ component: 'app-health' });
  }

  get state(): AppHealthState {
    return this.#state;
  }

  /** Probe results so far, by outcome. */
  get probes(): { readonly passed: number; readonly failed: number } {
    return this.#probes;
  }

  /** Starts probing at once; the start period runs from now. */
  start(): void {
    if (this.#timer !== undefined || this.#running !== undefined || this.#stopped) return;
    this.#startedAt = this.#clock.monotonicMs();
    this.#schedule(0);
  }

  /** Stops probing; resolves once a probe in flight is done. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.#running = this.#once().finally(() => (this.#running = undefined));
    }, ms);
    this.#timer.unref?.();
  }

  async #once(): Promise<void> {
    const abort = new AbortController();
    const deadline = this.#clock.setTimeout(() => abort.abort(), this.#health.timeoutMs);
    deadline.unref?.();
    let result: AppProbeResult;
    try {
      result = await this.#probe(abort.signal);
    } finally {
      this.#clock.clearTimeout(deadline);
    }
    if (this.#stopped) return;
    if (result.ok) this.#probes.passed++;
    else this.#probes.failed++;
    const inStartPeriod = this.#clock.monotonicMs() < this.#startedAt + this.#health.startPeriodMs;
    const before = this.#state;
    this.#state = nextAppHealth(before, result, this.#health, inStartPeriod);
    this.emit('result', this.#state, result);
    if (this.#state.status !== before.status || (!before.settled && this.#state.settled)) {
      const level = this.#state.status === 'passing' ? 'info' : 'warn';
      this.#log[level]({ status: this.#state.status, output: this.#state.output }, 'app health');
      this.emit('change', this.#state);
    }
    this.#schedule(this.#health.intervalMs);
  }
}
