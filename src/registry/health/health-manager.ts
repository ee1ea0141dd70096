/** @module HealthManager: runs every check of every local instance and persists status changes. */
import { isDeepStrictEqual } from 'node:util';
import type { Clock } from '../../core/clock.js';
import { errors } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type {
  CheckDefinition,
  CheckKind,
  CheckState,
  CheckStatus,
  Instance,
} from '../../core/types.js';
import { DEFAULT_CHECK_FLOORS, DEFAULT_CHECK_UPDATE_INTERVAL_MS } from '../../protocol/limits.js';
import { applyCheckResult, createCheckMachineState, toCheckState } from './check-machine.js';
import { CheckStateWriter } from './check-state-writer.js';
import { closeProbes, createDefaultProbes } from './checks/index.js';
import { describeError } from './checks/probe-deadline.js';
import { setHealthTimer } from './health-timer.js';
import type { CheckProbe, HealthHost, HealthObserver, ProbeResult } from './health-types.js';
import { ProbeScheduler } from './probe-scheduler.js';
import { StallMonitor } from './stall-monitor.js';
import type { TrackedCheck, TrackedInstance } from './tracked-instance.js';
import { TtlDeadlines } from './ttl-deadlines.js';

/** What unwrittenStates() answers for an instance with nothing unwritten: one shared empty map. */
const NO_STATES: ReadonlyMap<string, CheckState> = new Map();

