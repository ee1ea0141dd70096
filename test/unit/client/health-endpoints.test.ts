/** @module Unit tests of HealthEndpoints: probe verdicts, status codes, timeouts and drain. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createHealthEndpoints } from '../../../src/client/health-endpoints.js';
import { FakeClock, flushMicrotasks } from '../../../src/testing/fake-clock.js';

describe('HealthEndpoints', () => {
  it('passes readiness when every dependency passes, and fails it when one fails', async () => {
    let dbUp = true;
    const health = createHealthEndpoints({
      readiness: {
        db: async () => {
          if (!dbUp) throw new Error('connection refused');
        },
        cache: () => true,
      },
    });
    const ok = await health.evaluate('ready');
    assert.equal(ok.statusCode, 200);
    assert.equal(ok.report.status, 'pass');
    assert.deepEqual(Object.keys(ok.report.checks).sort(), ['cache', 'db', 'draining']);
    dbUp = false;
    const bad = await health.evaluate('ready');
    assert.equal(bad.statusCode, 503);
    assert.deepEqual(bad.report.checks.db, [{ status: 'fail', output: 'connection refused' }]);
  });

  it('answers warn with 200 by default and 429 when asked (the agent reads 429 as warning)', async () => {
    const checks = { liveness: { pool: () => 'warn' as const } };
    assert.equal((await createHealthEndpoints(checks).evaluate('live')).statusCode, 200);
    const consulStyle = createHealthEndpoints({ ...checks, warnStatusCode: 429 });
    const r = await consulStyle.evaluate('live');
    assert.equal(r.statusCode, 429);
    assert.equal(r.report.status, 'warn');
  });

  it('fails a check that takes longer than checkTimeoutMs', async () => {
    const clock = new FakeClock();
    const health = createHealthEndpoints({
      readiness: { slow: () => new Promise<void>(() => undefined) },
      checkTimeoutMs: 100,
      clock,
    });
    const pending = health.evaluate('ready');
    await flushMicrotasks();
    clock.advance(100);
    const r = await pending;
    assert.equal(r.statusCode, 503);
    assert.deepEqual(r.report.checks.slow, [{ status: 'fail', output: 'no answer in 100 ms' }]);
  });

  it('fails startup until markStarted, and readiness once draining', async () => {
    const health = createHealthEndpoints();
    assert.equal((await health.evaluate('startup')).statusCode, 503);
    health.markStarted();
    assert.equal((await health.evaluate('startup')).statusCode, 200);
    assert.equal((await health.evaluate('ready')).statusCode, 200);
    health.setDraining();
    assert.equal(health.draining, true);
    assert.equal((await health.evaluate('ready')).statusCode, 503);
    assert.equal((await health.evaluate('live')).statusCode, 200, 'a draining service is alive');
  });

  it('registers the three routes on a fastify-shaped app', async () => {
    const routes = new Map<string, (req: unknown, reply: unknown) => Promise<unknown>>();
    createHealthEndpoints().registerFastify({
      get: (path, handler) => routes.set(path, handler as never),
    });
    assert.deepEqual([...routes.keys()], ['/health/live', '/health/ready', '/health/startup']);
    const sent: { code?: number; type?: string; body?: string } = {};
    const reply = {
      code: (c: number) => ((sent.code = c), reply),
      header: (_n: string, v: string) => ((sent.type = v), reply),
      send: (b: string) => (sent.body = b),
    };
    await routes.get('/health/live')?.({}, reply);
    assert.equal(sent.code, 200);
    assert.equal(sent.type, 'application/health+json');
    assert.deepEqual(JSON.parse(sent.body ?? ''), { status: 'pass', checks: {} });
  });
});
