/** @module Unit tests of aggregateStatus. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { aggregateStatus, withNodeStatus } from '../../../../src/registry/health/aggregate.js';
import { checkDef, checkState, instance } from './health-fixtures.js';

const CREATED = Date.UTC(2026, 0, 1);

describe('aggregateStatus', () => {
  it('is passing with an empty reason when there are no checks', () => {
    assert.deepEqual(aggregateStatus(instance([]), [], undefined), {
      status: 'passing',
      reason: '',
    });
  });

  it('is maintenance with the instance reason when the instance is in maintenance', () => {
    const inst = instance([checkDef()], { maintenance: { enabled: true, reason: 'deploying' } });
    assert.deepEqual(aggregateStatus(inst, [], { enabled: true, reason: 'agent' }), {
      status: 'maintenance',
      reason: 'deploying',
    });
  });

  it('is maintenance with the agent reason when the agent is in maintenance', () => {
    const inst = instance([checkDef()]);
    const states = [checkState({ status: 'critical' })];
    assert.deepEqual(aggregateStatus(inst, states, { enabled: true, reason: 'kernel upgrade' }), {
      status: 'maintenance',
      reason: 'kernel upgrade',
    });
  });

  it('ignores agent maintenance that is disabled', () => {
    const inst = instance([checkDef()]);
    const r = aggregateStatus(inst, [checkState()], { enabled: false, reason: 'x' });
    assert.equal(r.status, 'passing');
  });

  it('is starting while a startup check has not passed', () => {
    const inst = instance([
      checkDef({ id: 'boot', name: 'boot', role: 'startup' }),
      checkDef({ id: 'ready', name: 'ready' }),
    ]);
    const states = [checkState({ checkId: 'ready', status: 'critical', output: 'down' })];
    assert.deepEqual(aggregateStatus(inst, states, undefined), {
      status: 'starting',
      reason: 'startup check "boot" has not passed yet',
    });
  });

  it('is critical when a startup check turned critical after its start period', () => {
    const boot = checkDef({ id: 'boot', name: 'boot', role: 'startup', startPeriodMs: 30_000 });
    const inst = instance([boot]);
    const states = [
      checkState({
        checkId: 'boot',
        status: 'critical',
        output: 'HTTP GET x: 503',
        since: CREATED + 30_000,
      }),
    ];
    assert.deepEqual(aggregateStatus(inst, states, undefined), {
      status: 'critical',
      reason: 'check "boot" is critical: HTTP GET x: 503',
    });
  });

  it('stays starting when a startup check is critical from before its start period ended', () => {
    const boot = checkDef({ id: 'boot', role: 'startup', startPeriodMs: 30_000 });
    const states = [checkState({ checkId: 'boot', status: 'critical', since: CREATED + 1000 })];
    assert.equal(aggregateStatus(instance([boot]), states, undefined).status, 'starting');
  });

  it('counts a passed startup check with the others', () => {
    const inst = instance([
      checkDef({ id: 'boot', name: 'boot', role: 'startup' }),
      checkDef({ id: 'ready', name: 'ready' }),
    ]);
    const states = [
      checkState({ checkId: 'boot', status: 'warning', output: 'slow', startedOnce: true }),
      checkState({ checkId: 'ready', status: 'passing' }),
    ];
    assert.deepEqual(aggregateStatus(inst, states, undefined), {
      status: 'warning',
      reason: 'check "boot" is warning: slow',
    });
  });

  it('is the worst of readiness and liveness checks, naming that check', () => {
    const inst = instance([
      checkDef({ id: 'a', name: 'alpha' }),
      checkDef({ id: 'b', name: 'beta', role: 'liveness' }),
      checkDef({ id: 'c', name: 'gamma' }),
    ]);
    const states = [
      checkState({ checkId: 'a', status: 'warning', output: 'slow' }),
      checkState({ checkId: 'b', status: 'critical', output: 'TTL expired' }),
      checkState({ checkId: 'c', status: 'critical', output: 'refused' }),
    ];
    assert.deepEqual(aggregateStatus(inst, states, undefined), {
      status: 'critical',
      reason: 'check "beta" is critical: TTL expired',
    });
  });

  it('is passing with an empty reason when every check passes', () => {
    const inst = instance([checkDef({ id: 'a' }), checkDef({ id: 'b' })]);
    const states = [checkState({ checkId: 'a' }), checkState({ checkId: 'b', output: 'fine' })];
    assert.deepEqual(aggregateStatus(inst, states, undefined), { status: 'passing', reason: '' });
  });

  it('counts a check without a state as its initialStatus', () => {
    const inst = instance([
      checkDef({ id: 'a', name: 'alpha', initialStatus: 'passing' }),
      checkDef({ id: 'b', name: 'beta', initialStatus: 'warning' }),
    ]);
    assert.deepEqual(aggregateStatus(inst, [], undefined), {
      status: 'warning',
      reason: 'check "beta" is warning',
    });
  });

  it('ignores states of other instances', () => {
    const inst = instance([checkDef({ initialStatus: 'passing' })]);
    const states = [checkState({ instanceId: 'other', status: 'critical' })];
    assert.equal(aggregateStatus(inst, states, undefined).status, 'passing');
  });
});

describe('withNodeStatus', () => {
  it('lets the less available status win, and never overrides maintenance', () => {
    const critical = { status: 'critical', reason: 'check "disk" is critical' } as const;
    assert.deepEqual(withNodeStatus({ status: 'starting', reason: 's' }, critical), {
      status: 'critical',
      reason: 'node check "disk" is critical',
    });
    assert.deepEqual(
      withNodeStatus({ status: 'starting', reason: 's' }, { status: 'warning', reason: 'w' }),
      { status: 'starting', reason: 's' },
    );
    assert.deepEqual(withNodeStatus({ status: 'maintenance', reason: 'm' }, critical), {
      status: 'maintenance',
      reason: 'm',
    });
    assert.deepEqual(withNodeStatus({ status: 'passing', reason: '' }, undefined), {
      status: 'passing',
      reason: '',
    });
  });
});
