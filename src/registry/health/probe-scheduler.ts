/** @module ProbeScheduler: runs the probes of http and tcp checks, at a jittered fixed rate. */
import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import type { CheckKind } from '../../core/types.js';
import { describeError } from './checks/probe-deadline.js';
import { setHealthTimer } from './health-timer.js';
import type { CheckProbe, HealthObserver, ProbeResult } from './health-types.js';
import type { StallMonitor } from './stall-monitor.js';
import type { ProbeRun, TrackedCheck, TrackedInstance } from './tracked-instance.js';

/** Probe intervals vary by ±this fraction, so checks registered together spread out. */
export const PROBE_INTERVAL_JITTER = 0.1;

/** A probe that has not settled this long after its timeout is abandoned as critical. */
export const PROBE_GRACE_MS = 1000;

export interface ProbeSchedulerOptions {
  readonly clock: Clock;
  /** The health component's logger. */
  readonly logger: Logger;
  readonly probes: ReadonlyMap<CheckKind, CheckProbe>;
  readonly observer?: HealthObserver | undefined;
  /** Source of interval jitter, in [0, 1). */
  readonly random: () => number;
  /** Probes of one check run this far apart at the closest (before jitter). */
  readonly minIntervalMs: number;
  readonly stall: StallMonitor;
  /** Receives each verdict; results that straddled an event-loop stall are dropped instead. */
  readonly report: (tracked: TrackedInstance, check: TrackedCheck, result: ProbeResult) => void;
}

/**
 * Probes each started check at once, then every `intervalMs` (at least `minIntervalMs`) ±10%,
 * never overlapping the previous run of the same check. A probe that ignores its timeout is
 * abandoned as critical `PROBE_GRACE_MS` later.
 *
 * @example
 * const scheduler = new ProbeScheduler({ clock, logger, probes, random: Math.random,
 *   minIntervalMs: 1000, stall, report: (tracked, check, result) => apply(tracked, check, result) });
 * scheduler.start(tracked, check);
 */
export class ProbeScheduler {
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #probes: ReadonlyMap<CheckKind, CheckProbe>;
  readonly #observer: HealthObserver | undefined;
  readonly #random: () => number;
  readonly #minIntervalMs: number;
  readonly #stall: StallMonitor;
  readonly #report: ProbeSchedulerOptions['report'];

  constructor(options: ProbeSchedulerOptions) {
    this.#clock = options.clock;
    this.#log = options.logger;
    this.#probes = options.probes;
    this.#observer = options.observer;
    this.#random = options.random;
    this.#minIntervalMs = options.minIntervalMs;
    this.#stall = options.stall;
    this.#report = options.report;
  }

  /** Schedules the check's first probe now; each probe schedules the next. */
  start(tracked: TrackedInstance, check: TrackedCheck): void {
    check.timer = setHealthTimer(this.#clock, () => this.#tick(tracked, check), 0);
  }

  /** Clears the check's next probe and aborts the one in flight, whose result is then dropped. */
  stop(check: TrackedCheck): void {
    if (check.timer !== undefined) this.#clock.clearTimeout(check.timer);
    check.timer = undefined;
    if (check.run !== undefined) {
      const run = check.run;
      this.#endRun(check, run);
      run.controller.abort();
    }
  }

  #tick(tracked: TrackedInstance, check: TrackedCheck): void {
    // Fixed rate, not fixed delay: the next tick is due whether or not this probe finishes.
    check.timer = setHealthTimer(
      this.#clock,
      () => this.#tick(tracked, check),
      this.#jittered(Math.max(check.def.intervalMs, this.#minIntervalMs)),
    );
    if (check.run !== undefined) {
      this.#log.debug(
        { instanceId: tracked.instance.id, checkId: check.def.id },
        'probe skipped: previous still running',
      );
      return;
    }
    void this.#runProbe(tracked, check);
  }

  async #runProbe(tracked: TrackedInstance, check: TrackedCheck): Promise<void> {
    const def = check.def;
    const run: ProbeRun = {
      controller: new AbortController(),
      startedMono: this.#clock.monotonicMs(),
      stallEpoch: this.#stall.epoch,
      backstop: undefined,
    };
    const backstopMs = def.timeoutMs + PROBE_GRACE_MS;
    const backstopDue = run.startedMono + backstopMs;
    run.backstop = setHealthTimer(
      this.#clock,
      () => this.#onBackstop(tracked, check, run, backstopDue),
      backstopMs,
    );
    check.run = run;

    const probe = this.#probes.get(def.kind);
    let result: ProbeResult;
    if (probe === undefined) {
      result = { status: 'critical', output: `no probe for check kind "${def.kind}"` };
    } else {
      try {
        result = await probe.probe(def, run.controller.signal);
      } catch (err) {
        // The contract says probes resolve; one that rejects still yields a verdict.
        result = { status: 'critical', output: `probe failed: ${describeError(err)}` };
      }
    }

    // Cancelled meanwhile: untracked, re-tracked with a new definition, stopped, or abandoned.
    if (check.run !== run) return;
    this.#endRun(check, run);
    const durationMs = this.#clock.monotonicMs() - run.startedMono;
    this.#observer?.checkRun(def.kind, result.status, durationMs);
    if (
      run.stallEpoch !== this.#stall.epoch ||
      durationMs > def.timeoutMs + this.#stall.thresholdMs
    ) {
      // Its deadline likely fired before the loop could read the answer: not the target's fault.
      this.#log.debug(
        { instanceId: tracked.instance.id, checkId: def.id, durationMs },
        'probe result dropped after an event-loop stall',
      );
      return;
    }
    this.#report(tracked, check, result);
  }

  #onBackstop(tracked: TrackedInstance, check: TrackedCheck, run: ProbeRun, dueMono: number): void {
    if (check.run !== run) return;
    this.#endRun(check, run);
    run.controller.abort();
    if (this.#stall.noticeLate(this.#clock.monotonicMs() - dueMono)) return;
    const def = check.def;
    this.#observer?.checkRun(def.kind, 'critical', this.#clock.monotonicMs() - run.startedMono);
    this.#log.warn(
      {
        instanceId: tracked.instance.id,
        checkId: def.id,
        kind: def.kind,
        timeoutMs: def.timeoutMs,
      },
      'probe ignored its timeout; abandoned',
    );
    this.#report(tracked, check, {
      status: 'critical',
      output: `probe did not complete within ${def.timeoutMs} ms`,
    });
  }

  #endRun(check: TrackedCheck, run: ProbeRun): void {
    if (run.backstop !== undefined) this.#clock.clearTimeout(run.backstop);
    run.backstop = undefined;
    if (check.run === run) check.run = undefined;
  }

  #jittered(intervalMs: number): number {
    const r = Math.min(Math.max(this.#random(), 0), 1);
    const factor = 1 + PROBE_INTERVAL_JITTER * (2 * r - 1);
    return Math.max(0, Math.round(intervalMs * factor));
  }
}
