/** @module Unit tests of the per-check state machine. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CheckDefinition, CheckStatus } from '../../../../src/core/types.js';
import {
  applyCheckResult,
  createCheckMachineState,
  toCheckState,
  worseStatus,
  type CheckMachineState,
  type CheckTransition,
} from '../../../../src/registry/health/check-machine.js';
import { checkDef, checkState } from './health-fixtures.js';

const T0 = Date.UTC(2026, 0, 1);

/** Applies results one per second from T0, returning every transition. */
function feed(
  def: CheckDefinition,
  statuses: readonly CheckStatus[],
  start: CheckMachineState = createCheckMachineState(def, T0),
  registeredAt = T0,
): CheckTransition[] {
  let state = start;
  return statuses.map((status, i) => {
    const t = applyCheckResult(
      state,
      { status, output: `${status} #${i}` },
      {
        def,
        registeredAt,
        now: T0 + (i + 1) * 1000,
      },
    );
    state = t.state;
    return t;
  });
}

const statusesOf = (ts: readonly CheckTransition[]): CheckStatus[] => ts.map((t) => t.state.status);

describe('createCheckMachineState', () => {
  it('starts at initialStatus, unsettled, when nothing is persisted', () => {
    const s = createCheckMachineState(checkDef({ initialStatus: 'warning' }), T0);
    assert.equal(s.status, 'warning');
    assert.equal(s.settled, false);
    assert.equal(s.since, T0);
    assert.equal(s.criticalSince, undefined);
  });

  it('carries a persisted state over, counting criticalSince from now', () => {
    const persisted = checkState({ status: 'critical', output: 'boom', since: T0 - 60_000 });
    const s = createCheckMachineState(checkDef(), T0, persisted);
    assert.equal(s.status, 'critical');
    assert.equal(s.output, 'boom');
    assert.equal(s.since, T0 - 60_000);
    assert.equal(s.criticalSince, T0);
    assert.equal(s.settled, true);
  });

  it('keeps startedOnce only for startup checks', () => {
    const persisted = checkState({ startedOnce: true });
    assert.equal(
      createCheckMachineState(checkDef({ role: 'startup' }), T0, persisted).startedOnce,
      true,
    );
    assert.equal(createCheckMachineState(checkDef(), T0, persisted).startedOnce, false);
  });
});

