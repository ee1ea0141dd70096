/** @module HealthManager: runs every check of every local instance and persists status changes. */
import { isDeepStrictEqual } from 'node:util';
import type { Clock, TimerHandle } from '../../core/clock.js';
import { errors } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type {
  CheckDefinition,
  CheckKind,
  CheckState,
  CheckStatus,
  Instance,
} from '../../core/types.js';
import {
  applyCheckResult,
  createCheckMachineState,
  toCheckState,
  type CheckMachineState,
} from './check-machine.js';
import { closeProbes, createDefaultProbes } from './checks/index.js';
import { describeError } from './checks/probe-deadline.js';
import { DeadlineQueue } from './deadline-queue.js';
import { DEFAULT_CHECK_FLOORS } from '../../protocol/limits.js';
import type { CheckProbe, HealthHost, HealthObserver, ProbeResult } from './health-types.js';

/** Defaults of the tunables of {@link HealthManagerOptions}. */
export const DEFAULT_HEALTH_MANAGER_OPTIONS = Object.freeze({
  /** A timer firing this much later than scheduled means the event loop stalled. */
  stallThresholdMs: 1000,
  /** Period of the stall monitor. */
  stallMonitorIntervalMs: 1000,
  /** Probe intervals vary by ±this fraction, so checks registered together spread out. */
  intervalJitter: 0.1,
  /** A probe that has not settled this long after its timeout is abandoned as critical. */
  probeGraceMs: 1000,
});

export interface HealthManagerOptions {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly host: HealthHost;
  /**
   * Probes by kind. Default: {@link createDefaultProbes} on `clock`, owned (and closed by `stop()`)
   * by the manager; probes passed in are the caller's to close.
   */
  readonly probes?: ReadonlyMap<CheckKind, CheckProbe>;
  readonly observer?: HealthObserver;
  /** Source of interval jitter, in [0, 1). Default: Math.random. */
  readonly random?: () => number;
  /** Default: {@link DEFAULT_HEALTH_MANAGER_OPTIONS}.stallThresholdMs. */
  readonly stallThresholdMs?: number;
  /**
   * Whether this agent runs an instance's checks (cluster mode: one owner per instance). Checks
   * of instances it does not own are tracked (heartbeats still apply to them) but not run: no
   * probes, no TTL deadlines, no deregistration. Re-read by {@link HealthManager.reconcileOwnership}.
   * Default: owns everything.
   */
  readonly owns?: (instanceId: string) => boolean;
  /**
   * TTL deadlines are kept outside (cluster mode: etcd leases): the manager arms no TTL timers and
   * learns of expiries from {@link HealthManager.ttlExpired}. Default false.
   */
  readonly externalTtl?: boolean;
  /** Names this agent to HTTP check targets (default probes only). */
  readonly agentName?: string;
  /**
   * Probes of one check run this far apart at the closest (before the ±10% jitter), whatever its
   * stored interval (a check stored before the floors existed, or written by another agent).
   * Default: the interval floor.
   */
  readonly minIntervalMs?: number;
}

/** Outcome of {@link HealthManager.heartbeat}. */
export type HeartbeatOutcome = 'ok' | 'not-found' | 'no-ttl-check';

interface ProbeRun {
  readonly controller: AbortController;
  readonly startedMono: number;
  /** Stall counter when the run started: a stall during the run voids its result. */
  readonly stallEpoch: number;
  backstop: TimerHandle | undefined;
}

interface TrackedCheck {
  readonly def: CheckDefinition;
  machine: CheckMachineState;
  /** Next probe (http, tcp). TTL checks use the manager's deadline queue instead. */
  timer: TimerHandle | undefined;
  /**
   * TTL checks: monotonic ms of the deadline. A heartbeat only moves this; the queued entry is
   * re-queued for the rest when it falls due early, so heartbeats allocate nothing.
   */
  ttlDueMono: number;
  /** TTL checks: an entry for this check (of this generation) is in the deadline queue. */
  ttlQueued: boolean;
  /** Bumped when the check stops: queued entries of older generations are stale. */
  ttlGeneration: number;
  run: ProbeRun | undefined;
  deregisterTimer: TimerHandle | undefined;
  /** The last state handed to a write, to tell whether a failed write is still worth retrying. */
  lastQueued: CheckState | undefined;
}

