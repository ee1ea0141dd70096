/**
 * @module Test helpers: real etcd (Debian etcd-server 3.4) on loopback, in a temp dir: one member
 * (`startEtcd`) or a cluster of several (`startEtcdCluster`) whose members can be killed and
 * restarted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent as UndiciAgent, request } from 'undici';
import { freePort, freePorts } from './ports.js';

export interface EtcdProcess {
  readonly endpoint: string;
  readonly child: ChildProcess;
  /** Kills the member (SIGKILL), keeping its data for `restart()`. */
  kill(): Promise<void>;
  /** Starts the member again on the same ports and data. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** The caller's environment without ETCD_* variables, which would override etcd's flags. */
function etcdEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD_')));
}

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * TLS for a {@link startEtcd} member: its certificate and key (also what the health probe
 * presents as a client certificate) and the CA it trusts for client certificates, PEM files.
 */
export interface EtcdTls {
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

/**
 * Starts etcd and resolves once /health answers; `npm test` installs etcd-server first. With
 * `tls`, clients reach it over https and must present a certificate its CA signed.
 */
export async function startEtcd(options: { tls?: EtcdTls } = {}): Promise<EtcdProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'meshwork-etcd-'));
  const { tls } = options;
  const client = `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${await freePort()}`;
  const peer = `http://127.0.0.1:${await freePort()}`;
  const env = etcdEnv();
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
    ...(tls === undefined
      ? []
      : [
          ['--cert-file', tls.certFile],
          ['--key-file', tls.keyFile],
          ['--trusted-ca-file', tls.caFile],
          ['--client-cert-auth'],
        ]),
  ].flat();
  const dispatcher =
    tls === undefined
      ? undefined
      : new UndiciAgent({
          connect: {
            ca: readFileSync(tls.caFile),
            cert: readFileSync(tls.certFile),
            key: readFileSync(tls.keyFile),
          },
        });

  const launch = async (): Promise<{ child: ChildProcess; exited: Promise<void> }> => {
    const child = spawn('etcd', args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    // Poll /health until it answers true (bounded by the test's timeout).
    for (;;) {
      if (child.exitCode !== null) throw new Error(`etcd exited: ${stderr}`);
      try {
        const res = await request(
          `${client}/health`,
          dispatcher === undefined ? {} : { dispatcher },
        );
        const body = (await res.body.json()) as { health?: string };
        if (body.health === 'true') break;
      } catch {
        // not listening yet
      }
      await delay(50);
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
      await dispatcher?.close();
    },
  };
}

/** One member of a {@link startEtcdCluster} cluster. */
export interface EtcdMember {
  /** The member's --name (`m0`, `m1`, ...). */
  readonly name: string;
  /** Client URL. */
  readonly endpoint: string;
  /** Whether its process runs (it may still be unhealthy, e.g. without quorum). */
  readonly running: boolean;
  /** Kills the member (SIGKILL), keeping its data for `restart()`. */
  kill(): Promise<void>;
  /**
   * Starts the member again on the same ports and data, and resolves once it answers HTTP on its
   * client port. It is not awaited healthy: a member whose peers are down has no quorum and
   * cannot be; call {@link EtcdMember.waitHealthy} once enough members run.
   */
  restart(): Promise<void>;
  /** Resolves once its /health answers true (it has a leader and serves reads). */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** Stops the member (SIGTERM), keeping its data. */
  stop(): Promise<void>;
}

export interface EtcdCluster {
  /** Every member's client URL, in member order. */
  readonly endpoints: string[];
  readonly members: EtcdMember[];
  /**
   * The member that reports itself leader (asked over HTTP: POST /v3/maintenance/status on each
   * running member); waits through an election, up to `timeoutMs`.
   */
  leader(timeoutMs?: number): Promise<EtcdMember>;
  /** Resolves once every member's /health answers true. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** Kills every member and removes the temp dir. */
  stop(): Promise<void>;
}

interface MaintenanceStatus {
  header?: { member_id?: string };
  leader?: string;
}

/** POSTs a JSON body to etcd's gRPC gateway (`/v3/...`) and reads the JSON answer. */
async function gateway<T>(endpoint: string, path: string, body: object): Promise<T> {
  const res = await request(`${endpoint}${path}`, {
    method: 'POST',
    body: JSON.stringify(body),
    headersTimeout: 1_000,
    bodyTimeout: 1_000,
  });
  const json = (await res.body.json()) as T;
  if (res.statusCode !== 200) throw new Error(`${path}: HTTP ${res.statusCode}`);
  return json;
}

