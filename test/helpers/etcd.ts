/** @module Test helper: a real single-member etcd (Debian etcd-server) on loopback, in a temp dir. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';

export interface EtcdProcess {
  readonly endpoint: string;
  readonly child: ChildProcess;
  /** Kills the member (SIGKILL), keeping its data for `restart()`. */
  kill(): Promise<void>;
  /** Starts the member again on the same ports and data. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** Starts etcd and resolves once /health answers; `npm test` installs etcd-server first. */
export async function startEtcd(): Promise<EtcdProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'meshwork-etcd-'));
  const client = `http://127.0.0.1:${await freePort()}`;
  const peer = `http://127.0.0.1:${await freePort()}`;
  // ETCD_* variables from the caller's shell would override the flags.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD_')),
  );
  const args = [
    ['--name', 'test'],
    ['--data-dir', join(dir, 'data')],
    ['--listen-client-urls', client],
    ['--advertise-client-urls', client],
    ['--listen-peer-urls', peer],
    ['--initial-advertise-peer-urls', peer],
    ['--initial-cluster', `test=${peer}`],
    ['--log-level', 'error'],
    ['--logger', 'zap'],
  ].flat();

  const launch = async (): Promise<{ child: ChildProcess; exited: Promise<void> }> => {
    const child = spawn('etcd', args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    // Poll /health until it answers true (bounded by the test's timeout).
    for (;;) {
      if (child.exitCode !== null) throw new Error(`etcd exited: ${stderr}`);
      try {
        const res = await request(`${client}/health`);
        const body = (await res.body.json()) as { health?: string };
        if (body.health === 'true') break;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return { child, exited };
  };

  let current = await launch();
  return {
    endpoint: client,
    get child() {
      return current.child;
    },
    kill: async () => {
      current.child.kill('SIGKILL');
      await current.exited;
    },
    restart: async () => {
      current = await launch();
    },
    stop: async () => {
      if (current.child.exitCode === null && current.child.signalCode === null) {
        current.child.kill('SIGTERM');
        await current.exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
