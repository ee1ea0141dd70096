/**
 * @module bench:scale: 100,000 instances over 1,000 services, each with a TTL check, then 10,000
 * heartbeats per second for 60 s from a rate-controlled driver process; the agent's RSS, CPU and
 * heartbeat latency.
 */
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gcDelta, scrapeGc, scrapeMetric, startAgent, PROFILES_DIR } from '../lib/agent.js';
import { runMain } from '../lib/cleanup.js';
import { monoMicros, profileTables, summarizeProfile } from '../lib/cpuprofile.js';
import { summarizeHeap } from '../lib/heapsnapshot.js';
import { flags, sleep, type ClosedLoopResult } from '../lib/load.js';
import {
  CpuWindow,
  forkWorker,
  readMemory,
  request,
  RssSampler,
  ThreadCpuWindow,
} from '../lib/proc.js';
import { heartbeatMany, registerMany, registration } from '../lib/registry-load.js';
import { fmt, log, Report, settle, table } from '../lib/report.js';
import type { Summary } from '../lib/stats.js';

const opts = flags('npm run bench:scale -- [flags]   (quick: -- --instances 10000 --seconds 10)', {
  instances: { default: 100_000, help: 'instances to register' },
  services: { default: 1_000, help: 'services they are spread over' },
  ttl: { default: '60s', help: 'TTL of each instance check' },
  rate: { default: 10_000, help: 'heartbeats per second in the sustained window' },
  seconds: { default: 60, help: 'length of the sustained window' },
  connections: { default: 32, help: 'driver connections' },
  client: { default: 'raw', help: 'driver HTTP client: raw (lean keep-alive HTTP/1.1) or undici' },
  concurrency: { default: 64, help: 'in flight while registering and priming' },
  'quiet-wait': { default: 300, help: 'seconds to wait for other work on the machine to settle' },
  'cpu-prof': { default: false, help: 'run the agent under --cpu-prof' },
  'heap-snapshot': {
    default: false,
    help: 'write and summarise an agent heap snapshot at the end',
  },
  'node-args': { default: '', help: 'extra node flags for the agent, space-separated' },
});

const DRIVER = fileURLToPath(new URL('../lib/workers/heartbeat-driver.ts', import.meta.url));

interface DriverResult {
  offered: number;
  ok: number;
  errors: number;
  firstError?: string;
  statuses: Record<string, number>;
  elapsedMs: number;
  achievedRate: number;
  latency: Summary;
  service: Summary;
  lateSends: number;
  maxInFlight: number;
  driverCores: number;
  maxBySecond: number[];
}

interface Phase {
  name: string;
  seconds: number;
  ops: number;
  agentCores: number;
  rssEndMiB: number;
}

