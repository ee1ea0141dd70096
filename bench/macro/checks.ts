/**
 * @module bench:checks: 5,000 HTTP checks at a 5 s interval (1,000 probes/s) against a node:http
 * target in its own process that records each probe's arrival; the agent's CPU and RSS, and how
 * far the observed intervals drift from the configured one.
 */
import { fileURLToPath } from 'node:url';
import { scrapeMetric, startAgent, profiling } from '../lib/agent.js';
import { runMain } from '../lib/cleanup.js';
import { monoMicros, profileTables, summarizeProfile } from '../lib/cpuprofile.js';
import { flags, sleep } from '../lib/load.js';
import {
  CpuWindow,
  forkWorker,
  readMemory,
  request,
  RssSampler,
  ThreadCpuWindow,
} from '../lib/proc.js';
import { registerMany, registration } from '../lib/registry-load.js';
import { fmt, log, Report, settle, table } from '../lib/report.js';
import { sharedNow, summarize } from '../lib/stats.js';

const opts = flags('npm run bench:checks -- [flags]   (quick: -- --checks 1000 --seconds 15)', {
  checks: { default: 5_000, help: 'instances, one HTTP check each' },
  interval: { default: 5, help: 'check interval in seconds' },
  timeout: { default: 2, help: 'check timeout in seconds' },
  warmup: { default: 20, help: 'seconds after registration before the window' },
  seconds: { default: 60, help: 'length of the measured window' },
  services: { default: 100, help: 'services the instances are spread over' },
  'quiet-wait': { default: 300, help: 'seconds to wait for other work on the machine to settle' },
  'cpu-prof': { default: false, help: 'run the agent under --cpu-prof' },
});

const TARGET = fileURLToPath(new URL('../lib/workers/check-target.ts', import.meta.url));

interface TargetReport {
  arrivals: number;
  intervals: number[];
  paths: number;
  cpuCores: number;
}

runMain(async () => {
  const busy = await settle(opts['quiet-wait']);
  const target = forkWorker('check-target', TARGET);
  const { port } = await request<{ port: number }>(target, { type: 'listen' }, 'listening');
  const agent = await startAgent(profiling(opts['cpu-prof']));
  const rss = new RssSampler(agent.pid, 500);
  const intervalMs = opts.interval * 1000;

  log(`registering ${opts.checks} instances with an HTTP check every ${opts.interval}s`);
  const reg = await registerMany(agent.url, opts.checks, (i) =>
    registration(`chk-${i % opts.services}`, `chk-${i}`, i, [
      {
        http: `http://127.0.0.1:${port}/check/${i}`,
        interval: `${opts.interval}s`,
        timeout: `${opts.timeout}s`,
      },
    ]),
  );
  log(`registered in ${fmt(reg.elapsedMs / 1000)} s; warm-up ${opts.warmup} s`);
  await sleep(opts.warmup * 1000);

  const runs = async (status: string): Promise<number> =>
    scrapeMetric(agent.url, 'meshwork_registry_check_runs_total', `kind="http",status="${status}"`);
  const passing0 = await runs('passing');
  const critical0 = await runs('critical');
  await request(target, { type: 'mark' }, 'marked');
  const from = sharedNow();
  const mono0 = monoMicros();
  const threads = new ThreadCpuWindow(agent.pid);
  const cpu = new CpuWindow(agent.pid);
  log(`window: ${opts.seconds} s`);
  await sleep(opts.seconds * 1000);
  const c = cpu.read();
  const byThread = threads.read();
  const to = sharedNow();
  const mono1 = monoMicros();
  const passing = (await runs('passing')) - passing0;
  const critical = ((await runs('critical')) || 0) - (critical0 || 0);
  const rep = await request<TargetReport>(target, { type: 'report', from, to }, 'report');
  const hwm = readMemory(agent.pid).hwmMiB;
  const rssEnd = rss.sample();
  rss.stop();
  const { cpuProfile } = await agent.stop();
  await target.stop();

  const drift = rep.intervals.map((x) => x - intervalMs);
  const d = summarize(drift);
  const lo = 0.9 * intervalMs;
  const hi = 1.1 * intervalMs;
  const outside = rep.intervals.filter((x) => x < lo || x > hi).length;
  const over = rep.intervals.filter((x) => x > hi).length;
  const windowS = (to - from) / 1000;

  const report = new Report('checks', 'npm run bench:checks');
  report.meta(
    `setup: agent (SQLite store) with ${fmt(opts.checks)} instances, one HTTP check each (interval ${opts.interval}s ± 10% jitter by design, timeout ${opts.timeout}s) → ${fmt(opts.checks / opts.interval)} probes/s expected, against a node:http target in its own process; ${opts.warmup} s warm-up after registration, then a ${opts.seconds} s window`,
  );
  report.meta(
    'drift = observed interval between two consecutive probes of one check (arrival times at the target, both inside the window) − the configured interval',
  );
  report.quiet(busy);
  report.section(
    'Agent cost',
    table(
      ['metric', 'value'],
      [
        ['probes arriving at the target (per s)', fmt(rep.arrivals / windowS)],
        [
          'probe results counted by the agent: passing / critical',
          `${fmt(passing)} / ${fmt(critical)}`,
        ],
        ['agent CPU over the window (cores)', fmt(c.cores)],
        ['agent CPU per probe (µs)', fmt((c.cpuSeconds / Math.max(rep.arrivals, 1)) * 1e6)],
        ['agent RSS end / peak VmHWM (MiB)', `${fmt(rssEnd)} / ${fmt(hwm)}`],
        ['target CPU (cores)', fmt(rep.cpuCores)],
      ],
    ),
  );
  report.section(
    `Interval drift (observed − ${intervalMs} ms), ${fmt(d.n)} intervals`,
    table(
      [
        'min',
        'p1',
        'p50',
        'p99',
        'p99.9',
        'max',
        'mean',
        'outside [0.9, 1.1] × interval',
        'of which > 1.1 ×',
      ],
      [
        [
          fmt(d.min),
          fmt(d.p1),
          fmt(d.p50),
          fmt(d.p99),
          fmt(d.p999),
          fmt(d.max),
          fmt(d.mean),
          `${fmt(outside)} (${((outside / Math.max(d.n, 1)) * 100).toFixed(2)}%)`,
          fmt(over),
        ],
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
  report.text(
    `Target agent CPU < 0.5 cores: ${c.cores < 0.5 ? 'met' : 'NOT met'} (${fmt(c.cores)} cores). Drift in ms; the ±10% jitter alone spreads intervals uniformly over [${lo}, ${hi}] ms.`,
  );
  if (cpuProfile !== undefined)
    report.section(
      'Agent CPU profile, measured window',
      profileTables(summarizeProfile(cpuProfile, 25, [[mono0, mono1]])),
    );
  report.finish();
});
