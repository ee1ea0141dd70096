/** @module Unit tests of HealthManager, driven by FakeClock, a fake probe and a fake host. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CheckDefinition, CheckState, Instance } from '../../../../src/core/types.js';
import {
  createHealthManager,
  type HealthManager,
  type HealthManagerOptions,
} from '../../../../src/registry/health/health-manager.js';
import { FakeClock, flushMicrotasks } from '../../../../src/testing/fake-clock.js';
import {
  FakeHost,
  FakeObserver,
  FakeProbe,
  RecordingLogger,
  checkDef,
  checkState,
  instance,
} from './health-fixtures.js';

interface Harness {
  readonly clock: FakeClock;
  readonly host: FakeHost;
  readonly probe: FakeProbe;
  readonly observer: FakeObserver;
  readonly logger: RecordingLogger;
  readonly manager: HealthManager;
  /** Advances fake time in small steps, letting probe results and writes settle. */
  run(ms: number): Promise<void>;
  status(checkId?: string, instanceId?: string): string | undefined;
}

function harness(options: Partial<HealthManagerOptions> = {}, start = true): Harness {
  const clock = new FakeClock();
  const host = new FakeHost();
  const probe = new FakeProbe('http');
  const observer = new FakeObserver();
  const logger = new RecordingLogger();
  const manager = createHealthManager({
    clock,
    logger,
    host,
    observer,
    probes: new Map([
      ['http', probe],
      ['tcp', probe],
    ]),
    random: () => 0.5,
    ...options,
  });
  if (start) manager.start();
  return {
    clock,
    host,
    probe,
    observer,
    logger,
    manager,
    run: async (ms) => {
      // advanceAsync(0) fires nothing; due-now timers need advance(0).
      clock.advance(0);
      await flushMicrotasks();
      await clock.advanceAsync(ms, 50);
    },
    status: (checkId = 'c1', instanceId = 'web-1') =>
      manager.instanceStates(instanceId).find((s) => s.checkId === checkId)?.status,
  };
}

const ttlCheck = (overrides: Partial<CheckDefinition> = {}): CheckDefinition =>
  checkDef({ kind: 'ttl', ttlMs: 10_000, ...overrides });

/** Tracks a TTL instance that is already passing, as after a restart. */
function trackPassingTtl(h: Harness, def: CheckDefinition = ttlCheck()): Instance {
  const inst = instance([def]);
  h.manager.track(inst, [checkState({ checkId: def.id, status: 'passing' })]);
  return inst;
}

