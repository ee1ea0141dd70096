/**
 * @module Starts a single-member etcd (Debian `etcd-server`, 3.4) on 127.0.0.1 free ports with its
 * data dir in a temp dir; `scripts/ensure-tools.sh etcd` installs it when missing.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { makeTempDir } from './cleanup.js';
import { freePort, REPO_ROOT, spawnChild, type Child } from './proc.js';

export interface EtcdHandle {
  /** Client URL, e.g. http://127.0.0.1:40124. */
  readonly endpoint: string;
  readonly pid: number;
  readonly child: Child;
  readonly version: string;
  stop(): Promise<void>;
}

/** Runs scripts/ensure-tools.sh etcd (installs etcd-server as root, else explains how). */
export function ensureEtcd(): void {
  execFileSync(join(REPO_ROOT, 'scripts', 'ensure-tools.sh'), ['etcd'], { stdio: 'inherit' });
}

export function etcdVersion(): string {
  const out = execFileSync('etcd', ['--version'], { encoding: 'utf8' });
  return /etcd Version: (\S+)/.exec(out)?.[1] ?? 'unknown';
}

/** Starts one etcd member and waits until its /health answers true. */
export async function startEtcd(): Promise<EtcdHandle> {
  const dir = await makeTempDir('etcd');
  const clientPort = await freePort();
  const peerPort = await freePort();
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const args = [
    '--name',
    'bench',
    '--data-dir',
    join(dir, 'data'),
    '--listen-client-urls',
    client,
    '--advertise-client-urls',
    client,
    '--listen-peer-urls',
    peer,
    '--initial-advertise-peer-urls',
    peer,
    '--initial-cluster',
    `bench=${peer}`,
    '--initial-cluster-state',
    'new',
    '--logger',
    'zap',
    '--log-level',
    'warn',
  ];
  // ETCD_* variables from the caller's shell would override flags; start from a clean slate.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD_')),
  );
  const child = spawnChild('etcd', 'etcd', args, { env, logFile: join(dir, 'etcd.log') });
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const res = await fetch(`${client}/health`);
      const body = (await res.json()) as { health?: string };
      if (body.health === 'true') break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`etcd did not become healthy at ${client}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    endpoint: client,
    pid: child.pid,
    child,
    version: etcdVersion(),
    stop: () => child.stop(10_000),
  };
}

/**
 * etcd's own counters from its /metrics, summed over labels except `grpc_method` (so
 * `grpc_server_handled_total{grpc_method="Txn"}` is one entry): what the server did, per request.
 */
export async function scrapeEtcdMetrics(endpoint: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${endpoint}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (m === null) continue;
    const method = /grpc_method="([^"]+)"/.exec(m[2] ?? '')?.[1];
    const key = method === undefined ? (m[1] ?? '') : `${m[1]}{grpc_method="${method}"}`;
    out.set(key, (out.get(key) ?? 0) + Number(m[3]));
  }
  return out;
}

/** The change of each etcd counter between two scrapes (keys of `b`). */
export function etcdDelta(a: Map<string, number>, b: Map<string, number>): Map<string, number> {
  return new Map([...b].map(([k, v]) => [k, v - (a.get(k) ?? 0)]));
}