/** An entry of the TTL deadline queue. */
interface TtlEntry {
  readonly tracked: TrackedInstance;
  readonly check: TrackedCheck;
  readonly generation: number;
}

interface TrackedInstance {
  instance: Instance;
  /** In definition order; an array, not a Map: instances have few checks, and many instances. */
  checks: TrackedCheck[];
  deregisterRequested: boolean;
  /** This agent runs the instance's checks (always true outside cluster mode). */
  owned: boolean;
}

/**
 * Runs the checks of the agent's instances: probes (http, tcp) every `intervalMs` with jitter,
 * TTL deadlines reset by heartbeats, a {@link applyCheckResult} machine per check, and one
 * `host.writeStates()` per batch of status changes.
 *
 * Two guards keep a hiccup of the agent from failing healthy instances (no mass expiry):
 * - TTL deadlines start when `track()` (or `start()`) runs, never from persisted times, so
 *   services get a full TTL to reach a restarted agent.
 * - A timer that fires more than `stallThresholdMs` late means the event loop stalled; timers run
 *   before the I/O that queued up meanwhile (heartbeats, probe responses), so on a stall every TTL
 *   deadline restarts from the end of the stall, pending deregistrations wait one more check
 *   period, and probe results that straddle the stall are dropped.
 *
 * @example
 * const health = createHealthManager({ clock, logger, host });
 * health.start();
 * for (const v of views) health.track(v.instance, v.checks);
 * health.heartbeat('web-1', 'passing', 'ok'); // 'ok' | 'not-found' | 'no-ttl-check'
 */
export class HealthManager {
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #host: HealthHost;
  readonly #probes: ReadonlyMap<CheckKind, CheckProbe>;
  readonly #ownsProbes: boolean;
  readonly #observer: HealthObserver | undefined;
  readonly #random: () => number;
  readonly #stallThresholdMs: number;
  readonly #minIntervalMs: number;
  readonly #owns: (instanceId: string) => boolean;
  readonly #externalTtl: boolean;
  readonly #instances = new Map<string, TrackedInstance>();
  /** Every TTL deadline, on one timer. */
  readonly #ttlQueue: DeadlineQueue<TtlEntry>;
  #running = false;
  #monitor: TimerHandle | undefined;
  #stallEpoch = 0;
  #lastStallLogMono = Number.NEGATIVE_INFINITY;
  readonly #pending = new Map<string, CheckState>();
  readonly #unwritten = new Map<string, CheckState>();
  #flushQueued = false;
  /** The latest write handed to the host (settled, never rejects). */
  #lastWrite: Promise<void> = Promise.resolve();

  constructor(options: HealthManagerOptions) {
    const stallThresholdMs =
      options.stallThresholdMs ?? DEFAULT_HEALTH_MANAGER_OPTIONS.stallThresholdMs;
    if (!(Number.isFinite(stallThresholdMs) && stallThresholdMs > 0)) {
      throw errors.validation('stallThresholdMs', 'must be a positive number of milliseconds');
    }
    this.#clock = options.clock;
    this.#log = options.logger.child({ component: 'health' });
    this.#host = options.host;
    this.#ownsProbes = options.probes === undefined;
    this.#probes =
      options.probes ??
      createDefaultProbes({
        clock: options.clock,
        ...(options.agentName === undefined ? {} : { agentName: options.agentName }),
      });
    this.#observer = options.observer;
    this.#random = options.random ?? Math.random;
    this.#stallThresholdMs = stallThresholdMs;
    this.#minIntervalMs = options.minIntervalMs ?? DEFAULT_CHECK_FLOORS.intervalMs;
    this.#owns = options.owns ?? (() => true);
    this.#externalTtl = options.externalTtl ?? false;
    this.#ttlQueue = new DeadlineQueue(options.clock, (due, lateMs) => this.#onTtlDue(due, lateMs));
  }

