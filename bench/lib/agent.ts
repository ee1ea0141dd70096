/**
 * @module Starts the built agent (`node bin/meshwork.js agent`) on 127.0.0.1 in a temp data dir
 * (or in cluster mode on an etcd), optionally under `--cpu-prof`, and stops it at cleanup.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTempDir } from './cleanup.js';
import { REPO_ROOT, spawnChild, waitForLine, type Child } from './proc.js';

export interface AgentHandle {
  /** Base URL, e.g. http://127.0.0.1:40123. */
  readonly url: string;
  readonly pid: number;
  readonly child: Child;
  readonly dataDir: string;
  /** Agent stderr (its warn/error log lines). */
  readonly logFile: string;
  /** SIGTERM (the agent drains, flushes its store); then the CPU profile path if any. */
  stop(): Promise<{ cpuProfile?: string }>;
}

export interface StartAgentOptions {
  /** In-memory store (`--dev`) instead of the embedded SQLite store. */
  readonly dev?: boolean;
  /** Write a V8 CPU profile of the agent into this dir (node --cpu-prof). */
  readonly cpuProfDir?: string;
  readonly logLevel?: 'error' | 'warn' | 'info';
  /** Extra node flags, e.g. --max-old-space-size. */
  readonly nodeArgs?: readonly string[];
  /** Cluster mode: `--store etcd --etcd-endpoints <endpoint>` (the data dir is then unused). */
  readonly etcdEndpoint?: string;
  /** `--node-name` (default "bench"): agents sharing one etcd need distinct names. */
  readonly nodeName?: string;
  /** `--dns` listen address (default off: only bench:dns needs it). */
  readonly dns?: string;
}

/** Throws a readable error if `npm run build` has not produced dist/ yet. */
export function assertBuilt(): void {
  if (!existsSync(join(REPO_ROOT, 'dist', 'cli', 'main.js'))) {
    throw new Error('dist/ is missing: run "npm run build" first (npm run bench:* does)');
  }
}

/** Starts an agent and waits until it prints its listening line. */
export async function startAgent(options: StartAgentOptions = {}): Promise<AgentHandle> {
  assertBuilt();
  const dir = await makeTempDir('agent');
  const dataDir = join(dir, 'data');
  const logFile = join(dir, 'agent.log');
  const nodeArgs = [...(options.nodeArgs ?? [])];
  if (options.cpuProfDir !== undefined) {
    mkdirSync(options.cpuProfDir, { recursive: true });
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${options.cpuProfDir}`);
  }
  const args = [
    ...nodeArgs,
    join(REPO_ROOT, 'bin', 'meshwork.js'),
    'agent',
    '--http',
    '127.0.0.1:0',
    '--data-dir',
    dataDir,
    '--node-name',
    options.nodeName ?? 'bench',
    '--log-level',
    options.logLevel ?? 'warn',
    '--dns',
    options.dns ?? 'off',
    // The drivers (a thousand push streams, load generators) all connect from 127.0.0.1.
    '--http-max-conns-per-client',
    '0',
    ...(options.dev === true ? ['--dev'] : []),
    ...(options.etcdEndpoint === undefined
      ? []
      : ['--store', 'etcd', '--etcd-endpoints', options.etcdEndpoint]),
  ];
  const child = spawnChild('agent', process.execPath, args, { logFile });
  const m = await waitForLine(child, /listening on (http:\/\/\S+)/, 30_000);
  const url = m[1];
  if (url === undefined) throw new Error('agent printed no URL');
  return {
    url,
    pid: child.pid,
    child,
    dataDir,
    logFile,
    stop: async () => {
      await child.stop(15_000);
      const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').trim() : '';
      if (log !== '') {
        const lines = log.split('\n');
        console.error(
          `agent log: ${lines.length} line(s); last: ${lines.slice(-3).join('\n  ').slice(0, 1500)}`,
        );
      }
      if (options.cpuProfDir === undefined) return {};
      const profiles = readdirSync(options.cpuProfDir).filter((f) => f.endsWith('.cpuprofile'));
      // node names the file CPU.<date>.<time>.<pid>.<tid>.<seq>.cpuprofile: several agents may
      // profile into one dir at once, so take this pid's file, else the newest.
      const own = profiles.filter((f) => f.includes(`.${child.pid}.`));
      const newest = (own.length > 0 ? own : profiles).sort().at(-1);
      return newest === undefined ? {} : { cpuProfile: join(options.cpuProfDir, newest) };
    },
  };
}

/** GC time by kind (major, minor, incremental, weakcb) from the agent's prom-client metrics. */
export interface GcStats {
  /** kind → { count, seconds, over100ms (pauses longer than 100 ms) } */
  readonly byKind: Record<string, { count: number; seconds: number; over100ms: number }>;
}

/** Reads meshwork_nodejs_gc_duration_seconds from /metrics. */
export async function scrapeGc(url: string): Promise<GcStats> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const byKind: GcStats['byKind'] = {};
  const get = (kind: string) => (byKind[kind] ??= { count: 0, seconds: 0, over100ms: 0 });
  const le01 = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^meshwork_nodejs_gc_duration_seconds_(sum|count|bucket)\{([^}]*)\} (\S+)$/.exec(
      line,
    );
    if (m === null) continue;
    const labels = m[2] ?? '';
    const kind = /kind="([^"]+)"/.exec(labels)?.[1] ?? '?';
    const v = Number(m[3]);
    if (m[1] === 'sum') get(kind).seconds = v;
    else if (m[1] === 'count') get(kind).count = v;
    else if (/le="0.1"/.test(labels)) le01.set(kind, v);
  }
  for (const [kind, below] of le01) get(kind).over100ms = get(kind).count - below;
  return { byKind };
}

/** GC activity between two scrapes. */
export function gcDelta(a: GcStats, b: GcStats): GcStats {
  const byKind: GcStats['byKind'] = {};
  for (const [kind, v] of Object.entries(b.byKind)) {
    const p = a.byKind[kind] ?? { count: 0, seconds: 0, over100ms: 0 };
    byKind[kind] = {
      count: v.count - p.count,
      seconds: v.seconds - p.seconds,
      over100ms: v.over100ms - p.over100ms,
    };
  }
  return { byKind };
}

/** Scrapes one sample of a Prometheus metric from the agent's /metrics (first match). */
export async function scrapeMetric(url: string, name: string, labels = ''): Promise<number> {
  const res = await fetch(`${url}/metrics`);
  const text = await res.text();
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const [key, value] = line.split(' ');
    if (key === undefined || value === undefined) continue;
    const keyLabels = key.slice(name.length);
    if (keyLabels === (labels === '' ? '' : `{${labels}}`)) return Number(value);
  }
  return Number.NaN;
}

/** Where CPU profiles and heap snapshots go (git-ignored). */
export const PROFILES_DIR = fileURLToPath(new URL('../.results/profiles', import.meta.url));

/** startAgent options that profile the agent when `enabled` (creating the folder). */
export function profiling(enabled: boolean): { cpuProfDir?: string } {
  if (!enabled) return {};
  mkdirSync(PROFILES_DIR, { recursive: true });
  return { cpuProfDir: PROFILES_DIR };
}