describe('HealthManager', () => {
  describe('probes', () => {
    it('runs the first probe immediately on track', async () => {
      const h = harness();
      h.manager.track(instance([checkDef()]), []);
      assert.equal(h.probe.calls, 0);
      await h.run(0);
      assert.equal(h.probe.calls, 1);
      assert.equal(h.status(), 'passing');
      assert.deepEqual(
        h.host.written.map((s) => [s.checkId, s.status, s.output]),
        [['c1', 'passing', 'ok']],
      );
    });

    it('does not probe before start and probes at once on start', async () => {
      const h = harness({}, false);
      h.manager.track(instance([checkDef()]), []);
      await h.run(5000);
      assert.equal(h.probe.calls, 0);
      h.manager.start();
      await h.run(0);
      assert.equal(h.probe.calls, 1);
    });

    it('probes again after intervalMs shortened by up to 10% jitter', async () => {
      const h = harness({ random: () => 0 });
      h.manager.track(instance([checkDef({ intervalMs: 1000 })]), []);
      await h.run(899);
      assert.equal(h.probe.calls, 1);
      await h.run(1);
      assert.equal(h.probe.calls, 2);
    });

    // Issue 16: a check stored with `intervalMs: 1` (before the floors, or by another agent)
    // was probed 800 times a second.
    it('never probes a check more often than minIntervalMs, whatever its stored interval', async () => {
      const h = harness({ random: () => 0.5 });
      h.manager.track(instance([checkDef({ intervalMs: 1, timeoutMs: 1 })]), []);
      await h.run(10_000);
      // The first probe at once, then one per second (the default floor) for 10 s.
      assert.equal(h.probe.calls, 11);
      const lowered = harness({ random: () => 0.5, minIntervalMs: 100 });
      lowered.manager.track(instance([checkDef({ intervalMs: 1, timeoutMs: 1 })]), []);
      await lowered.run(1000);
      assert.equal(lowered.probe.calls, 11);
    });

    it('probes again after intervalMs lengthened by up to 10% jitter', async () => {
      const h = harness({ random: () => 0.999_999 });
      h.manager.track(instance([checkDef({ intervalMs: 1000 })]), []);
      await h.run(1099);
      assert.equal(h.probe.calls, 1);
      await h.run(1);
      assert.equal(h.probe.calls, 2);
    });

    it('applies failure thresholds across probes', async () => {
      const h = harness();
      h.probe.set('critical', 'HTTP GET x: 500');
      h.manager.track(
        instance([
          checkDef({
            initialStatus: 'passing',
            failuresBeforeCritical: 3,
            failuresBeforeWarning: 2,
          }),
        ]),
        [],
      );
      await h.run(0);
      assert.equal(h.status(), 'passing');
      await h.run(1000);
      assert.equal(h.status(), 'warning');
      await h.run(1000);
      assert.equal(h.status(), 'critical');
      assert.deepEqual(
        h.host.written.map((s) => s.status),
        ['warning', 'critical'],
      );
    });

    it('skips a tick while the previous probe of the check is still running', async () => {
      const h = harness();
      h.probe.hold();
      h.manager.track(instance([checkDef({ intervalMs: 1000, timeoutMs: 5000 })]), []);
      await h.run(3000);
      assert.equal(h.probe.calls, 1);
      h.probe.release();
      await h.run(1000);
      assert.equal(h.probe.calls, 2);
    });

    it('reports every probe to the observer with its duration', async () => {
      const h = harness();
      h.probe.hold();
      h.manager.track(instance([checkDef({ timeoutMs: 5000 })]), []);
      await h.run(300);
      h.probe.set('warning');
      h.probe.release();
      await flushMicrotasks();
      assert.deepEqual(h.observer.runs, [{ kind: 'http', status: 'warning', durationMs: 300 }]);
    });

    it('abandons a probe that ignores its timeout, as critical', async () => {
      const h = harness();
      h.probe.hold();
      h.manager.track(
        instance([checkDef({ initialStatus: 'passing', timeoutMs: 500, intervalMs: 60_000 })]),
        [],
      );
      await h.run(1499);
      assert.equal(h.status(), 'passing');
      await h.run(1);
      assert.equal(h.status(), 'critical');
      assert.equal(h.probe.signals[0]?.aborted, true);
      h.probe.release();
      await flushMicrotasks();
      assert.equal(h.host.written.length, 1, 'the late result is dropped');
    });

    it('drops a result that arrives after untrack', async () => {
      const h = harness();
      h.probe.hold();
      h.manager.track(instance([checkDef()]), []);
      await h.run(0);
      h.manager.untrack('web-1');
      assert.equal(h.probe.signals[0]?.aborted, true);
      h.probe.release();
      await flushMicrotasks();
      assert.equal(h.host.writes.length, 0);
      assert.equal(h.observer.runs.length, 0);
      assert.deepEqual(h.manager.instanceStates('web-1'), []);
    });

    it('drops a probe result that straddles an event-loop stall', async () => {
      const h = harness();
      h.probe.hold();
      h.manager.track(instance([checkDef({ initialStatus: 'passing', timeoutMs: 500 })]), []);
      await h.run(0);
      h.clock.jump(5000);
      h.probe.set('critical', 'timed out after 500 ms');
      h.probe.release();
      await h.run(0);
      assert.equal(h.status(), 'passing');
      assert.equal(h.host.writes.length, 0);
    });
  });

  describe('track', () => {
    it('does not reset or reprobe when re-tracked with unchanged checks', async () => {
      const h = harness();
      const def = checkDef({ successesBeforePassing: 2, intervalMs: 1000 });
      h.manager.track(instance([def]), []);
      await h.run(0);
      assert.equal(h.probe.calls, 1);
      // A fresh but equal definition object, with keys in another order.
      const same = JSON.parse(JSON.stringify({ ...def })) as CheckDefinition;
      h.manager.track(instance([same], { updatedAt: Date.UTC(2026, 0, 2) }), []);
      await h.run(0);
      assert.equal(h.probe.calls, 1);
      await h.run(1000);
      assert.equal(h.probe.calls, 2);
      assert.equal(h.status(), 'passing', 'the success count survived the re-track');
    });

    it('restarts a changed check with an immediate probe', async () => {
      const h = harness();
      const def = checkDef({ intervalMs: 60_000 });
      h.manager.track(instance([def]), []);
      await h.run(0);
      h.manager.track(instance([{ ...def, timeoutMs: 900 }]), []);
      await h.run(0);
      assert.equal(h.probe.calls, 2);
    });

    it('stops a removed check', async () => {
      const h = harness();
      h.manager.track(instance([checkDef({ id: 'a' }), checkDef({ id: 'b' })]), []);
      await h.run(0);
      const timersWithBoth = h.clock.pendingTimers;
      h.manager.track(instance([checkDef({ id: 'a' })]), []);
      assert.equal(h.clock.pendingTimers, timersWithBoth - 1);
      assert.deepEqual(
        h.manager.instanceStates('web-1').map((s) => s.checkId),
        ['a'],
      );
    });

    it('seeds machines from persisted states', () => {
      const h = harness();
      h.manager.track(instance([checkDef({ role: 'startup' })]), [
        checkState({ status: 'warning', output: 'slow', startedOnce: true }),
        checkState({ instanceId: 'other', status: 'critical' }),
      ]);
      const [s] = h.manager.instanceStates('web-1');
      assert.equal(s?.status, 'warning');
      assert.equal(s?.startedOnce, true);
    });
  });

  describe('TTL checks', () => {
    it('expires exactly at ttlMs, not before', async () => {
      const h = harness();
      trackPassingTtl(h);
      await h.run(9999);
      assert.equal(h.status(), 'passing');
      await h.run(1);
      assert.equal(h.status(), 'critical');
      assert.deepEqual(
        h.host.written.map((s) => [s.status, s.output]),
        [['critical', 'TTL expired']],
      );
    });

    it('restarts the TTL on each heartbeat', async () => {
      const h = harness();
      trackPassingTtl(h);
      await h.run(9000);
      assert.equal(h.manager.heartbeat('web-1', 'passing', 'ok'), 'ok');
      await h.run(9999);
      assert.equal(h.status(), 'passing');
      await h.run(1);
      assert.equal(h.status(), 'critical');
    });

    it('allocates no timer per heartbeat: the pending TTL timer re-arms itself', async () => {
      const h = harness();
      trackPassingTtl(h);
      await h.run(0);
      const created = h.clock.timersCreated;
      for (let i = 0; i < 100; i++) h.manager.heartbeat('web-1', 'passing', 'ok');
      assert.equal(h.clock.timersCreated, created);
    });

    it('reports a stall once, however many TTL timers fall due late', async () => {
      const h = harness();
      const checks = Array.from({ length: 50 }, (_, i) =>
        ttlCheck({ id: `t${i}`, ttlMs: 1000 + i }),
      );
      h.manager.track(
        instance(checks),
        checks.map((c) => checkState({ checkId: c.id, status: 'passing' })),
      );
      await h.run(500);
      h.clock.jump(30_000);
      await h.run(0);
      assert.equal(h.observer.stalls.length, 1);
      assert.equal(h.host.writes.length, 0);
    });

    it('writes nothing for heartbeats that keep the status', async () => {
      const h = harness();
      trackPassingTtl(h);
      for (let i = 0; i < 5; i++) {
        h.manager.heartbeat('web-1', 'passing', `beat ${i}`);
        await h.run(1000);
      }
      assert.equal(h.host.writes.length, 0);
      assert.equal(h.manager.instanceStates('web-1')[0]?.output, 'beat 4');
      // The unwritten output is what the agent's own endpoints overlay.
      assert.equal([...h.manager.unwrittenStates('web-1').values()][0]?.output, 'beat 4');
    });

    it("writes a new output under the same status once the update interval passed (Consul's check_update_interval), and not before", async () => {
      const h = harness({ checkUpdateIntervalMs: 60_000 });
      trackPassingTtl(h);
      // A heartbeat every 5 s (inside the 10 s TTL), each with a new output.
      for (let i = 1; i <= 30; i++) {
        h.manager.heartbeat('web-1', 'passing', `beat ${i}`);
        await h.run(5000);
      }
      // Written at the first heartbeat 60 s after tracking (the 13th, at 60 s), then 60 s later.
      assert.deepEqual(
        h.host.written.map((s) => [s.status, s.output]),
        [
          ['passing', 'beat 13'],
          ['passing', 'beat 25'],
        ],
      );
      assert.equal(h.manager.instanceStates('web-1')[0]?.output, 'beat 30');
      assert.equal([...h.manager.unwrittenStates('web-1').values()][0]?.output, 'beat 30');
      h.manager.heartbeat('web-1', 'passing', 'beat 25');
      await h.run(0);
      assert.equal(h.manager.unwrittenStates('web-1').size, 0, 'the written output again');
    });

    it('writes nothing for an output that stays what was written, however long', async () => {
      const h = harness({ checkUpdateIntervalMs: 60_000 });
      const def = ttlCheck();
      h.manager.track(instance([def]), [
        checkState({ checkId: def.id, status: 'passing', output: 'same' }),
      ]);
      for (let i = 0; i < 30; i++) {
        h.manager.heartbeat('web-1', 'passing', 'same');
        await h.run(5000);
      }
      assert.equal(h.host.writes.length, 0);
    });

    it('writes no output of a check still at its initial status (undecided), whatever the interval', async () => {
      const h = harness({ checkUpdateIntervalMs: 0 });
      // Two failures before critical: the first failing probe leaves it at its initial status.
      h.probe.set('critical', 'refused');
      h.manager.track(instance([checkDef({ failuresBeforeCritical: 2 })]), []);
      await h.run(0);
      assert.equal(h.manager.instanceStates('web-1')[0]?.output, 'refused');
      assert.equal(h.host.writes.length, 0);
    });

    it('writes every new output with an update interval of 0', async () => {
      const h = harness({ checkUpdateIntervalMs: 0 });
      trackPassingTtl(h);
      for (const out of ['a', 'b', 'b', 'c']) {
        h.manager.heartbeat('web-1', 'passing', out);
        await flushMicrotasks();
      }
      assert.deepEqual(
        h.host.written.map((s) => s.output),
        ['a', 'b', 'c'],
      );
    });

    it('refuses an update interval that is not a whole number of ms, 0 or more', () => {
      for (const bad of [-1, 1.5, Number.NaN])
        assert.throws(
          () => harness({ checkUpdateIntervalMs: bad }, false),
          (e: Error) => e.message.includes('checkUpdateIntervalMs'),
        );
    });

    it('writes when a heartbeat changes the status, and only then', async () => {
      const h = harness();
      h.manager.track(instance([ttlCheck()]), []);
      h.manager.heartbeat('web-1', 'passing', 'up');
      await flushMicrotasks();
      h.manager.heartbeat('web-1', 'passing', 'still up');
      h.manager.heartbeat('web-1', 'passing', 'still up');
      await flushMicrotasks();
      h.manager.heartbeat('web-1', 'warning', 'degraded');
      await flushMicrotasks();
      assert.deepEqual(
        h.host.writes.map((batch) => batch.map((s) => [s.status, s.output])),
        [[['passing', 'up']], [['warning', 'degraded']]],
      );
    });

    it('applies a heartbeat to every TTL check in one batched write', async () => {
      const h = harness();
      h.manager.track(
        instance([ttlCheck({ id: 'a' }), ttlCheck({ id: 'b' }), checkDef({ id: 'h' })]),
        [],
      );
      h.manager.heartbeat('web-1', 'passing', 'up');
      await flushMicrotasks();
      assert.equal(h.host.writes.length, 1);
      assert.deepEqual(
        h.host.writes[0]?.map((s) => s.checkId),
        ['a', 'b'],
      );
    });

    it('tells an unknown instance and one without a TTL check apart', () => {
      const h = harness();
      h.manager.track(instance([checkDef()]), []);
      assert.equal(h.manager.heartbeat('nope', 'passing', ''), 'not-found');
      assert.equal(h.manager.heartbeat('web-1', 'passing', ''), 'no-ttl-check');
    });

    it('counts each further silent TTL as a failure', async () => {
      const h = harness();
      trackPassingTtl(h, ttlCheck({ failuresBeforeCritical: 3, failuresBeforeWarning: 3 }));
      await h.run(20_000);
      assert.equal(h.status(), 'passing');
      await h.run(10_000);
      assert.equal(h.status(), 'critical');
    });

    it('gives a full TTL after an agent restart, whatever the persisted times', async () => {
      const h = harness();
      h.clock.jump(3_600_000);
      const def = ttlCheck();
      h.manager.track(instance([def]), [
        checkState({ status: 'passing', since: Date.UTC(2025, 0, 1) }),
      ]);
      await h.run(9999);
      assert.equal(h.status(), 'passing');
      await h.run(2);
      assert.equal(h.status(), 'critical');
    });

    it('does not expire TTLs when the event loop stalls past them', async () => {
      const h = harness();
      h.manager.track(instance([ttlCheck({ id: 'a' }), ttlCheck({ id: 'b', ttlMs: 4000 })]), [
        checkState({ checkId: 'a', status: 'passing' }),
        checkState({ checkId: 'b', status: 'passing' }),
      ]);
      await h.run(3000);
      h.clock.jump(30_000);
      await h.run(0);
      assert.equal(h.status('a'), 'passing');
      assert.equal(h.status('b'), 'passing');
      assert.equal(h.host.writes.length, 0);
      assert.ok(h.logger.warnings().includes('event loop stalled; restarting TTL deadlines'));
    });

    it('expires one TTL after the end of a stall when no heartbeat comes', async () => {
      const h = harness();
      trackPassingTtl(h);
      await h.run(3000);
      h.clock.jump(30_000);
      await h.run(9999);
      assert.equal(h.status(), 'passing');
      await h.run(1);
      assert.equal(h.status(), 'critical');
    });

    it('stays passing when the heartbeat queued during a stall arrives', async () => {
      const h = harness();
      trackPassingTtl(h);
      await h.run(3000);
      h.clock.jump(30_000);
      await h.run(0);
      h.manager.heartbeat('web-1', 'passing', 'late but alive');
      await h.run(9999);
      assert.equal(h.status(), 'passing');
      assert.equal(h.host.writes.length, 0);
    });

    it('detects a stall through the monitor before any TTL falls due', async () => {
      const h = harness();
      trackPassingTtl(h, ttlCheck({ ttlMs: 60_000 }));
      await h.run(500);
      h.clock.jump(5000);
      await h.run(0);
      // The deadline restarted at 5.5 s: 60 s later, not at 60 s.
      await h.run(59_999);
      assert.equal(h.status(), 'passing');
      await h.run(1);
      assert.equal(h.status(), 'critical');
    });

    it('honours the start period for TTL checks', async () => {
      const h = harness();
      const inst = instance([ttlCheck({ startPeriodMs: 25_000, initialStatus: 'passing' })], {
        createdAt: h.clock.now(),
      });
      h.manager.track(inst, []);
      await h.run(20_000);
      assert.equal(h.status(), 'passing');
      await h.run(10_000);
      assert.equal(h.status(), 'critical');
    });
  });

  describe('deregisterCriticalAfterMs', () => {
    it('deregisters once when a check stays critical that long', async () => {
      const h = harness();
      trackPassingTtl(h, ttlCheck({ deregisterCriticalAfterMs: 60_000 }));
      await h.run(10_000);
      assert.equal(h.status(), 'critical');
      await h.run(59_999);
      assert.equal(h.host.deregistrations.length, 0);
      await h.run(1);
      assert.equal(h.host.deregistrations.length, 1);
      assert.equal(h.host.deregistrations[0]?.instanceId, 'web-1');
      assert.match(h.host.deregistrations[0]?.reason ?? '', /critical for more than 60000 ms/);
      await h.run(300_000);
      assert.equal(h.host.deregistrations.length, 1);
    });

    it('does not deregister a check that recovered in time', async () => {
      const h = harness();
      trackPassingTtl(h, ttlCheck({ deregisterCriticalAfterMs: 60_000 }));
      await h.run(50_000);
      h.manager.heartbeat('web-1', 'passing', 'back');
      await h.run(5_000);
      h.manager.heartbeat('web-1', 'passing', 'back');
      await h.run(9_000);
      assert.equal(h.host.deregistrations.length, 0);
    });

    it('never deregisters when deregisterCriticalAfterMs is 0', async () => {
      const h = harness();
      trackPassingTtl(h);
      await h.run(600_000);
      assert.equal(h.host.deregistrations.length, 0);
    });
  });

  describe('writes', () => {
    it('logs a rejected write and carries its states into the next change, without a loop', async () => {
      const h = harness();
      h.manager.track(
        instance([ttlCheck({ id: 'a' }), ttlCheck({ id: 'b', initialStatus: 'passing' })]),
        [],
      );
      h.host.failWrites = true;
      h.manager.heartbeat('web-1', 'passing', 'up');
      await flushMicrotasks();
      assert.equal(h.host.writes.length, 1);
      assert.ok(
        h.logger.warnings().includes('check state write failed; will retry with the next change'),
      );
      await h.run(5000);
      assert.equal(h.host.writes.length, 1, 'no retry loop');
      h.host.failWrites = false;
      h.manager.heartbeat('web-1', 'warning', 'slow');
      await flushMicrotasks();
      assert.equal(h.host.writes.length, 2);
      assert.deepEqual(
        h.host.writes[1]?.map((s: CheckState) => [s.checkId, s.status]),
        [
          ['a', 'warning'],
          ['b', 'warning'],
        ],
      );
    });

    it('does not retry a failed state that a newer change superseded', async () => {
      const h = harness();
      h.manager.track(instance([ttlCheck()]), []);
      h.host.failWrites = true;
      h.manager.heartbeat('web-1', 'passing', 'up');
      await flushMicrotasks();
      h.host.failWrites = false;
      h.manager.heartbeat('web-1', 'warning', 'slow');
      await flushMicrotasks();
      assert.deepEqual(
        h.host.writes[1]?.map((s) => s.status),
        ['warning'],
      );
    });
  });

  describe('start and stop', () => {
    it('stop clears every timer and aborts in-flight probes', async () => {
      const h = harness();
      h.probe.hold();
      h.manager.track(
        instance([checkDef({ id: 'p' }), ttlCheck({ id: 't', deregisterCriticalAfterMs: 1000 })]),
        [],
      );
      await h.run(0);
      assert.ok(h.clock.pendingTimers > 0);
      await h.manager.stop();
      assert.equal(h.clock.pendingTimers, 0);
      assert.equal(h.probe.signals[0]?.aborted, true);
      h.probe.release();
      await flushMicrotasks();
      assert.equal(h.host.writes.length, 0);
    });

    it('resumes the tracked checks on start after stop', async () => {
      const h = harness();
      h.manager.track(instance([checkDef()]), []);
      await h.run(0);
      await h.manager.stop();
      h.manager.start();
      await h.run(0);
      assert.equal(h.probe.calls, 2);
    });
  });

  it('reports and leaves unscheduled a check it cannot schedule', async () => {
    const h = harness();
    h.manager.track(
      instance([checkDef({ kind: 'ttl', ttlMs: 0 }), checkDef({ id: 'p', intervalMs: 0 })]),
      [],
    );
    await h.run(1000);
    assert.equal(h.probe.calls, 0);
    assert.equal(
      h.logger.entries.filter((e) => e.msg === 'check not scheduled: invalid definition').length,
      2,
    );
  });

  it('rejects a non-positive stallThresholdMs', () => {
    assert.throws(() => harness({ stallThresholdMs: 0 }), /stallThresholdMs/);
  });
});
