/**
 * @module bench:dns: dnsperf against the agent's DNS interface and against dnsmasq serving the
 * same names (A and SRV) from a hosts file and srv-host lines; same query file, same run,
 * A B A B at full speed, then at a fixed rate for lost queries and latency percentiles.
 */
import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { profiling, startAgent } from '../lib/agent.js';
import { makeTempDir, runMain } from '../lib/cleanup.js';
import { monoMicros, profileTables, summarizeProfile } from '../lib/cpuprofile.js';
import { alternate, flags, type Peer } from '../lib/load.js';
import { CpuWindow, freePort, REPO_ROOT, spawnChild, type Child } from '../lib/proc.js';
import { registerMany } from '../lib/registry-load.js';
import { fmt, log, ratio, Report, settle, table } from '../lib/report.js';
import { median, summarize } from '../lib/stats.js';

const opts = flags('npm run bench:dns -- [flags]', {
  services: { default: 20, help: 'services (each answered as A and SRV)' },
  instances: { default: 5, help: 'instances per service' },
  duration: { default: 10, help: 'seconds per full-speed round (dnsperf -l)' },
  rounds: { default: 3, help: 'A B rounds' },
  warmup: { default: 3, help: 'seconds of untimed load per server before the rounds' },
  outstanding: { default: 100, help: 'dnsperf -q: queries in flight' },
  rate: { default: 10_000, help: 'dnsperf -Q for the fixed-rate rounds' },
  'rate-duration': { default: 10, help: 'seconds per fixed-rate round' },
  'quiet-wait': { default: 300, help: 'seconds to wait for other work on the machine to settle' },
  'cpu-prof': { default: false, help: 'run the agent under --cpu-prof' },
});

interface DnsperfResult {
  readonly qps: number;
  readonly sent: number;
  readonly lost: number;
  readonly avgLatencyMs: number;
  readonly responseBytes: number;
  readonly rcodes: string;
  /** Per-query latencies (ms), only when run with -v. */
  readonly latenciesMs: Float64Array;
  readonly serverCores: number;
}

const hex = (ip: string): string =>
  ip
    .split('.')
    .map((o) => Number(o).toString(16).padStart(2, '0'))
    .join('');
const address = (s: number, i: number): string => `10.${Math.floor(s / 250)}.${s % 250}.${i + 1}`;
const target = (ip: string): string => `${hex(ip)}.addr.dc1.consul`;

