/**
 * @module e2e: `meshwork sync docker` (issue 24) against a real, private dockerd and a real
 * agent: containers appear from their labels and go when they stop, pause is maintenance, a sync
 * killed with SIGKILL reconciles on restart, bad labels are skipped and reported, and two syncs
 * with different node names keep their own instances, and a dropped Docker connection ends in a
 * full reconcile. Needs root and `scripts/ensure-tools.sh docker` (npm test's pretest runs it).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { InstanceDto } from '../../src/protocol/api-types.js';
import { BIN, runCli, spawnAgent, type AgentProcess } from '../helpers/cli.js';
import { startPrivateDocker, usePrivateDocker, type PrivateDocker } from '../helpers/docker.js';
import { freePort } from '../helpers/ports.js';
import { until } from '../helpers/until.js';

/** The bound the issue sets from a docker operation to the catalog showing it. */
const BOUND_MS = 2_000;

interface SyncProcess {
  readonly child: ChildProcess;
  readonly adminUrl: string;
  stderr(): string;
}

/** Spawns `meshwork sync docker` and resolves once its first full reconcile is applied. */
async function spawnSync(
  docker: PrivateDocker,
  registry: string,
  node: string,
  dockerUrl = docker.url,
): Promise<SyncProcess> {
  const child = spawn(
    process.execPath,
    [
      BIN,
      'sync',
      'docker',
      '--docker',
      dockerUrl,
      '--registry',
      registry,
      '--node-name',
      node,
      '--admin',
      '127.0.0.1:0',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const adminUrl = await until(
    () => {
      if (child.exitCode !== null) throw new Error(`sync exited ${child.exitCode}: ${err}`);
      return /admin (http:\/\/\S+)\)/.exec(out)?.[1];
    },
    10_000,
    'printing its admin URL',
  );
  await until(
    async () => (await fetch(`${adminUrl}/ready`)).status === 200,
    10_000,
    'ready (first full reconcile applied)',
  );
  return { child, adminUrl, stderr: () => err };
}

async function stopSync(s: SyncProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return;
  const exited = once(s.child, 'exit');
  s.child.kill(signal);
  await exited;
}

/**
 * A TCP listener in front of the daemon's socket, for `--docker tcp://...`: `cut` drops every
 * connection and refuses new ones (Docker is away for the sync), `restore` lets them through.
 */
async function dockerProxy(
  socketPath: string,
): Promise<{ url: string; cut(): void; restore(): void; close(): void }> {
  let refusing = false;
  const open = new Set<Socket>();
  const server = createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = connect(socketPath);
    open.add(client).add(upstream);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream).pipe(client);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const cut = (): void => {
    refusing = true;
    for (const s of open) s.destroy();
  };
  return {
    url: `tcp://127.0.0.1:${(server.address() as AddressInfo).port}`,
    cut,
    restore: () => (refusing = false),
    close: () => {
      cut();
      server.close();
    },
  };
}

/** Every instance in the catalog, across services. */
async function allInstances(agentUrl: string): Promise<InstanceDto[]> {
  const services = (await (await fetch(`${agentUrl}/api/v1/services`)).json()) as {
    services: { name: string }[];
  };
  const out: InstanceDto[] = [];
  for (const s of services.services) {
    const r = await fetch(`${agentUrl}/api/v1/services/${s.name}/instances`);
    if (r.ok) out.push(...((await r.json()) as { instances: InstanceDto[] }).instances);
  }
  return out;
}

async function instance(agentUrl: string, id: string): Promise<InstanceDto | undefined> {
  const r = await fetch(`${agentUrl}/api/v1/instances/${id}`);
  if (r.status === 404) return undefined;
  return ((await r.json()) as { instance: InstanceDto }).instance;
}

/** The ids (12 characters) of the instances an apply set owns, sorted. */
async function owned(agentUrl: string, set: string): Promise<string[]> {
  return (await allInstances(agentUrl))
    .filter((i) => i.managedBy === set)
    .map((i) => i.id)
    .sort();
}

/** A web container: busybox httpd on 127.0.0.1:<port>, serving /health. */
async function web(
  d: PrivateDocker,
  name: string,
  service: string,
  extra: Record<string, string> = {},
): Promise<{ id: string; port: number; t0: number }> {
  const port = await freePort();
  const t0 = Date.now();
  const c = await d.run(
    name,
    {
      'meshwork.service': service,
      'meshwork.port': String(port),
      'meshwork.check.http': '/health',
      'meshwork.check.interval': '1s',
      ...extra,
    },
    ['httpd', '-f', '-p', `127.0.0.1:${port}`, '-h', '/www'],
  );
  return { id: c.id.slice(0, 12), port, t0 };
}

