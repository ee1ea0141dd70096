/**
 * @module Test helper: a private Docker daemon for one test file (its own data root, exec root and
 * socket under a temp folder; no bridge, no firewall rules), with a busybox image imported from
 * the static busybox, and containers on the host network. Needs root, dockerd (docker.io) and
 * busybox-static (scripts/ensure-tools.sh docker).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import {
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  copyFileSync,
  chmodSync,
  closeSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, before } from 'node:test';
import Docker from 'dockerode';
import { until } from './until.js';

/** The image every test container runs: busybox (static) with `/www/health` holding "ok". */
export const BUSYBOX_IMAGE = 'meshwork-test/busybox:1';

/** A running private daemon. */
export interface PrivateDocker {
  /** `unix:///.../docker.sock`, for `--docker`. */
  readonly url: string;
  readonly docker: Docker;
  /** The folder it all lives in (removed by `stop`). */
  readonly dir: string;
  /** What dockerd wrote so far. */
  log(): string;
  /**
   * Creates and starts a container of {@link BUSYBOX_IMAGE} on the host network.
   * @example await d.run('web', { 'meshwork.service': 'web' }, ['httpd', '-f', '-p', '127.0.0.1:8080', '-h', '/www'])
   */
  run(
    name: string,
    labels: Record<string, string>,
    cmd: readonly string[],
  ): Promise<Docker.Container>;
  /** Removes every container, stops dockerd (and its containerd) and removes the folder. */
  stop(): Promise<void>;
}

/** Why the daemon cannot run here; undefined when it can. */
function dockerUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'a private dockerd needs root';
  for (const bin of ['dockerd', 'containerd', 'busybox']) {
    if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0)
      return `${bin} is missing: run scripts/ensure-tools.sh docker (packages docker.io busybox-static)`;
  }
  return undefined;
}

/** Starts a private dockerd and imports {@link BUSYBOX_IMAGE}. */
export async function startPrivateDocker(): Promise<PrivateDocker> {
  // Like test/e2e/disk-full.test.ts, these tests fail rather than skip where they cannot run:
  // a skipped test would pass a CI machine that lost its tools.
  const unavailable = dockerUnavailable();
  if (unavailable !== undefined) throw new Error(`cannot start a private dockerd: ${unavailable}`);
  // Short: the socket's path must fit a sockaddr_un (108 bytes).
  const dir = mkdtempSync('/tmp/mwd-');
  for (const sub of ['data', 'exec', 'run']) mkdirSync(join(dir, sub));
  const socket = join(dir, 'run', 'docker.sock');
  const logFile = join(dir, 'dockerd.log');
  const out = openSync(logFile, 'a');
  const child = spawn(
    'dockerd',
    [
      '--data-root',
      join(dir, 'data'),
      '--exec-root',
      join(dir, 'exec'),
      '--pidfile',
      join(dir, 'run', 'd.pid'),
      '-H',
      `unix://${socket}`,
      '--bridge=none',
      '--iptables=false',
      '--ip6tables=false',
      '--ip-masq=false',
    ],
    { stdio: ['ignore', out, out] },
  );
  closeSync(out);
  const log = (): string => readFileSync(logFile, 'utf8');
  const exited = once(child, 'exit');
  const docker = new Docker({ socketPath: socket });
  const d: PrivateDocker = {
    url: `unix://${socket}`,
    docker,
    dir,
    log,
    async run(name, labels, cmd) {
      const c = await docker.createContainer({
        name,
        Image: BUSYBOX_IMAGE,
        Cmd: [...cmd],
        Labels: labels,
        HostConfig: { NetworkMode: 'host' },
      });
      await c.start();
      return c;
    },
    stop: () => stopDaemon(docker, child, exited, dir),
  };
  try {
    await until(
      async () => {
        if (child.exitCode !== null) throw new Error(`dockerd exited: ${log().slice(-2000)}`);
        return docker.ping().then(
          () => true,
          () => false,
        );
      },
      30_000,
      'answering /_ping',
      100,
    );
    await importBusybox(docker, dir);
  } catch (err) {
    await d.stop();
    throw err;
  }
  return d;
}

/** One daemon for the test file: started before its tests, stopped after them. */
export function usePrivateDocker(): () => PrivateDocker {
  let d: PrivateDocker | undefined;
  before(async () => {
    d = await startPrivateDocker();
  });
  after(async () => {
    await d?.stop();
  });
  return () => {
    if (d === undefined) throw new Error('the private dockerd is not running');
    return d;
  };
}

/** Builds the image's root folder and imports it as a tar stream (`docker import`). */
async function importBusybox(docker: Docker, dir: string): Promise<void> {
  const root = join(dir, 'rootfs');
  mkdirSync(join(root, 'bin'), { recursive: true });
  mkdirSync(join(root, 'www'));
  mkdirSync(join(root, 'tmp'));
  copyFileSync('/bin/busybox', join(root, 'bin', 'busybox'));
  chmodSync(join(root, 'bin', 'busybox'), 0o755);
  for (const tool of ['sh', 'httpd', 'sleep', 'nc'])
    symlinkSync('busybox', join(root, 'bin', tool));
  writeFileSync(join(root, 'www', 'health'), 'ok\n');
  const tar = spawn('tar', ['-C', root, '-c', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [repo, tag] = BUSYBOX_IMAGE.split(':') as [string, string];
  const progress = await docker.importImage(tar.stdout, { repo, tag });
  await new Promise<void>((resolve, reject) =>
    docker.modem.followProgress(progress, (err: Error | null) => (err ? reject(err) : resolve())),
  );
}

async function stopDaemon(
  docker: Docker,
  child: ChildProcess,
  exited: Promise<unknown>,
  dir: string,
): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    try {
      const all = await docker.listContainers({ all: true });
      await Promise.all(all.map((c) => docker.getContainer(c.Id).remove({ force: true })));
    } catch {
      // The daemon is not answering: stopping it below is all that is left to do.
    }
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
  }
  // dockerd stops the containerd it started; one left behind (dockerd killed) is stopped here.
  const pidFile = join(dir, 'exec', 'containerd', 'containerd.pid');
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    if (pid > 0) process.kill(pid, 'SIGKILL');
  } catch {
    // No pid file or no such process: containerd is gone.
  }
  // Overlay mounts a killed daemon left behind would make the removal fail.
  spawnSync('sh', ['-c', `grep -o ' ${dir}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l`]);
  rmSync(dir, { recursive: true, force: true });
}