runMain(async () => {
  const busy = await settle(opts['quiet-wait']);
  mkdirSync(PROFILES_DIR, { recursive: true });
  const nodeArgs = opts['node-args'].split(' ').filter((a) => a !== '');
  if (opts['heap-snapshot'])
    nodeArgs.push('--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${PROFILES_DIR}`);
  const agent = await startAgent({
    ...(opts['cpu-prof'] ? { cpuProfDir: PROFILES_DIR } : {}),
    nodeArgs,
  });
  const rss = new RssSampler(agent.pid, 250);
  const rssStartMiB = rss.sample();
  const phases: Phase[] = [];
  const phase = async (name: string, fn: () => Promise<ClosedLoopResult>): Promise<void> => {
    const cpu = new CpuWindow(agent.pid);
    const r = await fn();
    const c = cpu.read();
    phases.push({
      name,
      seconds: c.wallSeconds,
      ops: r.ops,
      agentCores: c.cores,
      rssEndMiB: rss.sample(),
    });
    log(
      `${name}: ${fmt(r.ops)} in ${fmt(c.wallSeconds)} s (${fmt(r.ops / c.wallSeconds)}/s), agent ${fmt(c.cores)} cores, RSS ${fmt(rss.lastMiB)} MiB`,
    );
  };

  const id = (i: number): string => `inst-${i}`;
  await phase(`register ${opts.instances} (TTL ${opts.ttl})`, () =>
    registerMany(
      agent.url,
      opts.instances,
      (i) => registration(`svc-${i % opts.services}`, id(i), i, [{ ttl: opts.ttl }]),
      opts.concurrency,
    ),
  );
  // The first heartbeat of each instance turns its check passing: one durable write each.
  await phase('first heartbeat of each (critical → passing, written)', () =>
    heartbeatMany(agent.url, opts.instances, id, opts.concurrency),
  );

  log(`sustained: ${opts.rate}/s for ${opts.seconds} s from a driver process`);
  const driver = forkWorker('heartbeat-driver', DRIVER);
  const rssBeforeWindow = rss.sample();
  const peakBeforeWindow = rss.peakMiB;
  const gc0 = await scrapeGc(agent.url);
  await scrapeMetric(agent.url, 'meshwork_nodejs_eventloop_lag_max_seconds');
  const threads = new ThreadCpuWindow(agent.pid);
  const cpu = new CpuWindow(agent.pid);
  const mono0 = monoMicros();
  const { result } = await request<{ result: DriverResult }>(
    driver,
    {
      type: 'start',
      url: agent.url,
      instances: opts.instances,
      rate: opts.rate,
      seconds: opts.seconds,
      connections: opts.connections,
      client: opts.client,
    },
    'done',
    (opts.seconds + 120) * 1000,
  );
  const window = cpu.read();
  const byThread = threads.read();
  const mono1 = monoMicros();
  // prom-client resets the event-loop delay histogram at each scrape: this is the window's max.
  const lagMaxS = await scrapeMetric(agent.url, 'meshwork_nodejs_eventloop_lag_max_seconds');
  const gc = gcDelta(gc0, await scrapeGc(agent.url));
  await driver.stop();
  const rssEnd = rss.sample();
  phases.push({
    name: `sustained heartbeats (${opts.rate}/s offered)`,
    seconds: window.wallSeconds,
    ops: result.ok,
    agentCores: window.cores,
    rssEndMiB: rssEnd,
  });

  const passing = await scrapeMetric(agent.url, 'meshwork_registry_instances', 'status="passing"');
  const critical = await scrapeMetric(
    agent.url,
    'meshwork_registry_instances',
    'status="critical"',
  );
  const heapMiB =
    (await scrapeMetric(agent.url, 'meshwork_nodejs_heap_size_used_bytes')) / 1024 / 1024;
  const hwm = readMemory(agent.pid).hwmMiB;
  rss.stop();
  const heapFile = opts['heap-snapshot'] ? await heapSnapshot(agent.pid) : undefined;
  const { cpuProfile } = await agent.stop();

  const report = new Report('scale', 'npm run bench:scale');
  report.meta(
    `setup: agent (SQLite store, one process), ${fmt(opts.instances)} instances over ${fmt(opts.services)} services, each with one TTL check of ${opts.ttl}; registered ${opts.concurrency} in flight`,
  );
  report.meta(
    `load: ${fmt(opts.rate)} heartbeats/s for ${opts.seconds} s, open loop (latency from each heartbeat's due time), ${opts.client === 'raw' ? 'a minimal keep-alive HTTP/1.1 client (bench/lib/raw-http.ts)' : 'undici Pool'} with ${opts.connections} connections in its own process; heartbeat k goes to instance (k × stride) mod ${opts.instances}, so each is renewed every ${fmt(opts.instances / opts.rate)} s`,
  );
  report.quiet(busy);
  report.section(
    'Phases',
    table(
      ['phase', 'seconds', 'ops', 'ops/s', 'agent CPU (cores)', 'agent RSS after (MiB)'],
      phases.map((p) => [
        p.name,
        fmt(p.seconds),
        fmt(p.ops),
        fmt(p.ops / p.seconds),
        fmt(p.agentCores),
        fmt(p.rssEndMiB),
      ]),
    ),
  );
  const l = result.latency;
  report.section(
    'Sustained window',
    table(
      ['metric', 'value'],
      [
        [
          'heartbeats offered / ok / errors',
          `${fmt(result.offered)} / ${fmt(result.ok)} / ${fmt(result.errors)}`,
        ],
        ['achieved rate (ok/s)', fmt(result.achievedRate)],
        [
          'latency p50 / p99 / p99.9 / max (ms, from due time)',
          `${fmt(l.p50)} / ${fmt(l.p99)} / ${fmt(l.p999)} / ${fmt(l.max)}`,
        ],
        [
          'service time p50 / p99 (ms, from send)',
          `${fmt(result.service.p50)} / ${fmt(result.service.p99)}`,
        ],
        ['sends > 5 ms late (driver behind)', fmt(result.lateSends)],
        ['agent CPU over the window (cores)', fmt(window.cores)],
        ['agent CPU per heartbeat (µs)', fmt((window.cpuSeconds / Math.max(result.ok, 1)) * 1e6)],
        ['driver CPU (cores)', fmt(result.driverCores)],
        [
          'agent RSS: start / before window / end (MiB)',
          `${fmt(rssStartMiB)} / ${fmt(rssBeforeWindow)} / ${fmt(rssEnd)}`,
        ],
        ['agent RSS peak: sampled / VmHWM (MiB)', `${fmt(rss.peakMiB)} / ${fmt(hwm)}`],
        ['agent RSS peak before the window (MiB)', fmt(peakBeforeWindow)],
        ['agent JS heap used at the end (MiB)', fmt(heapMiB)],
        ['instances passing / critical at the end', `${fmt(passing)} / ${fmt(critical)}`],
      ],
    ),
  );
  report.section(
    'Agent CPU by thread over the window (cores, from /proc/<pid>/task)',
    table(
      ['thread', 'user', 'system', 'total'],
      byThread.map((t) => [t.thread, fmt(t.user), fmt(t.system), fmt(t.user + t.system)]),
    ),
  );
  report.section(
    'Agent GC in the sustained window (prom-client nodejs_gc_duration_seconds)',
    table(
      ['kind', 'collections', 'total s', 'share of window', 'pauses > 100 ms'],
      Object.entries(gc.byKind).map(([kind, v]) => [
        kind,
        fmt(v.count),
        fmt(v.seconds),
        `${((v.seconds / window.wallSeconds) * 100).toFixed(1)}%`,
        fmt(v.over100ms),
      ]),
    ),
  );
  report.text(
    `Slowest heartbeat per second of the window (ms, service time): ${result.maxBySecond.join(' ')}. Agent event-loop delay max over the window: ${fmt(lagMaxS * 1000)} ms.`,
  );
  if (result.errors > 0)
    report.text(`Errors: ${JSON.stringify(result.statuses)} ${result.firstError ?? ''}`);
  report.text(
    `Target RSS < 512 MB: ${hwm * 1.048576 < 512 ? 'met' : 'NOT met'} (peak ${fmt(hwm * 1.048576)} MB = ${fmt(hwm)} MiB VmHWM).`,
  );
  if (cpuProfile !== undefined) {
    report.section(
      'Agent CPU profile, sustained window',
      profileTables(summarizeProfile(cpuProfile, 25, [[mono0, mono1]])),
    );
    report.section('Agent CPU profile, whole run', profileTables(summarizeProfile(cpuProfile, 25)));
  }
  if (heapFile !== undefined) {
    const rows = summarizeHeap(heapFile);
    const total = rows.reduce((a, r) => a + r.bytes, 0);
    report.section(
      `Agent heap snapshot at the end: ${fmt(total / 1024 / 1024)} MiB live, ${fmt(total / opts.instances)} B per instance`,
      table(
        ['type', 'name', 'count', 'MiB', 'per instance (count)', 'per instance (B)'],
        rows
          .slice(0, 25)
          .map((r) => [
            r.type,
            r.name,
            fmt(r.count),
            fmt(r.bytes / 1024 / 1024),
            fmt(r.count / opts.instances),
            fmt(r.bytes / opts.instances),
          ]),
      ),
    );
    report.section(
      'Largest string families in the heap (digits folded)',
      table(
        ['type', 'starts with', 'count', 'MiB', 'per instance (B)'],
        rows.strings
          .slice(0, 12)
          .map((r) => [
            r.type,
            `\`${r.name.replace(/`/g, "'").replace(/\|/g, '/')}\``,
            fmt(r.count),
            fmt(r.bytes / 1024 / 1024),
            fmt(r.bytes / opts.instances),
          ]),
      ),
    );
    log(`heap snapshot: ${heapFile}`);
  }
  report.finish();
});

/** Signals the agent to write a heap snapshot and waits until the file is complete. */
async function heapSnapshot(pid: number): Promise<string> {
  const before = new Set(readdirSync(PROFILES_DIR));
  process.kill(pid, 'SIGUSR2');
  const deadline = Date.now() + 600_000;
  let last = -1;
  for (;;) {
    await sleep(1000);
    const file = readdirSync(PROFILES_DIR).find(
      (f) => f.endsWith('.heapsnapshot') && !before.has(f),
    );
    if (file !== undefined) {
      const path = join(PROFILES_DIR, file);
      const size = statSync(path).size;
      // V8 writes the snapshot in one go; a size that holds for a second means it is done.
      if (size > 0 && size === last) return path;
      last = size;
    }
    if (Date.now() > deadline) throw new Error('no heap snapshot after 10 minutes');
  }
}
