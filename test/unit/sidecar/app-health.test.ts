/** @module Unit tests of the sidecar's app health check: thresholds, start period, timeouts, on FakeClock. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  AppHealthCheck,
  httpAppProbe,
  INITIAL_APP_HEALTH,
  nextAppHealth,
  tcpAppProbe,
  type AppProbeResult,
  type AppHealthState,
} from '../../../src/sidecar/app-health.js';
import { DEFAULT_SIDECAR_HEALTH_OPTIONS } from '../../../src/sidecar/options.js';
import { FakeClock, flushMicrotasks } from '../../../src/testing/fake-clock.js';

const health = {
  ...DEFAULT_SIDECAR_HEALTH_OPTIONS,
  intervalMs: 1_000,
  timeoutMs: 500,
  successesBeforePassing: 2,
  failuresBeforeCritical: 3,
  startPeriodMs: 0,
};

/** A check whose probe answers from `script` (ok / fail / hang), one entry per probe. */
function scripted(script: ('ok' | 'fail' | 'hang')[], options: Partial<typeof health> = {}) {
  const clock = new FakeClock();
  let n = 0;
  const probe = (signal: AbortSignal): Promise<AppProbeResult> => {
    const step = script[Math.min(n++, script.length - 1)];
    if (step === 'hang')
      return new Promise((resolve) =>
        signal.addEventListener('abort', () => resolve({ ok: false, output: 'timed out' })),
      );
    return Promise.resolve({ ok: step === 'ok', output: `probe ${n}: ${step}` });
  };
  const check = new AppHealthCheck({ probe, health: { ...health, ...options }, clock });
  const changes: [number, string][] = [];
  check.on('change', (s) => changes.push([clock.monotonicMs(), s.status]));
  return { clock, check, changes };
}

async function run(clock: FakeClock, ms: number, stepMs = 100): Promise<void> {
  for (let t = 0; t < ms; t += stepMs) {
    clock.advance(stepMs);
    await flushMicrotasks();
  }
}

describe('AppHealthCheck', () => {
  it('turns passing after successesBeforePassing successes, critical after failuresBeforeCritical failures', async () => {
    const { clock, check, changes } = scripted([
      'ok',
      'ok',
      'fail',
      'fail',
      'ok',
      'fail',
      'fail',
      'fail',
    ]);
    check.start();
    await run(clock, 8_000);
    // probes at 0 (first step fires at 100), 1100, 2100, ...: passing at the 2nd success, a
    // success in between resets the failure count, critical at the 3rd failure in a row.
    assert.deepEqual(changes, [
      [1100, 'passing'],
      [7100, 'critical'],
    ]);
    assert.equal(check.state.output, 'probe 8: fail');
    assert.deepEqual(check.probes, { passed: 3, failed: 5 });
    await check.stop();
  });

  it('settles critical from the initial status once failures are counted', async () => {
    const { clock, check, changes } = scripted(['fail']);
    assert.equal(check.state.status, 'critical');
    assert.equal(check.state.settled, false);
    check.start();
    await run(clock, 3_000);
    assert.deepEqual(changes, [[2100, 'critical']]);
    assert.equal(check.state.settled, true);
    await check.stop();
  });

  it('does not count failures inside the start period', async () => {
    const { clock, check, changes } = scripted(['fail'], { startPeriodMs: 5_000 });
    check.start();
    await run(clock, 7_000);
    // failures at 100 .. 4100 are not counted; 5100, 6100, 7100 are: critical at 7100.
    assert.deepEqual(changes, []);
    await run(clock, 200);
    assert.deepEqual(changes, [[7100, 'critical']]);
    await check.stop();
  });

  it('fails a probe that does not answer within timeoutMs', async () => {
    const { clock, check } = scripted(['hang'], { failuresBeforeCritical: 1 });
    check.start();
    await run(clock, 550);
    assert.equal(check.state.status, 'critical');
    assert.equal(check.state.output, 'timed out');
    await check.stop();
  });

  it('stops probing after stop()', async () => {
    const { clock, check } = scripted(['ok']);
    check.start();
    await run(clock, 1_500);
    await check.stop();
    const before = check.probes.passed;
    await run(clock, 5_000);
    assert.equal(check.probes.passed, before);
    assert.equal(clock.pendingTimers, 0);
  });
});

describe('nextAppHealth', () => {
  // Property: the status is passing iff the last `successesBeforePassing` results were
  // successes, or it was passing and fewer than `failuresBeforeCritical` failures followed.
  it('agrees with a direct reading of the result history', () => {
    fc.assert(
      fc.property(
        fc.array(fc.boolean(), { maxLength: 60 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 5 }),
        (history, successesBeforePassing, failuresBeforeCritical) => {
          let s: AppHealthState = INITIAL_APP_HEALTH;
          let expected: 'passing' | 'critical' = 'critical';
          let streak = 0;
          let last: boolean | undefined;
          for (const ok of history) {
            streak = ok === last ? streak + 1 : 1;
            last = ok;
            if (ok && streak >= successesBeforePassing) expected = 'passing';
            if (!ok && streak >= failuresBeforeCritical) expected = 'critical';
            s = nextAppHealth(
              s,
              { ok, output: '' },
              { successesBeforePassing, failuresBeforeCritical },
              false,
            );
            assert.equal(s.status, expected);
          }
        },
      ),
    );
  });
});

describe('app probes', () => {
  async function server(status: number): Promise<{ server: Server; port: number }> {
    const s = createServer((_req, res) => {
      res.writeHead(status);
      res.end();
    });
    s.listen(0, '127.0.0.1');
    await once(s, 'listening');
    return { server: s, port: (s.address() as { port: number }).port };
  }

  it('HTTP: 2xx passes, 5xx and a refused connection fail; TCP: a listener passes', async () => {
    const good = await server(204);
    const bad = await server(503);
    const signal = new AbortController().signal;
    try {
      assert.deepEqual(await httpAppProbe('127.0.0.1', good.port, '/healthz')(signal), {
        ok: true,
        output: `HTTP GET http://127.0.0.1:${good.port}/healthz: 204`,
      });
      assert.equal((await httpAppProbe('127.0.0.1', bad.port, '/')(signal)).ok, false);
      assert.equal((await tcpAppProbe('127.0.0.1', good.port)(signal)).ok, true);
    } finally {
      good.server.close();
      bad.server.close();
    }
    await once(good.server, 'close');
    const refused = await httpAppProbe('127.0.0.1', good.port, '/')(signal);
    assert.equal(refused.ok, false);
    assert.match(refused.output, /ECONNREFUSED/);
    assert.equal((await tcpAppProbe('127.0.0.1', good.port)(signal)).ok, false);
  });
});