/** Whether a TCP connection to the URL's port is accepted. */
function accepts(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port) });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

async function health(endpoint: string): Promise<boolean> {
  try {
    const res = await request(`${endpoint}/health`, { headersTimeout: 2_000, bodyTimeout: 2_000 });
    return ((await res.body.json()) as { health?: string }).health === 'true';
  } catch {
    return false;
  }
}

/**
 * Starts `size` etcd members that form one new cluster (unique --initial-cluster-token), all at
 * once, and resolves once every member's /health answers true.
 *
 * @example
 * const etcd = await startEtcdCluster(3);
 * await (await etcd.leader()).kill();
 * await etcd.stop();
 */
export async function startEtcdCluster(size = 3): Promise<EtcdCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'meshwork-etcd-cluster-'));
  const ports = await freePorts(size * 2);
  const specs = Array.from({ length: size }, (_, i) => ({
    name: `m${i}`,
    client: `http://127.0.0.1:${ports[2 * i] as number}`,
    peer: `http://127.0.0.1:${ports[2 * i + 1] as number}`,
  }));
  const initialCluster = specs.map((s) => `${s.name}=${s.peer}`).join(',');
  const token = `meshwork-test-${process.pid}-${randomBytes(4).toString('hex')}`;
  const env = etcdEnv();

  const members = specs.map((spec): EtcdMember => {
    const args = [
      ['--name', spec.name],
      ['--data-dir', join(dir, spec.name)],
      ['--listen-client-urls', spec.client],
      ['--advertise-client-urls', spec.client],
      ['--listen-peer-urls', spec.peer],
      ['--initial-advertise-peer-urls', spec.peer],
      ['--initial-cluster', initialCluster],
      ['--initial-cluster-state', 'new'],
      ['--initial-cluster-token', token],
      ['--log-level', 'error'],
      ['--logger', 'zap'],
    ].flat();
    let child: ChildProcess | undefined;
    let exited: Promise<void> = Promise.resolve();
    let stderr = '';
    const running = (): boolean =>
      child !== undefined && child.exitCode === null && child.signalCode === null;

    const spawnMember = (): void => {
      stderr = '';
      const c = spawn('etcd', args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
      c.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
      exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
      child = c;
    };
    const until = async (ok: () => Promise<boolean>, what: string, timeoutMs: number) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (!running()) throw new Error(`etcd ${spec.name} exited while ${what}: ${stderr}`);
        if (await ok()) return;
        if (Date.now() > deadline)
          throw new Error(`etcd ${spec.name} not ${what} after ${timeoutMs} ms: ${stderr}`);
        await delay(50);
      }
    };
    const member: EtcdMember = {
      name: spec.name,
      endpoint: spec.client,
      get running() {
        return running();
      },
      kill: async () => {
        if (!running()) return;
        child?.kill('SIGKILL');
        await exited;
      },
      restart: async () => {
        if (running()) throw new Error(`etcd ${spec.name} is running`);
        spawnMember();
        // A member without quorum binds its client port but answers no request (not even
        // /version) until it has published itself to the cluster: wait for the TCP listener.
        await until(() => accepts(spec.client), 'listening', 10_000);
      },
      waitHealthy: (timeoutMs = 15_000) => until(() => health(spec.client), 'healthy', timeoutMs),
      stop: async () => {
        if (!running()) return;
        child?.kill('SIGTERM');
        await exited;
      },
    };
    spawnMember();
    return member;
  });

  const cluster: EtcdCluster = {
    endpoints: specs.map((s) => s.client),
    members,
    waitHealthy: async (timeoutMs = 15_000) => {
      await Promise.all(members.map((m) => m.waitHealthy(timeoutMs)));
    },
    leader: async (timeoutMs = 10_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        // The leader is the member that names itself: a follower may still name a dead leader.
        for (const m of members.filter((x) => x.running)) {
          const s = await gateway<MaintenanceStatus>(
            m.endpoint,
            '/v3/maintenance/status',
            {},
          ).catch(() => undefined);
          const id = s?.header?.member_id;
          if (id !== undefined && s?.leader === id) return m;
        }
        if (Date.now() > deadline) throw new Error(`no etcd leader after ${timeoutMs} ms`);
        await delay(50);
      }
    },
    stop: async () => {
      await Promise.all(members.map((m) => m.kill()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await cluster.waitHealthy();
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}