/** Runs dnsperf to completion (bounded by -l) and parses its statistics. */
async function dnsperf(
  port: number,
  queryFile: string,
  args: string[],
  pid: number,
): Promise<DnsperfResult> {
  const cpu = new CpuWindow(pid);
  const child = spawn(
    'dnsperf',
    [
      '-s',
      '127.0.0.1',
      '-p',
      String(port),
      '-d',
      queryFile,
      '-q',
      String(opts.outstanding),
      ...args,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  const latencies: number[] = [];
  let partial = '';
  child.stdout.on('data', (d: Buffer) => {
    const text = partial + d.toString();
    const lines = text.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      // -v: "> NOERROR name type 0.000143"
      if (line.startsWith('> '))
        latencies.push(Number(line.slice(line.lastIndexOf(' ') + 1)) * 1000);
      else out += `${line}\n`;
    }
  });
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  const serverCores = cpu.read().cores;
  if (code !== 0) throw new Error(`dnsperf exited ${code}: ${err.slice(-500)}`);
  const num = (re: RegExp): number => Number(re.exec(out)?.[1] ?? Number.NaN);
  return {
    qps: num(/Queries per second:\s+([\d.]+)/),
    sent: num(/Queries sent:\s+(\d+)/),
    lost: num(/Queries lost:\s+(\d+)/),
    avgLatencyMs: num(/Average Latency \(s\):\s+([\d.]+)/) * 1000,
    responseBytes: num(/response (\d+)/),
    rcodes: /Response codes:\s+(.*)/.exec(out)?.[1]?.trim() ?? '',
    latenciesMs: Float64Array.from(latencies),
    serverCores,
  };
}

/** The answer counts dig sees for one name, so both servers are known to serve the same data. */
function answerCount(port: number, name: string, type: string): number {
  const out = execFileSync(
    'dig',
    ['@127.0.0.1', '-p', String(port), '+short', '+time=2', name, type],
    {
      encoding: 'utf8',
    },
  );
  return out.split('\n').filter((l) => l !== '').length;
}

/** [from, to] µs (monotonic) of the agent's full-speed rounds, to slice its CPU profile. */
const agentWindows: [number, number][] = [];

runMain(async () => {
  execFileSync(
    'bash',
    [join(REPO_ROOT, 'scripts', 'ensure-tools.sh'), 'dnsperf', 'dnsmasq', 'dig'],
    {
      stdio: 'inherit',
    },
  );
  const busy = await settle(opts['quiet-wait']);
  const dir = await makeTempDir('dns');
  const agentPort = await freePort();
  const agent = await startAgent({
    dev: true,
    dns: `127.0.0.1:${agentPort}`,
    ...profiling(opts['cpu-prof']),
  });
  const n = opts.services * opts.instances;
  const reg = await registerMany(agent.url, n, (i) => {
    const s = Math.floor(i / opts.instances);
    const k = i % opts.instances;
    return {
      service: `svc-${s}`,
      id: `svc-${s}-${k}`,
      address: address(s, k),
      port: 8000 + k,
      tags: [],
      meta: {},
      checks: [],
    };
  });
  if (reg.errors > 0) throw new Error(`registration failed: ${reg.firstError}`);
  log(`agent ${agent.url}, DNS on ${agentPort}; ${n} instances in ${opts.services} services`);

  // dnsmasq with the same names: A from a hosts file, SRV from srv-host lines (weight 1,
  // priority 0, as the agent answers instances registered without weights or priority).
  const hosts: string[] = [];
  const srvHosts: string[] = [];
  for (let s = 0; s < opts.services; s++) {
    for (let k = 0; k < opts.instances; k++) {
      const ip = address(s, k);
      hosts.push(`${ip} svc-${s}.service.consul`, `${ip} ${target(ip)}`);
      srvHosts.push(`--srv-host=_svc-${s}._tcp.service.consul,${target(ip)},${8000 + k},0,1`);
    }
  }
  const hostsFile = join(dir, 'hosts');
  writeFileSync(hostsFile, `${hosts.join('\n')}\n`);
  const dnsmasqPort = await freePort();
  const dnsmasq: Child = spawnChild(
    'dnsmasq',
    '/usr/sbin/dnsmasq',
    [
      '--no-daemon',
      '--no-resolv',
      '--no-hosts',
      `--addn-hosts=${hostsFile}`,
      `--port=${dnsmasqPort}`,
      '--listen-address=127.0.0.1',
      '--bind-interfaces',
      '--user=root',
      '--log-facility=/dev/null',
      ...srvHosts,
    ],
    { logFile: join(dir, 'dnsmasq.log') },
  );
  const dnsmasqVersion =
    execFileSync('/usr/sbin/dnsmasq', ['--version'], { encoding: 'utf8' }).split('\n')[0] ?? '';
  for (let attempt = 0; ; attempt++) {
    try {
      if (answerCount(dnsmasqPort, 'svc-0.service.consul', 'A') === opts.instances) break;
    } catch {
      // not listening yet
    }
    if (attempt > 50) throw new Error('dnsmasq did not come up');
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const [name, type] of [
    ['svc-0.service.consul', 'A'],
    ['_svc-0._tcp.service.consul', 'SRV'],
  ] as const) {
    const a = answerCount(agentPort, name, type);
    const b = answerCount(dnsmasqPort, name, type);
    if (a !== opts.instances || b !== opts.instances)
      throw new Error(
        `${name} ${type}: agent ${a} answers, dnsmasq ${b}; expected ${opts.instances}`,
      );
  }

  const queryFile = join(dir, 'queries.txt');
  const queries: string[] = [];
  for (let s = 0; s < opts.services; s++)
    queries.push(`svc-${s}.service.consul A`, `_svc-${s}._tcp.service.consul SRV`);
  writeFileSync(queryFile, `${queries.join('\n')}\n`);

  const servers = [
    { name: 'meshwork', port: agentPort, pid: agent.pid },
    { name: 'dnsmasq', port: dnsmasqPort, pid: dnsmasq.pid },
  ];
  for (const s of servers) {
    log(`warm-up ${s.name} ${opts.warmup}s`);
    await dnsperf(s.port, queryFile, ['-l', String(opts.warmup)], s.pid);
  }
  const full = servers.map((s): Peer<DnsperfResult> => ({
    name: s.name,
    async run() {
      const t0 = monoMicros();
      const r = await dnsperf(s.port, queryFile, ['-l', String(opts.duration)], s.pid);
      if (s.name === 'meshwork') agentWindows.push([t0, monoMicros()]);
      return r;
    },
  }));
  const fullResults = await alternate(full, opts.rounds, (name, round, r) =>
    log(
      `round ${round} ${name}: ${fmt(r.qps)} qps, lost ${r.lost}, avg ${fmt(r.avgLatencyMs)} ms, server ${fmt(r.serverCores)} cores`,
    ),
  );
  const fixed = servers.map((s): Peer<DnsperfResult> => ({
    name: s.name,
    run: () =>
      dnsperf(
        s.port,
        queryFile,
        ['-l', String(opts['rate-duration']), '-Q', String(opts.rate), '-v'],
        s.pid,
      ),
  }));
  const fixedResults = await alternate(fixed, opts.rounds, (name, round, r) => {
    const l = summarize(r.latenciesMs);
    log(
      `fixed round ${round} ${name}: ${fmt(r.qps)} qps, lost ${r.lost}, p50 ${fmt(l.p50)} ms, p99 ${fmt(l.p99)} ms`,
    );
  });

  await dnsmasq.stop();
  const { cpuProfile } = await agent.stop();

  const qpsOf = (name: string): number => median(fullResults.get(name)?.map((r) => r.qps) ?? []);
  const meshQps = qpsOf('meshwork');
  const peerQps = qpsOf('dnsmasq');
  const report = new Report('dns', 'npm run bench:dns');
  report.quiet(busy);
  report.meta(
    `names: ${opts.services} services x ${opts.instances} instances; the query file asks each service as A (${opts.instances} records) and as SRV (${opts.instances} records + ${opts.instances} A in Additional), ${queries.length} lines, cycled`,
  );
  report.meta(
    `peer: ${dnsmasqVersion}, 1 process, the same names from --addn-hosts and --srv-host; meshwork: the agent (--dev, one process) answering from its catalog`,
  );
  report.meta(
    `load: dnsperf 2.10 over UDP, -q ${opts.outstanding} in flight, ${opts.duration}s per round, ${opts.rounds} rounds alternating meshwork → dnsmasq after ${opts.warmup}s warm-up each; then ${opts.rounds} rounds at -Q ${opts.rate} for ${opts['rate-duration']}s with -v (per-query latency)`,
  );
  report.section(
    'Full speed (median of rounds)',
    table(
      [
        'server',
        'queries/s',
        'rounds (q/s)',
        '÷ dnsmasq',
        'lost',
        'avg latency ms',
        'response B',
        'server CPU (cores)',
      ],
      servers.map((s) => {
        const rs = fullResults.get(s.name) ?? [];
        return [
          s.name,
          fmt(median(rs.map((r) => r.qps))),
          rs.map((r) => fmt(r.qps)).join(' / '),
          ratio(median(rs.map((r) => r.qps)), peerQps),
          rs.map((r) => r.lost).join(' / '),
          fmt(median(rs.map((r) => r.avgLatencyMs))),
          fmt(median(rs.map((r) => r.responseBytes))),
          fmt(median(rs.map((r) => r.serverCores))),
        ];
      }),
    ),
  );
  report.section(
    `Fixed rate: dnsperf -Q ${opts.rate} (median of rounds; latency from dnsperf -v per query)`,
    table(
      [
        'server',
        'queries/s',
        'sent',
        'lost',
        'p50 ms',
        'p99 ms',
        'p99.9 ms',
        'max ms',
        'server CPU (cores)',
        'rcodes (last round)',
      ],
      servers.map((s) => {
        const rs = fixedResults.get(s.name) ?? [];
        const sums = rs.map((r) => summarize(r.latenciesMs));
        const lat = (k: 'p50' | 'p99' | 'p999' | 'max'): string =>
          fmt(median(sums.map((x) => x[k])));
        return [
          s.name,
          fmt(median(rs.map((r) => r.qps))),
          rs.map((r) => r.sent).join(' / '),
          rs.map((r) => r.lost).join(' / '),
          lat('p50'),
          lat('p99'),
          lat('p999'),
          lat('max'),
          fmt(median(rs.map((r) => r.serverCores))),
          rs.at(-1)?.rcodes ?? '',
        ];
      }),
    ),
  );
  const meshFixed = fixedResults.get('meshwork') ?? [];
  const lostAtRate = meshFixed.reduce((a, r) => a + r.lost, 0);
  const p99AtRate = median(meshFixed.map((r) => summarize(r.latenciesMs).p99));
  report.text(
    [
      `Targets: ≥ 0.5x dnsmasq: ${meshQps / peerQps >= 0.5 ? 'met' : 'NOT met'} (${ratio(meshQps, peerQps)});`,
      `≥ 15,000 q/s: ${meshQps >= 15_000 ? 'met' : 'NOT met'} (${fmt(meshQps)});`,
      `0 lost at ${fmt(opts.rate)} q/s: ${lostAtRate === 0 ? 'met' : `NOT met (${lostAtRate} lost)`};`,
      `p99 < 5 ms at ${fmt(opts.rate)} q/s: ${p99AtRate < 5 ? 'met' : 'NOT met'} (${fmt(p99AtRate)} ms).`,
      'dnsperf, the server and (for meshwork) its GC threads share the 2 cores.',
    ].join(' '),
  );
  if (cpuProfile !== undefined) {
    report.section(
      'Agent CPU profile, full-speed rounds',
      profileTables(summarizeProfile(cpuProfile, 25, agentWindows)),
    );
  }
  report.finish();
});
