/**
 * @module `meshwork sidecar` end to end: a real agent process, real sidecar processes, and a small
 * real app (test/fixtures/sidecar-app.mjs). Registration and health in the catalog, the app held
 * until the sidecar routes, SIGTERM, a job's exit code, re-registration, and a restart from the
 * persisted snapshot while the agent is down.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, afterEach, before, describe, it } from 'node:test';
import { http } from '../helpers/agent.js';
import {
  FAST_SIDECAR_HEALTH,
  runCli,
  spawnAgent,
  spawnSidecar,
  spawnSidecarWithApp,
  stopSidecars,
  type AgentProcess,
  type AppSidecarProcess,
  type SidecarProcess,
} from '../helpers/cli.js';
import { until } from '../helpers/until.js';
import { SNAPSHOT_FILE } from '../../src/client/mesh-subscriber.js';
import type { InstanceDto } from '../../src/protocol/api-types.js';

const APP = fileURLToPath(new URL('../fixtures/sidecar-app.mjs', import.meta.url));

/** Fast health checks, critical at the first failure. */
const FAST_HEALTH = {
  ...FAST_SIDECAR_HEALTH,
  MESHWORK_SIDECAR__HEALTH_FAILURES_BEFORE_CRITICAL: '1',
};

/** The version of the snapshot persisted under `dataDir`, if any. */
function persistedVersion(dataDir: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(join(dataDir, SNAPSHOT_FILE), 'utf8')) as { version: string })
      .version;
  } catch {
    return undefined;
  }
}

/** The `app-start {...}` report the fixture printed, once it did. */
async function appReport(stdout: () => string): Promise<Record<string, unknown>> {
  const line = await until(
    () => /^app-start (.*)$/m.exec(stdout())?.[1],
    10_000,
    'the app started',
  );
  return JSON.parse(line) as Record<string, unknown>;
}