describe('applyCheckResult', () => {
  it('turns passing after successesBeforePassing consecutive successes', () => {
    const ts = feed(checkDef({ successesBeforePassing: 3 }), ['passing', 'passing', 'passing']);
    assert.deepEqual(statusesOf(ts), ['critical', 'critical', 'passing']);
    assert.deepEqual(
      ts.map((t) => t.changed),
      [false, false, true],
    );
  });

  it('restarts the success streak when a failure interrupts it', () => {
    const def = checkDef({
      successesBeforePassing: 2,
      failuresBeforeCritical: 5,
      failuresBeforeWarning: 5,
    });
    const ts = feed(def, ['passing', 'critical', 'passing', 'passing']);
    assert.deepEqual(statusesOf(ts), ['critical', 'critical', 'critical', 'passing']);
  });

  it('turns warning then critical at their failure thresholds', () => {
    const def = checkDef({
      initialStatus: 'passing',
      failuresBeforeWarning: 2,
      failuresBeforeCritical: 4,
    });
    const ts = feed(def, ['critical', 'critical', 'critical', 'critical']);
    assert.deepEqual(statusesOf(ts), ['passing', 'warning', 'warning', 'critical']);
    assert.equal(ts[3]?.state.consecutiveFailures, 4);
  });

  it('turns critical when both failure thresholds are reached together', () => {
    const def = checkDef({
      initialStatus: 'passing',
      failuresBeforeWarning: 2,
      failuresBeforeCritical: 2,
    });
    assert.deepEqual(statusesOf(feed(def, ['critical', 'critical'])), ['passing', 'critical']);
  });

  it('uses thresholds of 1 when they are 0 or missing', () => {
    const def = checkDef({
      initialStatus: 'passing',
      failuresBeforeWarning: 0,
      failuresBeforeCritical: 0,
    });
    assert.deepEqual(statusesOf(feed(def, ['critical'])), ['critical']);
  });

  it('turns warning at once on a warning result', () => {
    const def = checkDef({ initialStatus: 'passing', failuresBeforeCritical: 3 });
    const [t] = feed(def, ['warning']);
    assert.equal(t?.state.status, 'warning');
    assert.equal(t?.changed, true);
    assert.equal(t?.state.consecutiveFailures, 0);
  });

  it('never improves the status on a failure', () => {
    const def = checkDef({
      initialStatus: 'critical',
      failuresBeforeWarning: 1,
      failuresBeforeCritical: 3,
    });
    assert.deepEqual(statusesOf(feed(def, ['critical'])), ['critical']);
  });

  it('does not count failures inside the start period', () => {
    const def = checkDef({ initialStatus: 'passing', startPeriodMs: 2500 });
    const ts = feed(def, ['critical', 'critical', 'critical']);
    assert.deepEqual(statusesOf(ts), ['passing', 'passing', 'critical']);
    assert.equal(ts[1]?.state.consecutiveFailures, 0);
    assert.equal(ts[1]?.state.output, 'critical #1', 'output still shows the latest result');
  });

  it('counts successes inside the start period', () => {
    const def = checkDef({ startPeriodMs: 60_000 });
    assert.deepEqual(statusesOf(feed(def, ['passing'])), ['passing']);
  });

  it('latches startedOnce on the first pass of a startup check', () => {
    const def = checkDef({ role: 'startup', initialStatus: 'passing', failuresBeforeCritical: 1 });
    const ts = feed(def, ['passing', 'critical', 'passing']);
    assert.deepEqual(
      ts.map((t) => t.state.startedOnce),
      [true, true, true],
    );
    assert.equal(ts[0]?.changed, true, 'startedOnce must be persisted even though status kept');
    assert.equal(ts[0]?.statusChanged, false);
  });

  it('does not set startedOnce for other roles', () => {
    assert.equal(feed(checkDef(), ['passing'])[0]?.state.startedOnce, false);
  });

  it('persists an initial critical status once counted failures confirm it', () => {
    const def = checkDef({ initialStatus: 'critical', startPeriodMs: 1500 });
    const ts = feed(def, ['critical', 'critical', 'critical']);
    assert.deepEqual(
      ts.map((t) => t.changed),
      [false, true, false],
    );
    assert.equal(ts[1]?.state.since, T0 + 2000);
    assert.equal(ts[1]?.statusChanged, false);
  });

  it('tracks criticalSince across failures and clears it on recovery', () => {
    const def = checkDef({ initialStatus: 'passing' });
    const ts = feed(def, ['critical', 'critical', 'passing']);
    assert.equal(ts[0]?.state.criticalSince, T0 + 1000);
    assert.equal(ts[1]?.state.criticalSince, T0 + 1000);
    assert.equal(ts[2]?.state.criticalSince, undefined);
  });

  it('moves since only on a change, and reports no change when the status holds', () => {
    const def = checkDef({ initialStatus: 'passing' });
    const start = createCheckMachineState(def, T0, checkState({ since: T0 - 5 }));
    const ts = feed(def, ['passing', 'passing'], start);
    assert.deepEqual(
      ts.map((t) => [t.changed, t.state.since]),
      [
        [false, T0 - 5],
        [false, T0 - 5],
      ],
    );
  });
});

describe('toCheckState', () => {
  it('keeps the persisted fields of a machine state', () => {
    const s = createCheckMachineState(
      checkDef(),
      T0,
      checkState({ status: 'warning', output: 'x' }),
    );
    assert.deepEqual(toCheckState('web-1', 'c1', s), {
      instanceId: 'web-1',
      checkId: 'c1',
      status: 'warning',
      output: 'x',
      since: Date.UTC(2025, 11, 31),
      startedOnce: false,
    });
  });
});

describe('worseStatus', () => {
  it('orders critical over warning over passing', () => {
    assert.equal(worseStatus('passing', 'warning'), 'warning');
    assert.equal(worseStatus('critical', 'warning'), 'critical');
    assert.equal(worseStatus('passing', 'passing'), 'passing');
  });
});

describe('applyCheckResult allocation', () => {
  it('keeps the same state object for results that confirm the status with the same output', () => {
    const def = checkDef({ kind: 'ttl', ttlMs: 10_000, successesBeforePassing: 2 });
    let state = createCheckMachineState(def, T0);
    const ctx = { def, registeredAt: T0, now: T0 + 1000 };
    for (let i = 0; i < 3; i++)
      state = applyCheckResult(state, { status: 'passing', output: '' }, ctx).state;
    assert.equal(state.status, 'passing');
    assert.equal(state.consecutiveSuccesses, 2, 'counters stop at their threshold');
    const again = applyCheckResult(state, { status: 'passing', output: '' }, ctx);
    assert.equal(again.state, state);
    assert.equal(again.changed, false);
    const newOutput = applyCheckResult(state, { status: 'passing', output: 'load 0.3' }, ctx);
    assert.notEqual(newOutput.state, state);
    assert.equal(newOutput.state.output, 'load 0.3');
  });
});