  /** Starts the checks of every tracked instance and the stall monitor. Idempotent. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#armMonitor();
    for (const tracked of this.#instances.values()) {
      for (const check of tracked.checks) this.#startCheck(tracked, check);
    }
  }

  /**
   * Clears every timer and aborts in-flight probes; tracked instances and their states stay, and
   * `start()` resumes them. Closes the probes the manager created.
   */
  async stop(): Promise<void> {
    this.#running = false;
    if (this.#monitor !== undefined) this.#clock.clearTimeout(this.#monitor);
    this.#monitor = undefined;
    for (const tracked of this.#instances.values()) {
      for (const check of tracked.checks) this.#stopCheck(check);
    }
    this.#ttlQueue.clear();
    if (this.#ownsProbes) await closeProbes(this.#probes);
  }

  /**
   * Takes charge of an instance's checks; call on registration, on update and, at agent start,
   * for every stored instance with its persisted `states`. Checks whose definition is unchanged
   * keep their machine and schedule; new or changed checks start over (seeded from `states`),
   * with an immediate first probe or a full TTL; removed checks stop.
   */
  track(instance: Instance, states: readonly CheckState[]): void {
    const persisted = new Map<string, CheckState>();
    for (const s of states) if (s.instanceId === instance.id) persisted.set(s.checkId, s);

    let tracked = this.#instances.get(instance.id);
    if (tracked === undefined) {
      tracked = {
        instance,
        checks: [],
        deregisterRequested: false,
        owned: this.#owns(instance.id),
      };
      this.#instances.set(instance.id, tracked);
    } else {
      tracked.instance = instance;
    }

    const previous = tracked.checks;
    for (const check of previous) {
      if (instance.checks.some((d) => d.id === check.def.id)) continue;
      this.#stopCheck(check);
      this.#forgetWrites(instance.id, check.def.id);
    }

    const now = this.#clock.now();
    const started: TrackedCheck[] = [];
    // map() sizes the array exactly; push() would reserve 17 slots for an instance's one check.
    tracked.checks = instance.checks.map((def) => {
      const existing = previous.find((c) => c.def.id === def.id);
      // Key order does not matter to isDeepStrictEqual, so a definition read back from the store
      // compares equal to the one registered.
      if (existing !== undefined && isDeepStrictEqual(existing.def, def)) return existing;
      if (existing !== undefined) this.#stopCheck(existing);
      // This agent is the only writer of its checks' states, so a decided in-memory state is at
      // least as fresh as the stored one.
      const carried =
        existing?.machine.settled === true
          ? toCheckState(instance.id, def.id, existing.machine)
          : undefined;
      const check: TrackedCheck = {
        def,
        machine: createCheckMachineState(def, now, carried ?? persisted.get(def.id)),
        timer: undefined,
        ttlDueMono: 0,
        ttlQueued: false,
        ttlGeneration: 0,
        run: undefined,
        deregisterTimer: undefined,
        lastQueued: existing?.lastQueued,
      };
      started.push(check);
      return check;
    });
    if (this.#running) for (const check of started) this.#startCheck(tracked, check);
  }

  /** Stops everything for an instance; results still in flight are dropped. */
  untrack(instanceId: string): void {
    const tracked = this.#instances.get(instanceId);
    if (tracked === undefined) return;
    for (const check of tracked.checks) {
      this.#stopCheck(check);
      this.#forgetWrites(instanceId, check.def.id);
    }
    this.#instances.delete(instanceId);
  }

  /**
   * Applies a heartbeat to every TTL check of the instance (or only to `checkId`): restarts its
   * TTL and feeds the result to its machine. Writes only if a status changes.
   */
  heartbeat(
    instanceId: string,
    status: CheckStatus,
    output: string,
    checkId?: string,
  ): HeartbeatOutcome {
    const tracked = this.#instances.get(instanceId);
    if (tracked === undefined) return 'not-found';
    let found = false;
    for (const check of tracked.checks) {
      if (check.def.kind !== 'ttl' || (checkId !== undefined && check.def.id !== checkId)) continue;
      found = true;
      if (this.#running && tracked.owned) this.#armTtl(tracked, check);
      this.#apply(tracked, check, { status, output });
    }
    return found ? 'ok' : 'no-ttl-check';
  }

  /**
   * Re-reads ownership for every tracked instance: starts the checks of instances this agent now
   * owns and stops those of instances it no longer owns (their machines stay, for heartbeats).
   * Answers the ids of the instances it gained.
   */
  reconcileOwnership(): string[] {
    const gained: string[] = [];
    for (const tracked of this.#instances.values()) {
      const owned = this.#owns(tracked.instance.id);
      if (owned === tracked.owned) continue;
      tracked.owned = owned;
      if (owned) {
        gained.push(tracked.instance.id);
        if (this.#running) for (const check of tracked.checks) this.#startCheck(tracked, check);
      } else {
        for (const check of tracked.checks) this.#stopCheck(check);
      }
    }
    return gained;
  }

  /** Whether this agent runs the instance's checks (false when untracked). */
  owns(instanceId: string): boolean {
    return this.#instances.get(instanceId)?.owned === true;
  }

  /**
   * An external TTL deadline passed (`externalTtl`): counts one failure of the check, as a local
   * deadline would. Only the owner acts. When the check is not critical yet (thresholds, start
   * period), asks the host to arm a new deadline, so the next silent TTL counts too.
   */
  ttlExpired(instanceId: string, checkId: string): void {
    const tracked = this.#instances.get(instanceId);
    if (tracked === undefined || !tracked.owned || !this.#running) return;
    const check = tracked.checks.find((c) => c.def.id === checkId);
    if (check === undefined || check.def.kind !== 'ttl') return;
    this.#apply(tracked, check, { status: 'critical', output: 'TTL expired' });
    if (check.machine.status !== 'critical' && this.#host.renewTtl !== undefined) {
      this.#host.renewTtl(instanceId, checkId).catch((err: unknown) => {
        this.#log.warn({ instanceId, checkId, err: describeError(err) }, 'TTL renewal failed');
      });
    }
  }

  /**
   * A check state persisted by someone (cluster mode: another agent took a heartbeat, or an
   * earlier owner wrote it). When its status differs from this agent's machine, the machine
   * restarts from it, so the next result is judged against what readers see. Writes nothing.
   */
  adopt(state: CheckState): void {
    const tracked = this.#instances.get(state.instanceId);
    const check = tracked?.checks.find((c) => c.def.id === state.checkId);
    if (tracked === undefined || check === undefined) return;
    const m = check.machine;
    if (m.settled && m.status === state.status && m.startedOnce === state.startedOnce) return;
    check.machine = createCheckMachineState(check.def, this.#clock.now(), state);
    this.#syncDeregister(tracked, check, 0); // clears a pending deregistration if not critical
  }

  /**
   * The current in-memory state of each check of an instance ([] if untracked). Includes checks
   * still at their `initialStatus`, which are not persisted until decided.
   */
  instanceStates(instanceId: string): CheckState[] {
    const tracked = this.#instances.get(instanceId);
    if (tracked === undefined) return [];
    return tracked.checks.map((c) => toCheckState(instanceId, c.def.id, c.machine));
  }

  #startCheck(tracked: TrackedInstance, check: TrackedCheck): void {
    if (!tracked.owned) return;
    const problem = scheduleProblem(check.def);
    if (problem !== undefined) {
      // Registration validates this; a bad stored definition must not spin the loop or stop the
      // agent from starting, so it is reported and left unscheduled.
      this.#log.error(
        { instanceId: tracked.instance.id, checkId: check.def.id, problem },
        'check not scheduled: invalid definition',
      );
      return;
    }
    if (check.def.kind === 'ttl') this.#armTtl(tracked, check);
    else check.timer = this.#setTimer(() => this.#tick(tracked, check), 0);
    this.#syncDeregister(tracked, check, 0);
  }

  #stopCheck(check: TrackedCheck): void {
    if (check.timer !== undefined) this.#clock.clearTimeout(check.timer);
    check.timer = undefined;
    check.ttlGeneration++;
    check.ttlQueued = false;
    if (check.deregisterTimer !== undefined) this.#clock.clearTimeout(check.deregisterTimer);
    check.deregisterTimer = undefined;
    if (check.run !== undefined) {
      const run = check.run;
      this.#endRun(check, run);
      run.controller.abort();
    }
  }

  // --- probes -------------------------------------------------------------------------------

  #tick(tracked: TrackedInstance, check: TrackedCheck): void {
    // Fixed rate, not fixed delay: the next tick is due whether or not this probe finishes.
    check.timer = this.#setTimer(
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
      stallEpoch: this.#stallEpoch,
      backstop: undefined,
    };
    const backstopMs = def.timeoutMs + DEFAULT_HEALTH_MANAGER_OPTIONS.probeGraceMs;
    const backstopDue = run.startedMono + backstopMs;
    run.backstop = this.#setTimer(
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
      run.stallEpoch !== this.#stallEpoch ||
      durationMs > def.timeoutMs + this.#stallThresholdMs
    ) {
      // Its deadline likely fired before the loop could read the answer: not the target's fault.
      this.#log.debug(
        { instanceId: tracked.instance.id, checkId: def.id, durationMs },
        'probe result dropped after an event-loop stall',
      );
      return;
    }
    this.#apply(tracked, check, result);
  }

  #onBackstop(tracked: TrackedInstance, check: TrackedCheck, run: ProbeRun, dueMono: number): void {
    if (check.run !== run) return;
    this.#endRun(check, run);
    run.controller.abort();
    const lateMs = this.#clock.monotonicMs() - dueMono;
    if (lateMs > this.#stallThresholdMs) {
      this.#onStall(lateMs);
      return;
    }
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
    this.#apply(tracked, check, {
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
    const factor = 1 + DEFAULT_HEALTH_MANAGER_OPTIONS.intervalJitter * (2 * r - 1);
    return Math.max(0, Math.round(intervalMs * factor));
  }

  // --- TTL ----------------------------------------------------------------------------------

  /** (Re)starts the TTL: the deadline is one TTL from now. */
  #armTtl(tracked: TrackedInstance, check: TrackedCheck): void {
    if (this.#externalTtl) return;
    check.ttlDueMono = this.#clock.monotonicMs() + (check.def.ttlMs ?? 0);
    this.#queueTtl(tracked, check);
  }

  #queueTtl(tracked: TrackedInstance, check: TrackedCheck): void {
    if (check.ttlQueued) return;
    check.ttlQueued = true;
    this.#ttlQueue.push({ tracked, check, generation: check.ttlGeneration }, check.ttlDueMono);
  }

  #onTtlDue(entries: TtlEntry[], lateMs: number): void {
    const live: TtlEntry[] = [];
    for (const e of entries) {
      if (e.generation !== e.check.ttlGeneration) continue; // the check stopped since
      e.check.ttlQueued = false;
      live.push(e);
    }
    if (!this.#running) return;
    if (lateMs > this.#stallThresholdMs) {
      this.#onStall(lateMs); // re-arms every TTL, these included
      return;
    }
    const nowMono = this.#clock.monotonicMs();
    for (const { tracked, check } of live) {
      if (check.ttlDueMono > nowMono) {
        // A heartbeat moved the deadline since this entry was queued: wait for the rest.
        this.#queueTtl(tracked, check);
        continue;
      }
      // Each further silent TTL counts as one more failure, so failuresBeforeCritical applies.
      this.#armTtl(tracked, check);
      this.#apply(tracked, check, { status: 'critical', output: 'TTL expired' });
    }
  }

  // --- stalls -------------------------------------------------------------------------------

  #armMonitor(): void {
    const intervalMs = DEFAULT_HEALTH_MANAGER_OPTIONS.stallMonitorIntervalMs;
    const dueMono = this.#clock.monotonicMs() + intervalMs;
    this.#monitor = this.#setTimer(() => {
      const lateMs = this.#clock.monotonicMs() - dueMono;
      if (lateMs > this.#stallThresholdMs) this.#onStall(lateMs);
      this.#armMonitor();
    }, intervalMs);
  }

  /**
   * Called by whichever late timer notices a stall first (and again by later ones: restarting
   * from "now" is idempotent, so no de-duplication is needed beyond the log line).
   */
  #onStall(stalledMs: number): void {
    if (!this.#running) return;
    this.#stallEpoch += 1;
    const nowMono = this.#clock.monotonicMs();
    if (nowMono - this.#lastStallLogMono > this.#stallThresholdMs) {
      this.#observer?.stall?.(stalledMs);
      this.#log.warn({ stalledMs }, 'event loop stalled; restarting TTL deadlines');
    }
    this.#lastStallLogMono = nowMono;
    for (const tracked of this.#instances.values()) {
      for (const check of tracked.checks) {
        if (check.def.kind === 'ttl' && tracked.owned) this.#armTtl(tracked, check);
        if (check.deregisterTimer !== undefined) this.#clock.clearTimeout(check.deregisterTimer);
        check.deregisterTimer = undefined;
        this.#syncDeregister(tracked, check, recheckWindowMs(check.def));
      }
    }
  }

  // --- results, writes, deregistration ------------------------------------------------------

  #apply(tracked: TrackedInstance, check: TrackedCheck, result: ProbeResult): void {
    const before = check.machine.status;
    const t = applyCheckResult(check.machine, result, {
      def: check.def,
      registeredAt: tracked.instance.createdAt,
      now: this.#clock.now(),
    });
    check.machine = t.state;
    if (t.statusChanged) {
      this.#log.info(
        {
          instanceId: tracked.instance.id,
          checkId: check.def.id,
          from: before,
          to: t.state.status,
        },
        'check status changed',
      );
    }
    if (t.changed)
      this.#queueWrite(check, toCheckState(tracked.instance.id, check.def.id, t.state));
    this.#syncDeregister(tracked, check, 0);
  }

  /** Arms, keeps or clears the deregister timer of a check; `minDelayMs` postpones it. */
  #syncDeregister(tracked: TrackedInstance, check: TrackedCheck, minDelayMs: number): void {
    const afterMs = check.def.deregisterCriticalAfterMs;
    const since = check.machine.criticalSince;
    if (
      !this.#running ||
      !tracked.owned ||
      afterMs <= 0 ||
      since === undefined ||
      tracked.deregisterRequested
    ) {
      if (check.deregisterTimer !== undefined) this.#clock.clearTimeout(check.deregisterTimer);
      check.deregisterTimer = undefined;
      return;
    }
    if (check.deregisterTimer !== undefined) return;
    const delayMs = Math.max(since + afterMs - this.#clock.now(), minDelayMs, 0);
    const dueMono = this.#clock.monotonicMs() + delayMs;
    check.deregisterTimer = this.#setTimer(
      () => this.#onDeregisterDue(tracked, check, dueMono),
      delayMs,
    );
  }

  #onDeregisterDue(tracked: TrackedInstance, check: TrackedCheck, dueMono: number): void {
    check.deregisterTimer = undefined;
    const lateMs = this.#clock.monotonicMs() - dueMono;
    if (lateMs > this.#stallThresholdMs) {
      this.#onStall(lateMs);
      return;
    }
    const since = check.machine.criticalSince;
    if (since === undefined || tracked.deregisterRequested) return;
    const afterMs = check.def.deregisterCriticalAfterMs;
    if (this.#clock.now() - since < afterMs) {
      this.#syncDeregister(tracked, check, 0);
      return;
    }
    tracked.deregisterRequested = true;
    for (const c of tracked.checks) this.#syncDeregister(tracked, c, 0);
    const instanceId = tracked.instance.id;
    const reason = `check "${check.def.name}" critical for more than ${afterMs} ms: ${check.machine.output}`;
    this.#log.info(
      { instanceId, checkId: check.def.id, afterMs },
      'deregistering critical instance',
    );
    this.#host.deregister(instanceId, reason).catch((err: unknown) => {
      this.#log.warn({ instanceId, err: describeError(err) }, 'deregistration failed');
    });
  }

  /**
   * Resolves once every status change made so far has been handed to the host and its write has
   * settled (written or failed). Lets a heartbeat answer the status it caused.
   */
  async settled(): Promise<void> {
    // A flush queued earlier runs before this microtask, and sets #lastWrite.
    if (this.#flushQueued) await new Promise<void>((resolve) => queueMicrotask(resolve));
    await this.#lastWrite;
  }

  #queueWrite(check: TrackedCheck, state: CheckState): void {
    const key = writeKey(state.instanceId, state.checkId);
    check.lastQueued = state;
    this.#pending.set(key, state);
    this.#unwritten.delete(key);
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    // Changes made in the same turn (a heartbeat to several TTL checks, timers firing together)
    // go out as one write.
    queueMicrotask(() => this.#flush());
  }

  #flush(): void {
    this.#flushQueued = false;
    const batch = new Map(this.#unwritten);
    for (const [key, state] of this.#pending) batch.set(key, state);
    this.#pending.clear();
    this.#unwritten.clear();
    const states = [...batch.values()].filter(
      (s) => this.#instances.get(s.instanceId)?.checks.some((c) => c.def.id === s.checkId) === true,
    );
    if (states.length === 0) return;
    let written: Promise<void>;
    try {
      written = this.#host.writeStates(states);
      this.#lastWrite = written.catch(() => undefined);
    } catch (err) {
      written = Promise.reject(err);
    }
    written.catch((err: unknown) => {
      // No retry loop: the states ride along with the next change (HealthHost contract).
      this.#log.warn(
        { count: states.length, err: describeError(err) },
        'check state write failed; will retry with the next change',
      );
      for (const s of states) {
        const key = writeKey(s.instanceId, s.checkId);
        const check = this.#instances.get(s.instanceId)?.checks.find((c) => c.def.id === s.checkId);
        if (check?.lastQueued === s && !this.#pending.has(key)) this.#unwritten.set(key, s);
      }
    });
  }

  #forgetWrites(instanceId: string, checkId: string): void {
    const key = writeKey(instanceId, checkId);
    this.#pending.delete(key);
    this.#unwritten.delete(key);
  }

  #setTimer(fn: () => void, ms: number): TimerHandle {
    const handle = this.#clock.setTimeout(fn, ms);
    handle.unref?.();
    return handle;
  }
}

/**
 * Creates a {@link HealthManager}. Call `start()` to run checks.
 *
 * @example
 * const health = createHealthManager({ clock: systemClock, logger, host: registryHealthHost });
 */
export function createHealthManager(options: HealthManagerOptions): HealthManager {
  return new HealthManager(options);
}

function scheduleProblem(def: CheckDefinition): string | undefined {
  if (def.kind === 'ttl') {
    return def.ttlMs !== undefined && def.ttlMs > 0 ? undefined : 'ttlMs must be > 0';
  }
  if (!(def.intervalMs > 0)) return 'intervalMs must be > 0';
  if (!(def.timeoutMs > 0)) return 'timeoutMs must be > 0';
  return undefined;
}

/** How long a check needs to be observed again: one TTL, or one probe interval plus timeout. */
function recheckWindowMs(def: CheckDefinition): number {
  return def.kind === 'ttl' ? (def.ttlMs ?? 0) : def.intervalMs + def.timeoutMs;
}

function writeKey(instanceId: string, checkId: string): string {
  return `${instanceId}\u0000${checkId}`;
}