describe('meshwork sync docker', () => {
  const docker = usePrivateDocker();
  let agent: AgentProcess;
  let sync: SyncProcess;

  before(async () => {
    agent = await spawnAgent(['--dev']);
    sync = await spawnSync(docker(), agent.url, 'a');
  });
  after(async () => {
    if (sync !== undefined) await stopSync(sync);
    agent?.child.kill('SIGTERM');
    if (agent !== undefined) await agent.exited;
  });

  it('refuses bad flags with every problem, exit 2', async () => {
    const r = await runCli([
      'sync',
      'docker',
      '--label-prefix',
      'bad prefix!',
      '--admin',
      'nowhere',
    ]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /labelPrefix/);
    assert.match(r.stderr, /admin/);
    const noRuntime = await runCli(['sync', 'kubernetes']);
    assert.equal(noRuntime.code, 2);
  });

  let first: { id: string; port: number; t0: number };

  it('registers a labelled container with its check passing within 2 s', async () => {
    first = await web(docker(), 'web-1', 'web', {
      'meshwork.tags': 'v1, blue',
      'meshwork.meta.version': '1.2.0',
      'meshwork.weight': '5',
    });
    const i = await until(
      async () => {
        const i = await instance(agent.url, first.id);
        return i?.status === 'passing' ? i : undefined;
      },
      10_000,
      'passing',
    );
    const elapsed = Date.now() - first.t0;
    assert.ok(elapsed <= BOUND_MS, `passing after ${elapsed} ms`);
    assert.equal(i.service, 'web');
    assert.equal(i.address, '127.0.0.1');
    assert.equal(i.port, first.port);
    assert.equal(i.source, 'orchestrator');
    assert.equal(i.managedBy, 'docker:a');
    assert.deepEqual(i.tags, ['v1', 'blue']);
    assert.equal(i.meta.version, '1.2.0');
    assert.equal(i.meta.container, 'web-1');
    assert.equal(i.meta.node, 'a');
    assert.equal(i.weights.passing, 5);
    assert.equal(i.checks.length, 1);
    assert.equal(i.checks[0]?.status, 'passing');
  });

  it('deregisters a container within 2 s of docker kill', async () => {
    const t0 = Date.now();
    await docker().docker.getContainer('web-1').kill();
    await until(async () => (await instance(agent.url, first.id)) === undefined, 10_000, 'gone');
    const elapsed = Date.now() - t0;
    assert.ok(elapsed <= BOUND_MS, `gone after ${elapsed} ms`);
  });

  it('puts a paused container in maintenance, and takes it out on unpause', async () => {
    const w = await web(docker(), 'web-2', 'web');
    await until(
      async () => (await instance(agent.url, w.id))?.status === 'passing',
      10_000,
      'passing',
    );
    const c = docker().docker.getContainer('web-2');
    const t0 = Date.now();
    await c.pause();
    await until(
      async () => (await instance(agent.url, w.id))?.status === 'maintenance',
      10_000,
      'in maintenance',
    );
    const elapsed = Date.now() - t0;
    assert.ok(elapsed <= BOUND_MS, `in maintenance after ${elapsed} ms`);
    await c.unpause();
    await until(
      async () => (await instance(agent.url, w.id))?.status === 'passing',
      10_000,
      'passing again',
    );
  });

  it('skips a container with bad labels, reports it in the log and a metric, and keeps syncing', async () => {
    const port = await freePort();
    const bad = await docker().run(
      'bad-1',
      { 'meshwork.service': 'bad', 'meshwork.port': 'http', 'meshwork.check.grpc': 'x' },
      ['httpd', '-f', '-p', `127.0.0.1:${port}`, '-h', '/www'],
    );
    const good = await web(docker(), 'good-1', 'good');
    await until(
      async () => (await instance(agent.url, good.id))?.status === 'passing',
      10_000,
      'good passing',
    );
    assert.equal(await instance(agent.url, bad.id.slice(0, 12)), undefined);
    await until(() => /workload skipped: bad labels/.test(sync.stderr()), 10_000, 'logged');
    const line = sync
      .stderr()
      .split('\n')
      .find((l) => l.includes('workload skipped'));
    assert.match(line ?? '', /bad-1/);
    assert.match(line ?? '', /meshwork\.port: \\"http\\" is not a whole number/);
    assert.match(line ?? '', /meshwork\.check\.grpc: unknown check kind/);
    const metrics = await (await fetch(`${sync.adminUrl}/metrics`)).text();
    assert.match(metrics, /meshwork_sync_invalid_workloads_total\{source="docker"\} 1\b/);
  });

  it('killed with SIGKILL while containers come and go, then restarted, ends with exactly the running set', async () => {
    const d = docker();
    const before1 = await web(d, 'churn-1', 'churn');
    const before2 = await web(d, 'churn-2', 'churn');
    await until(
      async () => (await instance(agent.url, before2.id)) !== undefined,
      10_000,
      'registered',
    );
    // Containers start and stop around the kill, and while the sync is down.
    const during = web(d, 'churn-3', 'churn');
    await stopSync(sync, 'SIGKILL');
    await during;
    await d.docker.getContainer('churn-1').kill();
    await d.docker.getContainer('churn-2').remove({ force: true });
    await d.docker.getContainer('web-2').stop({ t: 0 });
    const late = await web(d, 'churn-4', 'churn');
    sync = await spawnSync(d, agent.url, 'a');
    const running = (await d.docker.listContainers())
      .filter(
        (c) => c.Labels['meshwork.service'] !== undefined && c.Labels['meshwork.service'] !== 'bad',
      )
      .map((c) => c.Id.slice(0, 12))
      .sort();
    assert.ok(
      running.includes(late.id) && !running.includes(before1.id) && !running.includes(before2.id),
    );
    assert.deepEqual(await owned(agent.url, 'docker:a'), running);
  });

  it('after the Docker connection drops, reconciles the whole set once back', async () => {
    const d = docker();
    await stopSync(sync);
    const proxy = await dockerProxy(d.url.slice('unix://'.length));
    try {
      sync = await spawnSync(d, agent.url, 'a', proxy.url);
      const kept = await web(d, 'drop-1', 'drop');
      const stopped = await web(d, 'drop-2', 'drop');
      await until(
        async () => (await instance(agent.url, stopped.id)) !== undefined,
        10_000,
        'registered through the proxy',
      );
      proxy.cut();
      await until(
        async () => (await fetch(`${sync.adminUrl}/ready`)).status === 503,
        10_000,
        'not ready once Docker is away',
      );
      // While the sync cannot see Docker: one container stops, another starts.
      await d.docker.getContainer('drop-2').kill();
      const started = await web(d, 'drop-3', 'drop');
      assert.notEqual(await instance(agent.url, stopped.id), undefined, 'the sync missed the kill');
      proxy.restore();
      await until(
        async () => (await fetch(`${sync.adminUrl}/ready`)).status === 200,
        15_000,
        'ready again (full reconcile applied)',
      );
      const drop = (await allInstances(agent.url))
        .filter((i) => i.service === 'drop')
        .map((i) => i.id)
        .sort();
      assert.deepEqual(drop, [kept.id, started.id].sort());
      const metrics = await (await fetch(`${sync.adminUrl}/metrics`)).text();
      assert.match(metrics, /meshwork_sync_events_total\{kind="disconnected"\} [1-9]/);
    } finally {
      await stopSync(sync);
      proxy.close();
      sync = await spawnSync(d, agent.url, 'a');
    }
  });

  it('two syncs with different node names keep their own instances', async () => {
    const other = await startPrivateDocker();
    let syncB: SyncProcess | undefined;
    try {
      const setA = await owned(agent.url, 'docker:a');
      assert.ok(setA.length > 0);
      syncB = await spawnSync(other, agent.url, 'b');
      const b1 = await web(other, 'web-b1', 'web');
      await until(
        async () => (await owned(agent.url, 'docker:b')).includes(b1.id),
        10_000,
        'b1 in set b',
      );
      assert.deepEqual(await owned(agent.url, 'docker:a'), setA, "b's sync left a's set alone");
      // A full reconcile of each leaves the other's instances alone.
      await stopSync(syncB);
      syncB = await spawnSync(other, agent.url, 'b');
      await stopSync(sync);
      sync = await spawnSync(docker(), agent.url, 'a');
      assert.deepEqual(await owned(agent.url, 'docker:a'), setA);
      assert.deepEqual(await owned(agent.url, 'docker:b'), [b1.id]);
      // A container of b's host stopping removes b's instance only.
      await other.docker.getContainer('web-b1').kill();
      await until(
        async () => (await owned(agent.url, 'docker:b')).length === 0,
        10_000,
        'set b empty',
      );
      assert.deepEqual(await owned(agent.url, 'docker:a'), setA);
    } finally {
      if (syncB !== undefined) await stopSync(syncB);
      await other.stop();
    }
  });
});