describe('meshwork sidecar', () => {
  let agent: AgentProcess;
  const dir = mkdtempSync(join(tmpdir(), 'sidecar-e2e-'));
  before(async () => {
    agent = await spawnAgent(['--dev', '--log-level', 'warn']);
  });
  // Every test's sidecars and their apps end with it, on a failure too (a kill -9'd sidecar's app
  // included): one left running would hold this file's process, and the suite, open.
  afterEach(() => stopSidecars());
  after(async () => {
    agent.child.kill('SIGTERM');
    await agent.exited;
    rmSync(dir, { recursive: true, force: true });
  });

  const instances = async (service: string): Promise<InstanceDto[]> =>
    (await http(agent.url, 'GET', `/api/v1/services/${service}/instances`)).body?.instances ?? [];

  it('refuses bad flags with every problem, exit 2', async () => {
    const r = await runCli([
      'sidecar',
      '--app-port',
      'x',
      '--inbound',
      'nowhere',
      '--upstream',
      'bad',
    ]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /service: /);
    assert.match(r.stderr, /appPort: must be a port number 1-65535/);
    assert.match(r.stderr, /inbound: must be host:port/);
    assert.match(r.stderr, /upstreams\[0\]: "bad": must be SERVICE=HOST:PORT/);
  });

  it('registers the app, reports its health, holds it until ready, and on SIGTERM deregisters and stops it', async () => {
    const sidecar = await spawnSidecarWithApp(
      APP,
      [
        ...['--service', 'orders', '--app-health', '/healthz'],
        ...['--registry', agent.url, '--data-dir', join(dir, 'orders'), '--meta', 'version=v1'],
        ...['--tag', 'blue'],
      ],
      FAST_HEALTH,
    );
    const { appPort } = sidecar;
    const report = await appReport(sidecar.stdout);
    // The app started once the sidecar routed: a snapshot in force, the outbound listener up.
    assert.equal(typeof report.snapshotVersion, 'string');
    assert.equal(report.outboundAccepts, true);
    assert.equal(report.outbound, sidecar.outboundUrl);
    assert.equal(report.httpProxy, null);

    const passing = await until(
      async () => (await instances('orders')).find((i) => i.status === 'passing'),
      10_000,
      'orders registered and passing',
    );
    assert.equal(passing.address, '127.0.0.1');
    assert.equal(passing.port, Number(new URL(sidecar.inboundUrl).port));
    assert.deepEqual(passing.tags, ['blue']);
    assert.equal(passing.meta['app-port'], String(appPort));
    assert.equal(passing.meta.protocol, 'http');
    assert.equal(passing.meta.version, 'v1');
    assert.match(passing.meta['sidecar-version'] ?? '', /^\d+\.\d+\.\d+/);
    await until(
      async () => (await http(sidecar.adminUrl, 'GET', '/ready')).status === 200,
      10_000,
      'ready',
    );
    // Its memory savings hold in the real process (sidecar/memory-fallbacks.ts), WebAssembly's
    // baseline tier among them, after the undici connections of registration and snapshots.
    const metrics = (await http(sidecar.adminUrl, 'GET', '/metrics')).text;
    for (const part of ['undici', 'young-generation', 'wasm-tier'])
      assert.match(
        metrics,
        new RegExp(`^meshwork_sidecar_memory_fallback\\{part="${part}"\\} 0$`, 'm'),
      );

    // Another sidecar routes to the app through the registered inbound address and port.
    const caller = await spawnSidecar(
      ['--service', 'front', '--app-port', '1', '--registry', agent.url],
      { ...FAST_HEALTH, MESHWORK_SIDECAR__DATA_DIR: join(dir, 'front') },
    );
    try {
      const echoed = await until(
        async () => {
          const r = await http(caller.outboundUrl, 'GET', '/hello', undefined, { host: 'orders' });
          return r.status === 200 ? r.body : undefined;
        },
        10_000,
        'orders reachable through the caller’s outbound',
      );
      assert.equal(echoed.url, '/hello');
      assert.equal(echoed.headers['x-meshwork-source-service'], 'front');
    } finally {
      caller.child.kill('SIGTERM');
      assert.equal(await caller.exited, 0);
    }

    // The registry loses the instance: the sidecar registers it again.
    await http(agent.url, 'DELETE', `/api/v1/instances/${passing.id}`);
    await until(
      async () =>
        (await instances('orders')).some((i) => i.id === passing.id && i.status === 'passing'),
      10_000,
      're-registered and passing',
    );

    // The app turns sick: the instance turns critical, with the probe's output.
    await http(`http://127.0.0.1:${appPort}`, 'GET', '/sick');
    const critical = await until(
      async () => (await instances('orders')).find((i) => i.status === 'critical'),
      10_000,
      'critical',
    );
    assert.match(critical.checks[0]?.output ?? '', /healthz: 500/);

    sidecar.child.kill('SIGTERM');
    assert.equal(await sidecar.exited, 0);
    assert.match(sidecar.stdout(), /^app-sigterm$/m);
    assert.deepEqual(await instances('orders'), []);
  });

  it('loses no request when one of two instances is stopped with SIGTERM under 500 rps', async () => {
    const start = (n: number) =>
      spawnSidecarWithApp(
        APP,
        [
          ...['--service', 'drain', '--app-health', '/healthz'],
          ...['--registry', agent.url, '--data-dir', join(dir, `drain-${n}`)],
        ],
        FAST_HEALTH,
      );
    const [one, two] = await Promise.all([start(1), start(2)]);
    const caller = await spawnSidecar(
      ['--service', 'drain-caller', '--app-port', '1', '--registry', agent.url],
      { ...FAST_HEALTH, MESHWORK_SIDECAR__DATA_DIR: join(dir, 'drain-caller') },
    );
    try {
      // Both instances in rotation at the caller.
      const pids = new Set<number>();
      await until(
        async () => {
          const r = await http(caller.outboundUrl, 'GET', '/', undefined, { host: 'drain' });
          if (r.status === 200) pids.add(r.body.pid as number);
          return pids.size === 2;
        },
        15_000,
        'both instances reachable',
      );
      const statuses = new Map<number, number>();
      const pending: Promise<void>[] = [];
      // 5 requests every 10 ms for 3 s (500 rps); the SIGTERM goes out at 1 s.
      for (let tick = 0; tick < 300; tick++) {
        if (tick === 100) one.child.kill('SIGTERM');
        for (let k = 0; k < 5; k++)
          pending.push(
            http(caller.outboundUrl, 'GET', `/r/${tick}/${k}`, undefined, { host: 'drain' }).then(
              (r) => void statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1),
              () => void statuses.set(0, (statuses.get(0) ?? 0) + 1),
            ),
          );
        await new Promise((r) => setTimeout(r, 10));
      }
      await Promise.all(pending);
      assert.deepEqual([...statuses], [[200, 1500]]);
      assert.equal(await one.exited, 0);
    } finally {
      caller.child.kill('SIGTERM');
      two.child.kill('SIGTERM');
      await Promise.all([caller.exited, two.exited]);
    }
  });

  it('exits with a job app’s exit code, deregistered', async () => {
    const sidecar = await spawnSidecarWithApp(
      APP,
      ['--service', 'job', '--registry', agent.url, '--data-dir', join(dir, 'job')],
      { ...FAST_HEALTH, APP_EXIT_CODE: '3' },
    );
    assert.equal(await sidecar.exited, 3);
    assert.deepEqual(await instances('job'), []);
  });

  it('logs an app that crashes, deregisters it, and exits with the shell’s code for it', async () => {
    const sidecar = await spawnSidecarWithApp(
      APP,
      ['--service', 'crashy', '--registry', agent.url, '--data-dir', join(dir, 'crashy')],
      FAST_HEALTH,
    );
    const pid = Number((await appReport(sidecar.stdout)).pid);
    await until(
      async () => (await instances('crashy')).some((i) => i.status === 'passing'),
      10_000,
      'crashy registered and passing',
    );
    process.kill(pid, 'SIGKILL');
    assert.equal(await sidecar.exited, 128 + 9);
    assert.match(sidecar.stderr(), /the app crashed; deregistering/);
    assert.deepEqual(await instances('crashy'), []);
  });

  it('after kill -9, restarts from its persisted snapshot while the agent is down, and routes on it', async () => {
    const own = await spawnAgent(['--dev', '--log-level', 'warn']);
    // Every sidecar of the test, so that what they logged goes with a failure (afterEach stops
    // them, and the apps they leave running).
    const started: SidecarProcess[] = [];
    const start = async (
      ...a: Parameters<typeof spawnSidecarWithApp>
    ): Promise<AppSidecarProcess> => {
      const s = await spawnSidecarWithApp(...a);
      started.push(s);
      return s;
    };
    try {
      const dataDir = join(dir, 'stable');
      const args = ['--service', 'stable', '--registry', own.url, '--data-dir', dataDir];
      // A peer that stays up through the test: what the restarted sidecar must still reach.
      const peer = await start(
        APP,
        ['--service', 'peer', '--registry', own.url, '--data-dir', join(dir, 'peer')],
        FAST_HEALTH,
      );
      const peerApp = Number((await appReport(peer.stdout)).pid);
      const viaPeer = async (outbound: string): Promise<number | undefined> => {
        const r = await http(outbound, 'GET', '/through', undefined, { host: 'peer' });
        return r.status === 200 ? (r.body.pid as number) : undefined;
      };
      const first = await start(APP, args, FAST_HEALTH);
      // The snapshot in force holds the peer's endpoint (requests reach its app).
      assert.equal(
        await until(() => viaPeer(first.outboundUrl), 10_000, 'peer reachable'),
        peerApp,
      );
      const firstApp = Number((await appReport(first.stdout)).pid);
      // The agent goes first: no snapshot can arrive after this, so the one in force is the last.
      own.child.kill('SIGTERM');
      await own.exited;
      const version = (await http(first.adminUrl, 'GET', '/config_dump')).body.version as string;
      await until(
        () => persistedVersion(dataDir) === version,
        10_000,
        'the snapshot in force persisted',
      );
      // The control plane away: the sidecar keeps its snapshot and stays ready.
      await until(
        async () => (await http(first.adminUrl, 'GET', '/ready')).status === 200,
        10_000,
        'ready with the agent down',
      );
      first.child.kill('SIGKILL');
      await first.exited;
      // kill -9 leaves the app behind (no one told it): end it before it holds the port.
      process.kill(firstApp, 'SIGTERM');

      // On the same app port.
      const second = await start(APP, args, FAST_HEALTH, first.appPort);
      const dump = await until(
        async () => {
          const d = (await http(second.adminUrl, 'GET', '/config_dump')).body;
          return d?.version === null ? undefined : d;
        },
        10_000,
        'the persisted snapshot in force',
      );
      assert.equal(dump.version, version);
      assert.equal(dump.from, 'disk');
      const report = await appReport(second.stdout);
      assert.equal(report.snapshotVersion, version, 'the app started on the persisted snapshot');
      // And it routes on it: the peer is reached with no control plane anywhere.
      assert.equal(await viaPeer(second.outboundUrl), peerApp);
      second.child.kill('SIGTERM');
      peer.child.kill('SIGTERM');
      assert.equal(await second.exited, 0);
      await peer.exited;
    } catch (err) {
      const logs = started.map((s, i) => `sidecar ${i + 1} stderr:\n${s.stderr()}`).join('\n');
      throw new Error(`${String(err)}\n${logs}`, { cause: err });
    } finally {
      // A no-op once it exited (the test stops it halfway).
      own.child.kill('SIGKILL');
      await own.exited;
    }
  });
});
