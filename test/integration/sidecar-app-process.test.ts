/** @module AppProcess with real child processes: exit codes as a shell reports them, SIGTERM then SIGKILL. */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { until } from '../helpers/until.js';
import { AppProcess, shellExitCode } from '../../src/sidecar/app-process.js';

const node = (script: string): string[] => [process.execPath, '-e', script];

describe('AppProcess', () => {
  it('reports the app’s own exit code and gives it the env', async () => {
    const app = new AppProcess({
      command: node('process.exit(process.env.MESHWORK_OUTBOUND === "http://x" ? 3 : 9)'),
      env: { MESHWORK_OUTBOUND: 'http://x' },
    });
    assert.deepEqual(await app.exited, { code: 3, signal: null });
    assert.equal(app.done, true);
  });

  it('stops an app with SIGTERM: a signal n is 128 + n', async () => {
    const app = new AppProcess({ command: node('setInterval(() => {}, 1000)'), env: {} });
    assert.deepEqual(await app.stop(10_000), { code: 143, signal: 'SIGTERM' });
  });

  it('sends SIGKILL when the app ignores SIGTERM past the deadline', async () => {
    const marker = join(mkdtempSync(join(tmpdir(), 'app-process-')), 'up');
    const app = new AppProcess({
      command: node(
        'process.on("SIGTERM", () => {}); require("node:fs").writeFileSync(process.env.MARKER, ""); setInterval(() => {}, 1000)',
      ),
      env: { MARKER: marker },
    });
    // Its handler must be in place first (else node's default SIGTERM ends it at once).
    await until(() => existsSync(marker), 10_000, 'the app up');
    assert.deepEqual(await app.stop(200), { code: 137, signal: 'SIGKILL' });
  });

  it('answers 127 for a command that does not exist', async () => {
    const app = new AppProcess({ command: ['/nonexistent/meshwork-app'], env: {} });
    assert.deepEqual(await app.exited, { code: 127, signal: null });
  });

  it('maps exits as a shell does', () => {
    assert.equal(shellExitCode(0, null), 0);
    assert.equal(shellExitCode(42, null), 42);
    assert.equal(shellExitCode(null, 'SIGINT'), 130);
    assert.equal(shellExitCode(null, 'SIGKILL'), 137);
  });
});
