/**
 * @module bench:sidecar-memory: the resident memory of one `meshwork sidecar` process (issue 19:
 * at most 60 MB at 1,000 rps, goal 40 MB). A dev agent, one node:http app, the app's sidecar
 * (service `web`) and a caller sidecar; an open-loop driver sends `--rate` requests/s for
 * `--duration` s to the caller's outbound with `Host: web`, so both sidecars carry the load
 * (caller: outbound; web: inbound). Each sidecar's VmRSS is sampled from /proc every 250 ms, and
 * its heap (used, total, external) read from its admin /metrics, idle after start, at the end of
 * the load and again after it. `--node-args` passes V8 flags to the sidecars, to weigh a heap
 * setting against the default on the same machine.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Pool } from 'undici';
import { makeTempDir, runMain } from '../lib/cleanup.js';
import { gcDelta, scrapeGc, scrapeMetric, type GcStats } from '../lib/agent.js';
import { startUpstream, UPSTREAM_BODY } from '../lib/gateway-setup.js';
import { flags, sleep } from '../lib/load.js';
import { openLoop } from '../lib/open-loop.js';
import {
  CpuWindow,
  freePort,
  readMemory,
  REPO_ROOT,
  RssSampler,
  spawnChild,
  waitForLine,
  type Child,
} from '../lib/proc.js';
import { fmt, log, Report, settle, table } from '../lib/report.js';
import { mean, percentile } from '../lib/stats.js';

const opts = flags('npm run bench:sidecar-memory -- [flags]', {
  rate: { default: 1000, help: 'requests/s offered to the caller sidecar (open loop)' },
  duration: { default: 20, help: 'seconds of load' },
  settle: { default: 3, help: 'seconds idle after start, and after the load, before reading' },
  'node-args': { default: '', help: 'node flags for both sidecars, space-separated' },
  root: { default: '', help: 'another built meshwork checkout to run the sidecars of (a base)' },
  'quiet-wait': { default: 60, help: 'seconds to wait for other work on the machine to settle' },
});

interface Sidecar {
  readonly name: string;
  readonly child: Child;
  readonly admin: string;
  readonly outbound: string;
}

/** A point-in-time reading of one sidecar: /proc and the V8 heap (from its /metrics). */
interface Reading {
  rssMiB: number;
  hwmMiB: number;
  /** RSS in anonymous pages (heap, malloc) and in file pages (mostly the node binary). */
  anonMiB: number;
  fileMiB: number;
  /** Pages only this process maps (USS): what one more sidecar costs a host running node. */
  privateMiB: number;
  heapUsedMiB: number;
  heapTotalMiB: number;
  externalMiB: number;
}

const MiB = 1024 * 1024;

/** RssAnon and RssFile from /proc/<pid>/status, Private_* from smaps_rollup, in MiB. */
function readPages(pid: number): { anonMiB: number; fileMiB: number; privateMiB: number } {
  const kb = (text: string, field: string): number =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? Number.NaN) / 1024;
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  return {
    anonMiB: kb(status, 'RssAnon'),
    fileMiB: kb(status, 'RssFile'),
    privateMiB: kb(rollup, 'Private_Clean') + kb(rollup, 'Private_Dirty'),
  };
}

async function read(s: Sidecar): Promise<Reading> {
  const metric = async (name: string): Promise<number> =>
    (await scrapeMetric(s.admin, `meshwork_nodejs_${name}`)) / MiB;
  const [heapUsedMiB, heapTotalMiB, externalMiB] = await Promise.all([
    metric('heap_size_used_bytes'),
    metric('heap_size_total_bytes'),
    metric('external_memory_bytes'),
  ]);
  // After the scrape, so the figure includes what answering /metrics cost.
  return {
    ...readMemory(s.child.pid),
    ...readPages(s.child.pid),
    heapUsedMiB,
    heapTotalMiB,
    externalMiB,
  };
}

async function startSidecar(
  dir: string,
  name: string,
  service: string,
  appPort: number,
  nodeArgs: readonly string[],
): Promise<Sidecar> {
  const [inbound, outbound, admin] = await Promise.all([freePort(), freePort(), freePort()]);
  const child = spawnChild(
    name,
    process.execPath,
    [
      ...nodeArgs,
      join(opts.root === '' ? REPO_ROOT : opts.root, 'bin', 'meshwork.js'),
      'sidecar',
      '--service',
      service,
      '--app-port',
      String(appPort),
      '--inbound',
      `127.0.0.1:${inbound}`,
      '--outbound',
      `127.0.0.1:${outbound}`,
      '--admin',
      `127.0.0.1:${admin}`,
      '--registry',
      agentUrl,
      '--data-dir',
      join(dir, name),
      '--log-level',
      'warn',
    ],
    { logFile: join(dir, `${name}.log`) },
  );
  await waitForLine(child, /meshwork sidecar for/, 30_000);
  return {
    name,
    child,
    admin: `http://127.0.0.1:${admin}`,
    outbound: `http://127.0.0.1:${outbound}`,
  };
}

let agentUrl = '';

