/**
 * @module bench:fanout: 1,000 watchers of one service (SSE streams; then blocking queries) held by
 * worker processes; one change at a time; for each watcher, the time from just before the change
 * request is sent until that watcher has the event, on a clock shared across processes.
 */
import { scrapeMetric, startAgent, type AgentHandle, profiling } from '../lib/agent.js';
import { blockingParked, collectReceipts, startWatchers } from '../lib/watchers.js';
import { runMain } from '../lib/cleanup.js';
import { monoMicros, profileTables, summarizeProfile } from '../lib/cpuprofile.js';
import { flags, sleep } from '../lib/load.js';
import { clockSkew, CpuWindow, RssSampler } from '../lib/proc.js';
import { agentPool, registerMany, registration, timedChange } from '../lib/registry-load.js';
import { fmt, log, Report, settle, table } from '../lib/report.js';
import { median, summarize, type Summary } from '../lib/stats.js';

const opts = flags('npm run bench:fanout -- [flags]', {
  watchers: { default: 1000, help: 'concurrent watchers of the service' },
  workers: { default: 2, help: 'worker processes holding the watchers' },
  instances: { default: 10, help: 'instances of the watched service before the changes' },
  changes: { default: 7, help: 'measured changes per mode (one at a time)' },
  'warmup-changes': { default: 2, help: 'untimed changes per mode first (JIT warm-up)' },
  modes: { default: 'sse,blocking', help: 'sse, blocking or both' },
  'quiet-wait': { default: 300, help: 'seconds to wait for other work on the machine to settle' },
  'cpu-prof': { default: false, help: 'run the agent under --cpu-prof' },
  client: {
    default: 'raw',
    help: 'blocking-query client in the workers: raw (minimal sockets) or node (node:http)',
  },
});

const SERVICE = 'svc';

interface ChangeResult {
  readonly lat: Summary;
  readonly missing: number;
  readonly commitMs: number;
}

interface ModeResult {
  readonly mode: string;
  readonly changes: ChangeResult[];
  readonly clockSkewMs: number;
  readonly agentCores: number;
  /** [from, to] µs on the monotonic clock around each change, to slice the agent's profile. */
  readonly windows: [number, number][];
}

async function runMode(agent: AgentHandle, mode: 'sse' | 'blocking'): Promise<ModeResult> {
  const index0 = Number(
    (await fetch(`${agent.url}/api/v1/services/${SERVICE}/instances`)).headers.get(
      'x-meshwork-index',
    ),
  );
  const workers = await startWatchers({
    agentUrl: agent.url,
    service: SERVICE,
    watchers: opts.watchers,
    workers: opts.workers,
    mode,
    index: index0,
    client: opts.client,
    name: 'watchers',
  });
  const parked = async (): Promise<void> => {
    // Every blocking query is waiting in the agent before the next change.
    if (mode === 'blocking') await blockingParked(agent.url, opts.watchers);
  };
  await parked();
  const streams = await scrapeMetric(agent.url, 'meshwork_registry_watchers', 'kind="stream"');
  log(`${mode}: ${opts.watchers} watchers ready (agent counts ${streams} streams)`);
  const skew = await clockSkew(workers);

  const pool = agentPool(agent.url, 1);
  const results: ChangeResult[] = [];
  const windows: [number, number][] = [];
  const cpu = new CpuWindow(agent.pid);
  try {
    for (let k = 1 - opts['warmup-changes']; k <= opts.changes; k++) {
      await parked();
      await sleep(500);
      const id = `${SERVICE}-${mode}-change-${k + opts['warmup-changes']}`;
      const body = JSON.stringify(registration(SERVICE, id, 1000 + k + opts['warmup-changes'], []));
      const { index, t0, mono0, putMs: commitMs } = await timedChange(pool, body);
      const times = await collectReceipts(workers, index);
      const got = times.filter((t): t is number => t !== null).map((t) => t - t0);
      const lat = summarize(got);
      const warm = k <= 0;
      if (!warm) {
        windows.push([mono0, monoMicros()]);
        results.push({ lat, missing: times.length - got.length, commitMs });
      }
      log(
        `${mode} ${warm ? 'warm-up change' : `change ${k}`} (index ${index}): p50 ${fmt(lat.p50)} ms, p99 ${fmt(lat.p99)} ms, max ${fmt(lat.max)} ms, missing ${times.length - got.length}, commit ${fmt(commitMs)} ms`,
      );
    }
  } finally {
    await pool.close();
    await Promise.all(workers.map((w) => w.stop()));
  }
  return { mode, changes: results, clockSkewMs: skew, agentCores: cpu.read().cores, windows };
}

runMain(async () => {
  const busy = await settle(opts['quiet-wait']);
  const agent = await startAgent(profiling(opts['cpu-prof']));
  const rss = new RssSampler(agent.pid);
  await registerMany(agent.url, opts.instances, (i) =>
    registration(SERVICE, `${SERVICE}-${i}`, i, []),
  );
  const modes = opts.modes.split(',') as ('sse' | 'blocking')[];
  const out: ModeResult[] = [];
  for (const mode of modes) out.push(await runMode(agent, mode));
  rss.stop();
  const { cpuProfile } = await agent.stop();
  if (cpuProfile !== undefined) log(`agent CPU profile: ${cpuProfile}`);

  const report = new Report('fanout', 'npm run bench:fanout');
  report.meta(
    `setup: agent (SQLite store) with service "${SERVICE}" of ${opts.instances} instances; ${opts.watchers} watchers in ${opts.workers} worker processes (own sockets); ${opts.changes} measured changes per mode after ${opts['warmup-changes']} warm-up ones, one at a time, 0.5 s apart`,
  );
  report.meta(
    'change: PUT /api/v1/instances of a new instance of the service (a durable commit, then the event); latency = receipt in the watcher − just before the PUT is sent, on performance.timeOrigin + performance.now() in both processes',
  );
  report.quiet(busy);
  const row = (m: ModeResult): unknown[] => {
    const med = (f: (c: ChangeResult) => number): string => fmt(median(m.changes.map(f)));
    return [
      m.mode === 'sse' ? 'SSE stream (/api/v1/watch)' : 'blocking query (?index&wait)',
      opts.watchers,
      m.changes.length,
      med((c) => c.lat.p50),
      med((c) => c.lat.p99),
      med((c) => c.lat.max),
      m.changes.map((c) => fmt(c.lat.p99)).join(' / '),
      m.changes.reduce((a, c) => a + c.missing, 0),
      med((c) => c.commitMs),
      `±${fmt(m.clockSkewMs)}`,
    ];
  };
  report.section(
    'Change → every watcher has it (median over changes)',
    table(
      [
        'watch',
        'watchers',
        'changes',
        'p50 ms',
        'p99 ms',
        'max ms (all have it)',
        'p99 per change',
        'missing',
        'PUT ms',
        'clock error ms',
      ],
      out.map(row),
    ),
  );
  const sse = out.find((m) => m.mode === 'sse');
  if (sse !== undefined) {
    const p99 = median(sse.changes.map((c) => c.lat.p99));
    report.text(
      `Target SSE p99 < 100 ms: ${p99 < 100 ? 'met' : 'NOT met'} (${fmt(p99)} ms). Agent RSS peak ${fmt(rss.peakMiB)} MiB.`,
    );
  }
  if (cpuProfile !== undefined) {
    for (const m of out) {
      report.section(
        `Agent CPU profile during the ${m.mode} changes (PUT sent → every watcher has it)`,
        profileTables(summarizeProfile(cpuProfile, 25, m.windows)),
      );
    }
  }
  report.finish();
});
