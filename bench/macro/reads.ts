/**
 * @module bench:reads: `GET /api/v1/services/svc/instances?status=passing` (100 instances) on the
 * agent against a plain node:http server answering the same bytes from memory; autocannon, same
 * connections and duration, A B A B, then latency at a fixed rate.
 */
import { fileURLToPath } from 'node:url';
import autocannon, { type Result } from 'autocannon';
import { startAgent, profiling } from '../lib/agent.js';
import { runMain } from '../lib/cleanup.js';
import { profileTables, summarizeProfile } from '../lib/cpuprofile.js';
import { alternate, flags, type Peer } from '../lib/load.js';
import { fixedRatePeer, loadPeer, type FixedRateRound, type LoadRound } from '../lib/load-peer.js';
import { forkWorker, request } from '../lib/proc.js';
import { heartbeatMany, registerMany, registration } from '../lib/registry-load.js';
import { fmt, log, ratio, Report, settle, table } from '../lib/report.js';
import { median, summarize } from '../lib/stats.js';

const opts = flags('npm run bench:reads -- [flags]', {
  instances: { default: 100, help: 'instances of the service' },
  connections: { default: 64, help: 'autocannon connections' },
  duration: { default: 10, help: 'seconds per round' },
  rounds: { default: 3, help: 'A B rounds' },
  warmup: { default: 3, help: 'seconds of untimed load per target before the rounds' },
  rate: {
    default: 0,
    help: 'fixed rate for the latency rounds (0 = a quarter of the slower peer)',
  },
  'quiet-wait': { default: 300, help: 'seconds to wait for other work on the machine to settle' },
  'cpu-prof': { default: false, help: 'run the agent under --cpu-prof' },
});

const PATH = '/api/v1/services/svc/instances?status=passing';

/** [from, to] µs (monotonic) of the agent's closed-loop rounds, to slice its CPU profile. */
const agentWindows: [number, number][] = [];

function peer(name: string, url: string, pid: number): Peer<LoadRound<Result>> {
  return loadPeer({
    name,
    pid,
    load: () =>
      autocannon({
        url: url + PATH,
        connections: opts.connections,
        duration: opts.duration,
        pipelining: 1,
      }),
    rps: (result) => result['2xx'] / result.duration,
    failure: (result) =>
      result.errors > 0 || result.non2xx > 0 || result.timeouts > 0
        ? `${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx`
        : undefined,
    ...(name === 'agent' ? { windows: agentWindows } : {}),
  });
}

/** GETs of PATH at `rate` over the run's connection count; a failed request fails the run. */
function fixedPeer(name: string, url: string, pid: number, rate: number): Peer<FixedRateRound> {
  const { connections, duration: seconds } = opts;
  return fixedRatePeer({
    name,
    pid,
    url,
    path: PATH,
    connections,
    rate,
    seconds,
    failOnErrors: true,
  });
}

