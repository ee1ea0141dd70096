/**
 * A damaged store, with real agent processes: random bytes in catalog.db-wal after a kill -9,
 * and a catalog.db truncated to 0 bytes, make the agent refuse to start with
 * MESHWORK_ERR_STORE_CORRUPT instead of starting behind (issue 16); --accept-data-loss starts it.
 */
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeSync,
  closeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { spawnAgent, type AgentProcess } from '../helpers/cli.js';
import { http } from '../helpers/agent.js';
import { seededRandom } from '../helpers/seeded-random.js';
import { until } from '../helpers/until.js';

/** SQLite's WAL: a 32-byte header, then frames of a 24-byte header and one page (4096 bytes). */
const WAL_HEADER_BYTES = 32;
const WAL_FRAME_BYTES = 24 + 4096;

/** Every agent a test started, so a failed assertion leaves none running. */
const started: AgentProcess[] = [];
async function start(args: readonly string[]): Promise<AgentProcess> {
  const agent = await spawnAgent(args);
  started.push(agent);
  return agent;
}

/** Starts an agent that must refuse; answers its exit message (stderr included). */
async function refusal(args: readonly string[]): Promise<string> {
  const outcome = await start(args).then(
    async (agent) => {
      agent.child.kill('SIGKILL');
      await agent.exited;
      return undefined;
    },
    (err: Error) => err.message,
  );
  assert.ok(outcome !== undefined, 'the agent started on a damaged store');
  return outcome;
}

async function stop(agent: AgentProcess): Promise<void> {
  // The agent prints its address just before it installs its SIGTERM handler: one answered
  // request means the handler is in place.
  assert.equal((await http(agent.url, 'GET', '/health/live')).status, 200);
  agent.child.kill('SIGTERM');
  assert.equal(await agent.exited, 0, agent.stderr());
}

async function instancesOf(url: string): Promise<{ count: number }> {
  const r = await http<{ instances: unknown[] }>(url, 'GET', '/api/v1/services/web/instances');
  assert.equal(r.status, 200, r.text);
  return { count: r.body.instances.length };
}

describe('a damaged store (real agent processes)', () => {
  const dirs: string[] = [];
  /** A new data directory for one test: its arguments and its catalog.db. */
  const dataDir = (): { dir: string; args: string[]; db: string } => {
    const dir = mkdtempSync(join(tmpdir(), 'meshwork-damaged-'));
    dirs.push(dir);
    return { dir, args: ['--data-dir', dir], db: join(dir, 'catalog.db') };
  };
  after(async () => {
    for (const agent of started) {
      if (agent.child.exitCode === null && agent.child.signalCode === null) {
        agent.child.kill('SIGKILL');
        await agent.exited;
      }
    }
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it(
    'refuses random bytes in the WAL after a kill -9, starts with --accept-data-loss, then restarts cleanly',
    { timeout: 60_000 },
    async () => {
      const { dir, args, db } = dataDir();
      const agent = await start(args);
      let last = 0;
      for (let i = 0; i < 50; i++) {
        const r = await http(agent.url, 'PUT', '/api/v1/instances', {
          service: 'web',
          id: `web-${i}`,
          address: '127.0.0.1',
          port: 8000 + i,
        });
        assert.equal(r.status, 200, r.text);
        last = (r.body as { index: number }).index;
      }
      // The marker trails the commits by at most its interval; kill once it names the last one.
      await until(
        () => Number(readFileSync(join(dir, 'catalog.index'), 'utf8')) >= last,
        10_000,
        `catalog.index at ${last}`,
      );
      agent.child.kill('SIGKILL');
      assert.equal(await agent.exited, 'SIGKILL');

      // Damage a frame a third of the way into the WAL: SQLite silently drops it and every
      // frame after it (their checksums chain), so the commits after it are lost.
      const wal = `${db}-wal`;
      const frames = Math.floor((statSync(wal).size - WAL_HEADER_BYTES) / WAL_FRAME_BYTES);
      assert.ok(frames >= 50, `the WAL holds the burst (${frames} frames)`);
      const random = seededRandom(16);
      const garbage = Buffer.from(
        Array.from({ length: WAL_FRAME_BYTES }, () => Math.floor(random() * 256)),
      );
      const fd = openSync(wal, 'r+');
      writeSync(
        fd,
        garbage,
        0,
        garbage.length,
        WAL_HEADER_BYTES + Math.floor(frames / 3) * WAL_FRAME_BYTES,
      );
      closeSync(fd);

      const refused = await refusal(args);
      assert.match(refused, /exited \(1\)/);
      assert.match(refused, /MESHWORK_ERR_STORE_CORRUPT/);
      assert.match(refused, new RegExp(`catalog\\.index records index ${last} as durable`));
      assert.match(refused, /--accept-data-loss/);

      const accepted = await start([...args, '--accept-data-loss']);
      const kept = await instancesOf(accepted.url);
      assert.ok(kept.count < 50, `${kept.count} of 50 instances came back`);
      const next = await http(accepted.url, 'PUT', '/api/v1/instances', {
        service: 'other',
        id: 'after-loss',
        address: '127.0.0.1',
        port: 1,
      });
      assert.ok((next.body as { index: number }).index > last, 'indexes do not go back');
      assert.match(accepted.stderr(), /behind its durable index marker/);
      await stop(accepted);

      // What is left is now the store: a plain restart takes it as it is.
      const again = await start(args);
      assert.equal((await instancesOf(again.url)).count, kept.count);
      await stop(again);
    },
  );

  it('refuses a catalog.db truncated to 0 bytes; starts with --accept-data-loss', async () => {
    const { args, db } = dataDir();
    const agent = await start(args);
    assert.equal(
      (
        await http(agent.url, 'PUT', '/api/v1/instances', {
          service: 'web',
          id: 'z',
          address: '127.0.0.1',
          port: 1,
        })
      ).status,
      200,
    );
    await stop(agent);
    assert.equal(existsSync(`${db}-wal`), false, 'a clean stop leaves no WAL');
    truncateSync(db, 0);

    const refused = await refusal(args);
    assert.match(refused, /exited \(1\)/);
    assert.match(refused, /MESHWORK_ERR_STORE_CORRUPT/);
    assert.match(refused, /catalog\.db is at index 1 but/);

    const accepted = await start([...args, '--accept-data-loss']);
    assert.equal((await instancesOf(accepted.url)).count, 0);
    await stop(accepted);
    await stop(await start(args));
  });

  it('starts on a fresh data directory and restarts on it', async () => {
    const { dir, args } = dataDir();
    await stop(await start(args));
    // One commit on a fresh store: the mesh CA's root (made at the first start, issue 20).
    assert.equal(readFileSync(join(dir, 'catalog.index'), 'utf8'), '2\n');
    await stop(await start(args));
  });
});