/** Defaults of the tunables of {@link HealthManagerOptions}. */
export const DEFAULT_HEALTH_MANAGER_OPTIONS = Object.freeze({
  /** A timer firing this much later than scheduled means the event loop stalled. */
  stallThresholdMs: 1000,
  /** A check whose status holds writes a new output at most this often (Consul's 5 min). */
  checkUpdateIntervalMs: DEFAULT_CHECK_UPDATE_INTERVAL_MS,
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
  /**
   * A check whose status holds (a heartbeat or probe that confirms it) writes a new output at
   * most this often, ms; 0: every new output is written. A status change is written at once,
   * with its output. Default: {@link DEFAULT_HEALTH_MANAGER_OPTIONS}.checkUpdateIntervalMs.
   */
  readonly checkUpdateIntervalMs?: number;
}

/** Outcome of {@link HealthManager.heartbeat}. */
export type HeartbeatOutcome = 'ok' | 'not-found' | 'no-ttl-check';

/**
 * Runs the checks of the agent's instances: tracks each instance's checks with a
 * {@link applyCheckResult} machine per check, feeds it results and heartbeats, hands status changes
 * to a {@link CheckStateWriter} (one `host.writeStates()` per batch) and deregisters instances
 * critical for too long. Its parts keep the time: {@link ProbeScheduler} probes (http, tcp) every
 * `intervalMs` with jitter, {@link TtlDeadlines} keeps the TTL deadlines that heartbeats reset.
 *
 * Two guards keep a hiccup of the agent from failing healthy instances (no mass expiry):
 * - TTL deadlines start when `track()` (or `start()`) runs, never from persisted times, so
 *   services get a full TTL to reach a restarted agent.
 * - A timer that fires more than `stallThresholdMs` late means the event loop stalled
 *   ({@link StallMonitor}); then every TTL deadline restarts from the end of the stall, pending
 *   deregistrations wait one more check period, and probe results that straddle the stall are
 *   dropped.
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
  readonly #owns: (instanceId: string) => boolean;
  readonly #instances = new Map<string, TrackedInstance>();
  readonly #stall: StallMonitor;
  readonly #scheduler: ProbeScheduler;
  /** Every TTL deadline, on one timer. */
  readonly #ttl: TtlDeadlines;
  readonly #writer: CheckStateWriter;
  readonly #checkUpdateIntervalMs: number;
  #running = false;

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
    this.#owns = options.owns ?? (() => true);
    const checkUpdateIntervalMs =
      options.checkUpdateIntervalMs ?? DEFAULT_HEALTH_MANAGER_OPTIONS.checkUpdateIntervalMs;
    if (!(Number.isInteger(checkUpdateIntervalMs) && checkUpdateIntervalMs >= 0)) {
      throw errors.validation('checkUpdateIntervalMs', 'must be a whole number of ms, 0 or more');
    }
    this.#checkUpdateIntervalMs = checkUpdateIntervalMs;
    this.#stall = new StallMonitor({
      clock: options.clock,
      logger: this.#log,
      thresholdMs: stallThresholdMs,
      observer: options.observer,
      onStall: () => this.#restartAfterStall(),
    });
    this.#scheduler = new ProbeScheduler({
      clock: options.clock,
      logger: this.#log,
      probes: this.#probes,
      observer: options.observer,
      random: options.random ?? Math.random,
      minIntervalMs: options.minIntervalMs ?? DEFAULT_CHECK_FLOORS.intervalMs,
      stall: this.#stall,
      report: (tracked, check, result) => this.#apply(tracked, check, result),
    });
    this.#ttl = new TtlDeadlines({
      clock: options.clock,
      stall: this.#stall,
      external: options.externalTtl ?? false,
      expired: (tracked, check) =>
        this.#apply(tracked, check, { status: 'critical', output: 'TTL expired' }),
    });
    this.#writer = new CheckStateWriter({
      host: options.host,
      logger: this.#log,
      slotOf: (instanceId, checkId) =>
        this.#instances.get(instanceId)?.checks.find((c) => c.def.id === checkId),
    });
  }

  /** Starts the checks of every tracked instance and the stall monitor. Idempotent. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#stall.start();
    this.#ttl.start();
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
    this.#stall.stop();
    for (const tracked of this.#instances.values()) {
      for (const check of tracked.checks) this.#stopCheck(check);
    }
    this.#ttl.stop();
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
      this.#writer.forget(instance.id, check.def.id);
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
      const machine = createCheckMachineState(def, now, carried ?? persisted.get(def.id));
      const check: TrackedCheck = {
        def,
        machine,
        timer: undefined,
        ttlDueMono: 0,
        ttlQueued: false,
        ttlGeneration: 0,
        run: undefined,
        deregisterTimer: undefined,
        lastQueued: existing?.lastQueued,
        writtenOutput: existing?.writtenOutput ?? machine.output,
        writtenAt: existing?.writtenAt ?? now,
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
      this.#writer.forget(instanceId, check.def.id);
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
      if (this.#running && tracked.owned) this.#ttl.arm(tracked, check);
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

  /**
   * The in-memory states of an instance's checks whose latest output is not written yet (held
   * back by `checkUpdateIntervalMs` while the status holds, or not decided yet), by check id;
   * mostly empty.
   */
  unwrittenStates(instanceId: string): ReadonlyMap<string, CheckState> {
    let out: Map<string, CheckState> | undefined;
    for (const c of this.#instances.get(instanceId)?.checks ?? [])
      if (c.machine.output !== c.writtenOutput)
        (out ??= new Map()).set(c.def.id, toCheckState(instanceId, c.def.id, c.machine));
    return out ?? NO_STATES;
  }

  /**
   * Resolves once every status change made so far has been handed to the host and its write has
   * settled (written or failed). Lets a heartbeat answer the status it caused.
   */
  settled(): Promise<void> {
    return this.#writer.settled();
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
    if (check.def.kind === 'ttl') this.#ttl.arm(tracked, check);
    else this.#scheduler.start(tracked, check);
    this.#syncDeregister(tracked, check, 0);
  }

  #stopCheck(check: TrackedCheck): void {
    this.#ttl.forget(check);
    this.#clearDeregister(check);
    this.#scheduler.stop(check); // last: the abort is the one step a running probe observes
  }

  /**
   * After an event-loop stall ({@link StallMonitor}): every TTL deadline restarts from now, and
   * pending deregistrations wait one more check period.
   */
  #restartAfterStall(): void {
    for (const tracked of this.#instances.values()) {
      for (const check of tracked.checks) {
        if (check.def.kind === 'ttl' && tracked.owned) this.#ttl.arm(tracked, check);
        this.#clearDeregister(check);
        this.#syncDeregister(tracked, check, recheckWindowMs(check.def));
      }
    }
  }

  // --- results and deregistration ----------------------------------------------------------

  #apply(tracked: TrackedInstance, check: TrackedCheck, result: ProbeResult): void {
    const before = check.machine.status;
    const now = this.#clock.now();
    const t = applyCheckResult(check.machine, result, {
      def: check.def,
      registeredAt: tracked.instance.createdAt,
      now,
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
    // A new output under the same status waits for the update interval (Consul's
    // check_update_interval): heartbeats and probes that confirm a status cost no write. A check
    // still at its initial status is not decided, and is not written for its output either (a
    // stored state reads back as decided).
    if (
      t.changed ||
      (t.state.settled &&
        t.state.output !== check.writtenOutput &&
        now - check.writtenAt >= this.#checkUpdateIntervalMs)
    ) {
      check.writtenOutput = t.state.output;
      check.writtenAt = now;
      this.#writer.queue(check, toCheckState(tracked.instance.id, check.def.id, t.state));
    }
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
      this.#clearDeregister(check);
      return;
    }
    if (check.deregisterTimer !== undefined) return;
    const delayMs = Math.max(since + afterMs - this.#clock.now(), minDelayMs, 0);
    const dueMono = this.#clock.monotonicMs() + delayMs;
    check.deregisterTimer = setHealthTimer(
      this.#clock,
      () => this.#onDeregisterDue(tracked, check, dueMono),
      delayMs,
    );
  }

  #clearDeregister(check: TrackedCheck): void {
    if (check.deregisterTimer !== undefined) this.#clock.clearTimeout(check.deregisterTimer);
    check.deregisterTimer = undefined;
  }

  #onDeregisterDue(tracked: TrackedInstance, check: TrackedCheck, dueMono: number): void {
    check.deregisterTimer = undefined;
    if (this.#stall.noticeLate(this.#clock.monotonicMs() - dueMono)) return;
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