runMain(async () => {
  const busy = await settle(opts['quiet-wait']);
  const agent = await startAgent(profiling(opts['cpu-prof']));
  log(`agent at ${agent.url}; registering ${opts.instances} instances of svc`);
  await registerMany(agent.url, opts.instances, (i) =>
    registration('svc', `svc-${String(i).padStart(4, '0')}`, i, [{ ttl: '10m' }]),
  );
  await heartbeatMany(agent.url, opts.instances, (i) => `svc-${String(i).padStart(4, '0')}`);
  const res = await fetch(agent.url + PATH);
  const body = await res.text();
  const parsed = JSON.parse(body) as { instances: unknown[] };
  if (parsed.instances.length !== opts.instances)
    throw new Error(
      `agent lists ${parsed.instances.length} passing instances, not ${opts.instances}`,
    );
  const headers: Record<string, string> = {};
  for (const h of ['content-type', 'x-meshwork-index']) {
    const v = res.headers.get(h);
    if (v !== null) headers[h] = v;
  }

  const worker = forkWorker(
    'static-json',
    fileURLToPath(new URL('../lib/workers/static-json-server.ts', import.meta.url)),
  );
  const { port } = await request<{ port: number }>(
    worker,
    { type: 'serve', body, headers },
    'listening',
  );
  const staticUrl = `http://127.0.0.1:${port}`;
  const check = await (await fetch(staticUrl + PATH)).text();
  if (check !== body) throw new Error('the static peer does not serve the same bytes');
  log(`static peer at ${staticUrl}; body ${body.length} B`);

  for (const [name, url] of [
    ['agent', agent.url],
    ['node:http', staticUrl],
  ] as const) {
    log(`warm-up ${name} ${opts.warmup}s`);
    await autocannon({ url: url + PATH, connections: opts.connections, duration: opts.warmup });
  }

  const peers = [
    peer('agent', agent.url, agent.pid),
    peer('node:http static', staticUrl, worker.pid),
  ];
  const results = await alternate(peers, opts.rounds, (name, round, r) =>
    log(
      `round ${round} ${name}: ${fmt(r.rps)} req/s, p99 ${r.result.latency.p99} ms, server ${fmt(r.serverCores)} cores`,
    ),
  );
  const rpsOf = (name: string): number[] => results.get(name)?.map((r) => r.rps) ?? [];
  const agentRps = median(rpsOf('agent'));
  const staticRps = median(rpsOf('node:http static'));

  const rate =
    opts.rate > 0 ? opts.rate : Math.round(Math.min(agentRps, staticRps) / 4 / 100) * 100;
  log(`fixed-rate rounds at ${rate} req/s`);
  const fixedPeers = [
    fixedPeer('agent', agent.url, agent.pid, rate),
    fixedPeer('node:http static', staticUrl, worker.pid, rate),
  ];
  const fixed = await alternate(fixedPeers, opts.rounds, (name, round, r) => {
    const s = summarize(r.load.latencyMs);
    log(
      `fixed round ${round} ${name}: p50 ${fmt(s.p50)} ms, p99 ${fmt(s.p99)} ms, late sends ${r.load.lateSends}, driver ${fmt(r.driverCores)} cores`,
    );
  });

  const { cpuProfile } = await agent.stop();
  if (cpuProfile !== undefined) log(`agent CPU profile: ${cpuProfile}`);

  const report = new Report('reads', 'npm run bench:reads');
  report.quiet(busy);
  report.meta(
    `request: GET ${PATH} → ${opts.instances} instances, ${body.length} B of JSON (served from the agent's per-index cache); the peer is node:http in its own process answering the same bytes and headers from memory`,
  );
  report.meta(
    `load: autocannon ${opts.connections} connections, pipelining 1, ${opts.duration}s per round, ${opts.rounds} rounds alternating agent → node:http, after ${opts.warmup}s warm-up each; both servers one process; autocannon runs in the orchestrator process`,
  );
  const maxRows = peers.map((p) => {
    const rs = results.get(p.name) ?? [];
    return [
      p.name,
      fmt(median(rs.map((r) => r.rps))),
      rs.map((r) => fmt(r.rps)).join(' / '),
      ratio(median(rs.map((r) => r.rps)), staticRps),
      fmt(median(rs.map((r) => r.result.throughput.average / 1024 / 1024))),
      fmt(median(rs.map((r) => r.serverCores))),
      fmt(median(rs.map((r) => (r.serverCores / r.rps) * 1e6))),
      fmt(median(rs.map((r) => r.driverCores))),
    ];
  });
  report.section(
    'Throughput, closed loop (median of rounds)',
    table(
      [
        'server',
        'req/s',
        'rounds (req/s)',
        '÷ node:http',
        'MiB/s',
        'server CPU (cores)',
        'CPU µs/req',
        'autocannon CPU (cores)',
      ],
      maxRows,
    ),
  );
  const fixedRows = fixedPeers.map((p) => {
    const rs = fixed.get(p.name) ?? [];
    const sums = rs.map((r) => summarize(r.load.latencyMs));
    const lat = (k: 'p50' | 'p90' | 'p99' | 'p999' | 'max'): string =>
      fmt(median(sums.map((x) => x[k])));
    return [
      p.name,
      fmt(median(rs.map((r) => r.load.ok / (r.load.elapsedMs / 1000)))),
      lat('p50'),
      lat('p90'),
      lat('p99'),
      lat('p999'),
      lat('max'),
      fmt(median(rs.map((r) => r.serverCores))),
      fmt(median(rs.map((r) => r.driverCores))),
      fmt(median(rs.map((r) => r.load.lateSends))),
    ];
  });
  report.section(
    `Latency at a fixed ${rate} req/s (open loop over ${opts.connections} keep-alive connections with bench/lib/raw-http.ts, latency from the due time; median of rounds)`,
    table(
      [
        'server',
        'achieved req/s',
        'p50 ms',
        'p90 ms',
        'p99 ms',
        'p99.9 ms',
        'max ms',
        'server CPU (cores)',
        'driver CPU (cores)',
        'sends > 5 ms late',
      ],
      fixedRows,
    ),
  );
  report.text(
    `Target agent ≥ 0.5x node:http: ${agentRps / staticRps >= 0.5 ? 'met' : 'NOT met'} (${ratio(agentRps, staticRps)}). The closed-loop rounds measure capacity; the fixed-rate rounds measure latency at a load both handle. On 2 cores the driver, the server and their GC threads share the CPUs, so the tail includes scheduling delay (sends > 5 ms late count the driver's own).`,
  );
  if (cpuProfile !== undefined) {
    report.section(
      'Agent CPU profile, closed-loop rounds',
      profileTables(summarizeProfile(cpuProfile, 25, agentWindows)),
    );
  }
  report.finish();
  await worker.stop();
});
