/** @module The pure per-check state machine: thresholds, start period, startup latch. No I/O. */
import type { CheckDefinition, CheckState, CheckStatus } from '../../core/types.js';
import type { ProbeResult } from './health-types.js';

/** Everything the machine remembers about one check. Immutable: transitions return a new one. */
export interface CheckMachineState {
  readonly status: CheckStatus;
  /** Output of the latest result (even one that did not change the status). */
  readonly output: string;
  /** Epoch ms of the latest persisted transition. */
  readonly since: number;
  readonly consecutiveSuccesses: number;
  /** Counted failures only: failures inside the start period are not counted. */
  readonly consecutiveFailures: number;
  /** A startup check has passed at least once. */
  readonly startedOnce: boolean;
  /** Epoch ms since which the check has been decided critical, undefined when it is not. */
  readonly criticalSince: number | undefined;
  /**
   * False while the status is only the definition's `initialStatus`, i.e. no threshold has been
   * reached yet. Persisted states are always settled.
   */
  readonly settled: boolean;
}

/** What a transition needs to know besides the state and the result. */
export interface CheckContext {
  readonly def: CheckDefinition;
  /** Epoch ms of the instance's registration; the start period runs from it. */
  readonly registeredAt: number;
  /** Epoch ms of the result. */
  readonly now: number;
}

/** The outcome of {@link applyCheckResult}. */
export interface CheckTransition {
  readonly state: CheckMachineState;
  /**
   * The state must be persisted: the status changed, a startup check passed for the first time,
   * or an initial `critical` was confirmed by counted failures (so readers can tell a startup
   * check that failed after its start period from one that has not run yet).
   */
  readonly changed: boolean;
  /** The status itself changed. */
  readonly statusChanged: boolean;
}

const SEVERITY: Readonly<Record<CheckStatus, number>> = { passing: 0, warning: 1, critical: 2 };

/** The more severe of two statuses. */
export function worseStatus(a: CheckStatus, b: CheckStatus): CheckStatus {
  return SEVERITY[b] > SEVERITY[a] ? b : a;
}

/**
 * The state of a check before any result: its persisted state if there is one (status, output,
 * since and startedOnce carry over; counters start at zero), else its `initialStatus`.
 *
 * `criticalSince` of a persisted critical state is `now`, not the persisted time: after an agent
 * restart, deregister-after-critical counts from when the agent could observe the check again.
 */
export function createCheckMachineState(
  def: CheckDefinition,
  now: number,
  persisted?: Pick<CheckState, 'status' | 'output' | 'since' | 'startedOnce'>,
): CheckMachineState {
  if (persisted !== undefined) {
    return {
      status: persisted.status,
      output: persisted.output,
      since: persisted.since,
      consecutiveSuccesses: 0,
      consecutiveFailures: 0,
      startedOnce: def.role === 'startup' && persisted.startedOnce,
      criticalSince: persisted.status === 'critical' ? now : undefined,
      settled: true,
    };
  }
  return {
    status: def.initialStatus,
    output: '',
    since: now,
    consecutiveSuccesses: 0,
    consecutiveFailures: 0,
    startedOnce: false,
    criticalSince: undefined,
    settled: false,
  };
}

/**
 * Applies one probe or heartbeat result.
 *
 * - `passing`: after `successesBeforePassing` consecutive successes the check turns passing
 *   (a startup check then latches `startedOnce`).
 * - `warning` (HTTP 429, a TTL heartbeat with status warning): turns warning at once.
 * - `critical`: counted unless inside `startPeriodMs` after registration; after
 *   `failuresBeforeWarning` / `failuresBeforeCritical` consecutive counted failures the check turns
 *   warning / critical (critical wins when both are reached). A failure never improves a status.
 *
 * @example
 * const { state, changed } = applyCheckResult(prev, { status: 'critical', output: 'TTL expired' },
 *   { def, registeredAt: instance.createdAt, now: clock.now() });
 */
export function applyCheckResult(
  state: CheckMachineState,
  result: ProbeResult,
  ctx: CheckContext,
): CheckTransition {
  const { def, now } = ctx;
  let status = state.status;
  let successes = state.consecutiveSuccesses;
  let failures = state.consecutiveFailures;
  let settled = state.settled;

  switch (result.status) {
    case 'passing': {
      // Counters stop at their threshold: counting further changes nothing but memory churn.
      successes = Math.min(successes + 1, atLeastOne(def.successesBeforePassing));
      failures = 0;
      if (successes >= atLeastOne(def.successesBeforePassing)) {
        status = 'passing';
        settled = true;
      }
      break;
    }
    case 'warning': {
      successes = 0;
      failures = 0;
      status = 'warning';
      settled = true;
      break;
    }
    case 'critical': {
      // A failure breaks a success streak even when the start period keeps it from counting.
      successes = 0;
      if (now < ctx.registeredAt + def.startPeriodMs) break;
      failures = Math.min(failures + 1, atLeastOne(def.failuresBeforeCritical));
      const reached =
        failures >= atLeastOne(def.failuresBeforeCritical)
          ? 'critical'
          : failures >= atLeastOne(def.failuresBeforeWarning)
            ? 'warning'
            : undefined;
      if (reached !== undefined) {
        status = worseStatus(state.status, reached);
        if (status === reached) settled = true;
      }
      break;
    }
  }

  const startedOnce =
    state.startedOnce || (def.role === 'startup' && status === 'passing' && settled);
  const statusChanged = status !== state.status;
  const confirmedCritical = !state.settled && settled && status === 'critical';
  const changed = statusChanged || startedOnce !== state.startedOnce || confirmedCritical;
  const decidedCritical = status === 'critical' && settled;
  const criticalSince = decidedCritical ? (state.criticalSince ?? now) : undefined;

  // The common case (a heartbeat or probe that confirms the status) keeps the same object: with
  // 10k heartbeats/s, a new state per result is old-generation garbage the GC must chase.
  if (
    !changed &&
    result.output === state.output &&
    successes === state.consecutiveSuccesses &&
    failures === state.consecutiveFailures &&
    settled === state.settled &&
    criticalSince === state.criticalSince
  ) {
    return { state, changed, statusChanged };
  }
  return {
    state: {
      status,
      output: result.output,
      since: changed ? now : state.since,
      consecutiveSuccesses: successes,
      consecutiveFailures: failures,
      startedOnce,
      criticalSince,
      settled,
    },
    changed,
    statusChanged,
  };
}

/** The persisted form of a machine state. */
export function toCheckState(
  instanceId: string,
  checkId: string,
  state: CheckMachineState,
): CheckState {
  return {
    instanceId,
    checkId,
    status: state.status,
    output: state.output,
    since: state.since,
    startedOnce: state.startedOnce,
  };
}

function atLeastOne(n: number): number {
  return Number.isFinite(n) && n > 1 ? Math.floor(n) : 1;
}
