/** @module StallMonitor: tells an event-loop stall from failing services, by timers that fire late. */
import type { Clock, TimerHandle } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import { setHealthTimer } from './health-timer.js';
import type { HealthObserver } from './health-types.js';

/**
 * Period of the monitor's own timer. Not an option: every health timer reports how late it fired,
 * so this only bounds how soon a stall is noticed when no check timer is due.
 */
export const STALL_MONITOR_INTERVAL_MS = 1000;

export interface StallMonitorOptions {
  readonly clock: Clock;
  /** The health component's logger: a stall is logged as the health component's. */
  readonly logger: Logger;
  /** A timer firing more than this late means the event loop stalled. */
  readonly thresholdMs: number;
  readonly observer?: HealthObserver | undefined;
  /**
   * Restarts what the stall voided (TTL deadlines, pending deregistrations). Called for each stall
   * noticed while running, maybe several times for one stall: restarting from "now" is idempotent.
   */
  readonly onStall: () => void;
}

/**
 * Notices event-loop stalls (a long GC, a suspended VM), so that health does not blame services for
 * heartbeats and probe answers the agent could not read. Timers run before the I/O that queued up
 * meanwhile, so a timer firing late is the sign: the monitor's own, every
 * {@link STALL_MONITOR_INTERVAL_MS}, and every health timer, which reports its lateness to
 * {@link StallMonitor.noticeLate}. Stalls are counted in {@link StallMonitor.epoch}, logged and
 * observed once per burst.
 *
 * @example
 * const stall = new StallMonitor({ clock, logger, thresholdMs: 1000, onStall: () => restartTtls() });
 * stall.start();
 * if (stall.noticeLate(clock.monotonicMs() - dueMono)) return; // the stall voided this timer
 */
export class StallMonitor {
  readonly thresholdMs: number;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #observer: HealthObserver | undefined;
  readonly #onStall: () => void;
  #running = false;
  #timer: TimerHandle | undefined;
  #epoch = 0;
  #lastLogMono = Number.NEGATIVE_INFINITY;

  constructor(options: StallMonitorOptions) {
    this.thresholdMs = options.thresholdMs;
    this.#clock = options.clock;
    this.#log = options.logger;
    this.#observer = options.observer;
    this.#onStall = options.onStall;
  }

  /** Counts the stalls noticed while running: a probe started in an earlier epoch straddled one. */
  get epoch(): number {
    return this.#epoch;
  }

  /** Arms the monitor's timer; stalls are acted on until `stop()`. */
  start(): void {
    this.#running = true;
    this.#arm();
  }

  stop(): void {
    this.#running = false;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /**
   * A timer fired `lateMs` after it was due. Answers whether that means a stall; if so, and while
   * running, counts it, logs it and calls `onStall` before answering. A timer that gets true drops
   * what it was due to decide: the stall voided it, and `onStall` has restarted it.
   */
  noticeLate(lateMs: number): boolean {
    if (lateMs <= this.thresholdMs) return false;
    this.#stalled(lateMs);
    return true;
  }

  #arm(): void {
    const dueMono = this.#clock.monotonicMs() + STALL_MONITOR_INTERVAL_MS;
    this.#timer = setHealthTimer(
      this.#clock,
      () => {
        this.noticeLate(this.#clock.monotonicMs() - dueMono);
        this.#arm();
      },
      STALL_MONITOR_INTERVAL_MS,
    );
  }

  #stalled(stalledMs: number): void {
    if (!this.#running) return;
    this.#epoch += 1;
    const nowMono = this.#clock.monotonicMs();
    if (nowMono - this.#lastLogMono > this.thresholdMs) {
      this.#observer?.stall?.(stalledMs);
      this.#log.warn({ stalledMs }, 'event loop stalled; restarting TTL deadlines');
    }
    this.#lastLogMono = nowMono;
    this.#onStall();
  }
}
