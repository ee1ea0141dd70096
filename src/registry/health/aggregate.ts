/** @module aggregateStatus: an instance's status from its maintenance flags and check states. */
import type {
  CheckDefinition,
  CheckState,
  CheckStatus,
  Instance,
  InstanceStatus,
  Maintenance,
} from '../../core/types.js';
import { worseStatus } from './check-machine.js';

/** An instance's aggregated status and a human-readable reason ('' when passing). */
export interface AggregatedStatus {
  readonly status: InstanceStatus;
  readonly reason: string;
}

/**
 * Decides an instance's status. A pure function of stored data (no clock), so a status changes
 * only when something is written, and every change reaches watchers through the store.
 *
 * 1. Maintenance of the instance, then of the agent, wins, with its reason.
 * 2. A startup check that has not passed yet makes the instance `starting`, unless it turned
 *    critical after its start period (then `critical`).
 * 3. Otherwise the worst of the readiness, liveness and already-passed startup checks
 *    (critical > warning > passing); the reason names that check and its output.
 * 4. No checks: `passing`.
 *
 * `states` are the persisted check states; a check without one counts as its `initialStatus`.
 *
 * @example
 * const { status, reason } = aggregateStatus(instance, statesOf(instance.id), agentMaintenance);
 */
export function aggregateStatus(
  instance: Instance,
  states: readonly CheckState[],
  agentMaintenance: Maintenance | undefined,
): AggregatedStatus {
  if (instance.maintenance.enabled) {
    return { status: 'maintenance', reason: instance.maintenance.reason || 'instance maintenance' };
  }
  if (agentMaintenance?.enabled === true) {
    return { status: 'maintenance', reason: agentMaintenance.reason || 'agent maintenance' };
  }

  const byCheck = new Map<string, CheckState>();
  for (const s of states) if (s.instanceId === instance.id) byCheck.set(s.checkId, s);

  let starting: CheckDefinition | undefined;
  for (const def of instance.checks) {
    if (def.role !== 'startup') continue;
    const state = byCheck.get(def.id);
    if (state?.startedOnce === true) continue;
    // The machine only turns a check critical from failures counted after the start period,
    // and only such a decision is stored; `since` double-checks it.
    if (state?.status === 'critical' && state.since >= instance.createdAt + def.startPeriodMs) {
      return { status: 'critical', reason: describe(def, 'critical', state.output) };
    }
    starting ??= def;
  }
  if (starting !== undefined) {
    return { status: 'starting', reason: `startup check "${starting.name}" has not passed yet` };
  }

  let worst: { def: CheckDefinition; status: CheckStatus; output: string } | undefined;
  for (const def of instance.checks) {
    const state = byCheck.get(def.id);
    const status = state?.status ?? def.initialStatus;
    if (worst === undefined || worseStatus(worst.status, status) !== worst.status) {
      worst = { def, status, output: state?.output ?? '' };
    }
  }
  if (worst === undefined || worst.status === 'passing') return { status: 'passing', reason: '' };
  return { status: worst.status, reason: describe(worst.def, worst.status, worst.output) };
}

function describe(def: CheckDefinition, status: CheckStatus, output: string): string {
  const head = `check "${def.name}" is ${status}`;
  return output === '' ? head : `${head}: ${output}`;
}

/** How far a status keeps an instance from serving; maintenance is handled before ranking. */
const UNAVAILABILITY: Readonly<Record<Exclude<InstanceStatus, 'maintenance'>, number>> = {
  passing: 0,
  warning: 1,
  starting: 2,
  critical: 3,
};

/**
 * An instance's status with its node's checks taken in (Consul: a node check applies to every
 * service of the node). `node` is the aggregate of the node's own checks, or undefined when it
 * has none. Maintenance keeps its reason; otherwise the less available of the two wins, a tie
 * keeping the instance's own reason.
 *
 * @example
 * withNodeStatus({ status: 'passing', reason: '' }, { status: 'critical', reason: 'check "disk" is critical' })
 * // { status: 'critical', reason: 'node check "disk" is critical' }
 */
export function withNodeStatus(
  own: AggregatedStatus,
  node: AggregatedStatus | undefined,
): AggregatedStatus {
  if (node === undefined || own.status === 'maintenance' || node.status === 'maintenance')
    return own;
  if (UNAVAILABILITY[node.status] <= UNAVAILABILITY[own.status]) return own;
  return { status: node.status, reason: `node ${node.reason}` };
}