runMain(async () => {
  const nodeArgs = opts['node-args'].split(' ').filter((a) => a !== '');
  const report = new Report(
    'sidecar-memory',
    `npm run bench:sidecar-memory -- --rate ${opts.rate} --duration ${opts.duration}${
      nodeArgs.length > 0 ? ` --node-args '${nodeArgs.join(' ')}'` : ''
    }`,
  );
  const busy = await settle(opts['quiet-wait']);
  report.quiet(busy);
  const dir = await makeTempDir('sidecar-memory');
  const setup = await startUpstream();
  agentUrl = setup.agent.url;
  // The caller's own app is the same upstream: it only needs a healthy port to check.
  const web = await startSidecar(dir, 'web', 'web', setup.upPort, nodeArgs);
  const caller = await startSidecar(dir, 'caller', 'caller', setup.upPort, nodeArgs);
  const sidecars = [web, caller];
  const pool = new Pool(caller.outbound, { connections: 32, pipelining: 1 });
  const call = async (): Promise<boolean> => {
    try {
      const res = await pool.request({ path: '/', method: 'GET', headers: { host: 'web' } });
      const body = await res.body.text();
      return res.statusCode === 200 && body === UPSTREAM_BODY;
    } catch {
      return false;
    }
  };
  // The caller routes to web once its snapshot names web's instance (bounded wait).
  const deadline = Date.now() + 30_000;
  while (!(await call())) {
    if (Date.now() > deadline) throw new Error('the caller sidecar never routed to web');
    await sleep(100);
  }
  await sleep(opts.settle * 1000);
  const idle = await Promise.all(sidecars.map(read));

  log(`load: ${opts.rate} rps for ${opts.duration} s through caller -> web -> app`);
  const samplers = sidecars.map((s) => new RssSampler(s.child.pid, 250));
  const cpus = sidecars.map((s) => new CpuWindow(s.child.pid));
  const gc0 = await Promise.all(sidecars.map((s) => scrapeGc(s.admin)));
  // RSS while loaded: the mean of the samples in the second half of the load (steady state).
  const steady: number[][] = sidecars.map(() => []);
  const half = setTimeout(
    () => {
      const timer = setInterval(() => {
        sidecars.forEach((s, i) => steady[i]?.push(readMemory(s.child.pid).rssMiB));
      }, 250);
      setTimeout(() => clearInterval(timer), (opts.duration * 1000) / 2 - 250);
    },
    (opts.duration * 1000) / 2,
  );
  const result = await openLoop({ rate: opts.rate, seconds: opts.duration, op: call });
  clearTimeout(half);
  const cores = cpus.map((c) => c.read().cores);
  const gcs = await Promise.all(
    sidecars.map(async (s, i) => gcDelta(gc0[i] as GcStats, await scrapeGc(s.admin))),
  );
  samplers.forEach((s) => s.stop());
  const loaded = await Promise.all(sidecars.map(read));
  await sleep(opts.settle * 1000);
  const after = await Promise.all(sidecars.map(read));
  await pool.close();

  const lat = result.latencyMs;
  report.meta(
    `load: ${fmt(result.offered)} requests offered at ${opts.rate}/s, ${fmt(result.ok)} ok, ${fmt(
      result.errors,
    )} errors; latency (caller -> web -> app, from due time) p50 ${fmt(
      percentile(lat, 50),
      2,
    )} ms, p99 ${fmt(percentile(lat, 99), 2)} ms`,
  );
  if (nodeArgs.length > 0) report.meta(`sidecar node flags: ${nodeArgs.join(' ')}`);
  if (opts.root !== '') report.meta(`sidecars run from ${opts.root}`);
  const rows = sidecars.map((s, i) => {
    const a = idle[i] as Reading;
    const l = loaded[i] as Reading;
    const z = after[i] as Reading;
    return [
      s.name,
      fmt(a.rssMiB, 1),
      fmt(l.hwmMiB, 1),
      fmt(samplers[i]?.peakMiB ?? 0, 1),
      fmt(mean(steady[i] ?? []), 1),
      fmt(z.rssMiB, 1),
      `${fmt(a.heapUsedMiB, 1)} / ${fmt(a.heapTotalMiB, 1)}`,
      `${fmt(l.heapUsedMiB, 1)} / ${fmt(l.heapTotalMiB, 1)}`,
      fmt(l.externalMiB, 1),
      fmt(cores[i] ?? 0, 3),
    ];
  });
  report.section(
    'RSS and heap of each sidecar (MiB)',
    table(
      [
        'sidecar',
        'RSS idle',
        'peak (VmHWM)',
        'peak under load',
        'RSS under load (mean, 2nd half)',
        'RSS after',
        'heap used / total idle',
        'heap used / total loaded',
        'external loaded',
        'CPU (cores)',
      ],
      rows,
    ),
  );
  report.section(
    'Where the RSS is, under load (MiB)',
    table(
      ['sidecar', 'RSS', 'anonymous (heap, malloc)', 'file (node binary, libs)', 'private (USS)'],
      sidecars.map((s, i) => {
        const l = loaded[i] as Reading;
        return [
          s.name,
          fmt(l.rssMiB, 1),
          fmt(l.anonMiB, 1),
          fmt(l.fileMiB, 1),
          fmt(l.privateMiB, 1),
        ];
      }),
    ),
  );
  report.section(
    'GC during the load (the price of a small young generation)',
    table(
      ['sidecar', 'minor GCs', 'minor GC ms', 'major GCs', 'major GC ms', 'GC share of the load'],
      sidecars.map((s, i) => {
        const by = gcs[i]?.byKind ?? {};
        const minor = by.minor ?? { count: 0, seconds: 0 };
        const major = by.major ?? { count: 0, seconds: 0 };
        const all = Object.values(by).reduce((a, v) => a + v.seconds, 0);
        return [
          s.name,
          fmt(minor.count),
          fmt(minor.seconds * 1000, 0),
          fmt(major.count),
          fmt(major.seconds * 1000, 0),
          `${fmt((all / opts.duration) * 100, 2)}% of a core`,
        ];
      }),
    ),
  );
  report.text(
    'File pages are shared with every node process on the host (a bare `node` maps ~35 MiB of its ' +
      'binary); the private figure is what one more sidecar adds.',
  );
  report.finish();
  for (const s of sidecars) await s.child.stop();
  await setup.agent.stop();
  await setup.upstream.stop();
});
