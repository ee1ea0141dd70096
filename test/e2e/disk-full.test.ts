/**
 * A full disk under a real agent (a small tmpfs mounted for the test, so this needs root, as
 * CI has): writes answer 503, readiness says degraded and why, the log says it once, metrics
 * count it, and freeing space recovers (issue 16: 2,979 stack traces and /health/ready 200).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { http } from '../helpers/agent.js';
import { spawnAgent, type AgentProcess } from '../helpers/cli.js';
import { until } from '../helpers/until.js';

/** Writes `file` until the file system refuses (ENOSPC); everything else is a failure. */
function fillUp(file: string): void {
  const fd = openSync(file, 'w');
  try {
    for (const size of [1 << 16, 512]) {
      const chunk = Buffer.alloc(size, 0x5a);
      try {
        for (;;) writeSync(fd, chunk);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      }
    }
  } finally {
    closeSync(fd);
  }
}

const lines = (stderr: string, msg: string): number =>
  stderr.split('\n').filter((l) => l.includes(`"msg":"${msg}`)).length;

describe('a full disk under a real agent (tmpfs)', () => {
  const mnt = mkdtempSync(join(tmpdir(), 'meshwork-diskfull-'));
  const filler = join(mnt, 'filler');
  let mounted = false;
  let agent: AgentProcess | undefined;

  before(() => {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mnt]);
    mounted = true;
  });
  after(async () => {
    if (agent !== undefined && agent.child.exitCode === null && agent.child.signalCode === null) {
      agent.child.kill('SIGKILL');
      await agent.exited;
    }
    if (mounted) execFileSync('umount', [mnt]);
    rmSync(mnt, { recursive: true, force: true });
  });

  it(
    'answers 503, reports degraded readiness, logs once, and recovers',
    { timeout: 60_000 },
    async () => {
      const a = await spawnAgent(['--data-dir', join(mnt, 'data')]);
      agent = a;
      const register = (id: string) =>
        http(a.url, 'PUT', '/api/v1/instances', {
          service: 'web',
          id,
          address: '127.0.0.1',
          port: 8080,
          meta: { padding: 'x'.repeat(400) },
        });
      assert.equal((await register('before')).status, 200);
      assert.equal((await http(a.url, 'GET', '/health/ready')).status, 200);

      fillUp(filler);
      const statuses: number[] = [];
      for (let i = 0; i < 100; i++) {
        const r = await register(`full-${i}`);
        statuses.push(r.status);
        if (r.status !== 200) {
          assert.equal(r.status, 503, r.text);
          assert.equal(r.body.error.code, 'MESHWORK_ERR_STORE_UNAVAILABLE');
        }
      }
      // The Consul-compatible API refuses the same way, without a stack trace either.
      const consul = await http(a.url, 'PUT', '/v1/agent/service/register', {
        Name: 'web',
        ID: 'consul-full',
        Port: 8080,
      });
      assert.equal(consul.status, 503, consul.text);
      const refused = statuses.filter((s) => s === 503).length;
      assert.ok(refused >= 95, `${refused} of 100 writes refused on a full disk`);

      const ready = await http(a.url, 'GET', '/health/ready');
      assert.equal(ready.status, 503);
      assert.equal(ready.body.status, 'degraded');
      assert.match(ready.body.reason, /catalog\.db fail: disk full \(SQLITE_FULL\)/);
      const metrics = (await http(a.url, 'GET', '/metrics')).text;
      assert.match(metrics, /^meshwork_store_degraded 1$/m);
      const errorsTotal = Number(/^meshwork_store_write_errors_total (\d+)$/m.exec(metrics)?.[1]);
      assert.ok(errorsTotal >= refused, `${errorsTotal} write errors counted`);

      const stderr = a.stderr();
      assert.equal(lines(stderr, 'catalog writes failing'), 1, stderr);
      assert.equal(lines(stderr, 'request failed'), 0, 'no stack trace per refused write');
      assert.equal(stderr.split('\n').filter((l) => l.includes('"level":50')).length, 1);

      rmSync(filler);
      assert.equal((await register('after')).status, 200);
      await until(
        async () => (await http(a.url, 'GET', '/health/ready')).status === 200,
        10_000,
        'ready again',
      );
      assert.match((await http(a.url, 'GET', '/metrics')).text, /^meshwork_store_degraded 0$/m);
      assert.equal(lines(a.stderr(), 'catalog writes succeed again'), 1);

      // Again, and this time nothing writes after space is freed: the store's trial write
      // (once a second while degraded) brings readiness back by itself.
      fillUp(filler);
      assert.equal((await register('full-again')).status, 503);
      assert.equal((await http(a.url, 'GET', '/health/ready')).status, 503);
      rmSync(filler);
      await until(
        async () => (await http(a.url, 'GET', '/health/ready')).status === 200,
        10_000,
        'ready again without a write',
      );
      assert.equal(lines(a.stderr(), 'catalog writes failing'), 2);
      assert.equal(lines(a.stderr(), 'catalog writes succeed again'), 2);

      assert.equal((await http(a.url, 'GET', '/health/live')).status, 200);
      a.child.kill('SIGTERM');
      assert.equal(await a.exited, 0, a.stderr());
    },
  );
});
