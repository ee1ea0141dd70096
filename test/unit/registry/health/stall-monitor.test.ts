/** @module Unit tests of StallMonitor, driven by FakeClock. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  STALL_MONITOR_INTERVAL_MS,
  StallMonitor,
} from '../../../../src/registry/health/stall-monitor.js';
import { FakeClock } from '../../../../src/testing/fake-clock.js';
import { FakeObserver, RecordingLogger } from './health-fixtures.js';

function harness(thresholdMs = 1000) {
  const clock = new FakeClock();
  const logger = new RecordingLogger();
  const observer = new FakeObserver();
  let restarts = 0;
  const monitor = new StallMonitor({
    clock,
    logger,
    thresholdMs,
    observer,
    onStall: () => {
      restarts++;
    },
  });
  return { clock, logger, observer, monitor, restarts: () => restarts };
}

describe('StallMonitor', () => {
  it('notices a stall from its own timer when nothing else runs', () => {
    const h = harness();
    h.monitor.start();
    h.clock.advance(STALL_MONITOR_INTERVAL_MS * 3);
    assert.equal(h.monitor.epoch, 0);
    h.clock.jump(5000); // the loop was stuck for 5 s; the monitor's timer was due after 1 s of it
    h.clock.advance(0);
    assert.equal(h.monitor.epoch, 1);
    assert.equal(h.restarts(), 1);
    assert.deepEqual(h.observer.stalls, [4000]);
    assert.deepEqual(h.logger.warnings(), ['event loop stalled; restarting TTL deadlines']);
  });

  it('answers whether a timer was late past the threshold', () => {
    const h = harness(1000);
    h.monitor.start();
    assert.equal(h.monitor.noticeLate(1000), false);
    assert.equal(h.restarts(), 0);
    assert.equal(h.monitor.noticeLate(1001), true);
    assert.equal(h.restarts(), 1);
  });

  it('restarts on every late timer but logs and observes a burst once', () => {
    const h = harness(1000);
    h.monitor.start();
    assert.equal(h.monitor.noticeLate(4000), true);
    assert.equal(h.monitor.noticeLate(3999), true);
    assert.equal(h.monitor.epoch, 2);
    assert.equal(h.restarts(), 2);
    assert.deepEqual(h.observer.stalls, [4000]);
    assert.equal(h.logger.warnings().length, 1);
  });

  it('answers a stall but acts on none when stopped', () => {
    const h = harness(1000);
    assert.equal(h.monitor.noticeLate(5000), true);
    h.monitor.start();
    h.monitor.stop();
    assert.equal(h.monitor.noticeLate(5000), true);
    assert.equal(h.clock.pendingTimers, 0);
    assert.equal(h.monitor.epoch, 0);
    assert.equal(h.restarts(), 0);
    assert.deepEqual(h.observer.stalls, []);
  });
});
