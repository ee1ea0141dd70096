/**
 * @module bench:consul: the Consul adapter's cost. (1) `GET /v1/health/service/svc?passing` for a
 * 100-instance service against the native `GET /api/v1/services/svc/instances?status=passing` on
 * the same agent, wrk, A B A B. (2) 1,000 Consul blocking queries on one service, one change
 * at a time: for each change, the time until every watcher has returned.
 */
import { profiling, startAgent, type AgentHandle } from '../lib/agent.js';
import { blockingParked, collectReceipts, startWatchers } from '../lib/watchers.js';
import { runMain } from '../lib/cleanup.js';
import { monoMicros, profileTables, summarizeProfile } from '../lib/cpuprofile.js';
import { alternate, flags, sleep, type Peer } from '../lib/load.js';
import { loadPeer, type LoadRound } from '../lib/load-peer.js';
import { agentPool, heartbeatMany, registerMany, registration } from '../lib/registry-load.js';
import { fmt, log, ratio, Report, settle, table } from '../lib/report.js';
import { ensureWrk, runWrk, type WrkResult } from '../lib/wrk.js';
import { median, sharedNow, summarize, type Summary } from '../lib/stats.js';

const opts = flags('npm run bench:consul -- [flags]', {
  instances: { default: 100, help: 'instances of the read service' },
  connections: { default: 32, help: 'wrk connections' },
  duration: { default: 5, help: 'seconds per read round' },
  rounds: { default: 3, help: 'A B rounds' },
  warmup: { default: 2, help: 'seconds of untimed load per path before the rounds' },
  watchers: { default: 1000, help: 'Consul blocking queries on the watched service' },
  workers: { default: 2, help: 'worker processes holding the watchers' },
  changes: { default: 5, help: 'measured changes (one at a time)' },
  'quiet-wait': { default: 60, help: 'seconds to wait for other work on the machine to settle' },
  'cpu-prof': { default: false, help: 'run the agent under --cpu-prof' },
  client: {
    default: 'raw',
    help: 'blocking-query client in the workers: raw (minimal sockets) or node (node:http)',
  },
});

const NATIVE = '/api/v1/services/svc/instances?status=passing';
const CONSUL = '/v1/health/service/svc?passing';
const WATCHED = 'watched';

/** [from, to] µs (monotonic) of the Consul rounds, to slice the agent's CPU profile. */
const consulWindows: [number, number][] = [];

function peer(name: string, url: string, pid: number): Peer<LoadRound<WrkResult>> {
  return loadPeer({
    name,
    pid,
    load: () => runWrk(url, opts.connections, opts.duration),
    rps: (result) => result.rps,
    failure: (result) => (result.errors > 0 ? `${result.errors} errors or non-2xx` : undefined),
    ...(name === 'consul' ? { windows: consulWindows } : {}),
  });
}

/** [from, to] µs (monotonic) around each Consul change, to slice the agent's CPU profile. */
const fanoutWindows: [number, number][] = [];
let fanoutRuns = 0;

/**
 * The blocking-query part: 1,000 watchers parked in the agent, one change at a time. `consul`:
 * Consul blocking queries on /v1/health/service; `blocking`: native ones, the peer in this run.
 */
async function fanout(
  agent: AgentHandle,
  mode: 'consul' | 'blocking',
): Promise<{ lat: Summary; all: number[] }[]> {
  // A service of its own per run: a repeated registration would be a no-op, not a change.
  const watched = `${WATCHED}-${mode}-${++fanoutRuns}`;
  await registerMany(agent.url, 1, () => registration(watched, `${watched}-0`, 0, []));
  const indexOf = async (): Promise<number> =>
    Number(
      (await fetch(`${agent.url}/v1/health/service/${watched}`)).headers.get('x-consul-index'),
    );
  const index0 = await indexOf();
  const workers = await startWatchers({
    agentUrl: agent.url,
    service: watched,
    watchers: opts.watchers,
    workers: opts.workers,
    mode,
    index: index0,
    client: opts.client,
    name: `${mode}-watchers`,
  });
  const pool = agentPool(agent.url, 1);
  const out: { lat: Summary; all: number[] }[] = [];
  try {
    for (let k = 0; k <= opts.changes; k++) {
      await blockingParked(agent.url, opts.watchers);
      await sleep(300);
      const id = `${watched}-${k + 1}`;
      const mono0 = monoMicros();
      const t0 = sharedNow();
      // The same change either way: a new instance, through the API the watchers use.
      const res = await pool.request(
        mode === 'consul'
          ? {
              path: '/v1/agent/service/register',
              method: 'PUT',
              body: JSON.stringify({ Name: watched, ID: id, Address: '127.0.0.1', Port: 9000 + k }),
            }
          : {
              path: '/api/v1/instances',
              method: 'PUT',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify(registration(watched, id, 9000 + k, [])),
            },
      );
      await res.body.text();
      if (res.statusCode !== 200) throw new Error(`change ${k}: HTTP ${res.statusCode}`);
      const index = await indexOf();
      const times = await collectReceipts(workers, index);
      const missing = times.filter((t) => t === null).length;
      if (missing > 0) throw new Error(`change ${k}: ${missing} watchers did not return`);
      const got = times.map((t) => (t ?? 0) - t0);
      const lat = summarize(got);
      if (mode === 'consul' && k > 0) fanoutWindows.push([mono0, monoMicros()]);
      log(
        `${mode} ${k === 0 ? 'warm-up change' : `change ${k}`}: p50 ${fmt(lat.p50)} ms, p99 ${fmt(lat.p99)} ms, all returned ${fmt(lat.max)} ms`,
      );
      if (k > 0) out.push({ lat, all: got });
    }
  } finally {
    await pool.close();
    await Promise.all(workers.map((w) => w.stop()));
  }
  return out;
}

runMain(async () => {
  ensureWrk();
  const busy = await settle(opts['quiet-wait']);
  const agent = await startAgent(profiling(opts['cpu-prof']));
  log(`agent at ${agent.url}; registering ${opts.instances} instances of svc`);
  await registerMany(agent.url, opts.instances, (i) =>
    registration('svc', `svc-${String(i).padStart(4, '0')}`, i, [{ ttl: '10m' }]),
  );
  await heartbeatMany(agent.url, opts.instances, (i) => `svc-${String(i).padStart(4, '0')}`);
  const consulBody = await (await fetch(agent.url + CONSUL)).text();
  const nativeBody = await (await fetch(agent.url + NATIVE)).text();
  const listed = (JSON.parse(consulBody) as unknown[]).length;
  if (listed !== opts.instances) throw new Error(`/v1 lists ${listed} passing instances`);

  for (const path of [NATIVE, CONSUL]) {
    log(`warm-up ${path} ${opts.warmup}s`);
    runWrk(agent.url + path, opts.connections, opts.warmup);
  }
  const peers = [
    peer('native', agent.url + NATIVE, agent.pid),
    peer('consul', agent.url + CONSUL, agent.pid),
  ];
  const results = await alternate(peers, opts.rounds, (name, round, r) =>
    log(`round ${round} ${name}: ${fmt(r.rps)} req/s, p99 ${fmt(r.result.p99Ms)} ms`),
  );
  const rps = (name: string): number => median(results.get(name)?.map((r) => r.rps) ?? []);
  const nativeRps = rps('native');
  const consulRps = rps('consul');

  // Native first, then Consul, then native again: drift on the shared machine hits both.
  const nativeFan = await fanout(agent, 'blocking');
  const fan = await fanout(agent, 'consul');
  const nativeFan2 = await fanout(agent, 'blocking');
  const { cpuProfile } = await agent.stop();

  const report = new Report('consul', 'npm run bench:consul');
  report.quiet(busy);
  report.meta(
    `reads: GET ${CONSUL} (${consulBody.length} B) vs GET ${NATIVE} (${nativeBody.length} B), ${opts.instances} passing instances, same agent; wrk -t1 -c${opts.connections}, ${opts.duration}s per round, ${opts.rounds} rounds alternating native → consul after ${opts.warmup}s warm-up each`,
  );
  report.meta(
    `blocking: ${opts.watchers} Consul blocking queries (GET /v1/health/service/${WATCHED}?index=N&wait=300s, keep-alive, one socket each) in ${opts.workers} worker processes (${opts.client === 'node' ? 'node:http client' : 'minimal socket client'}); each change is a PUT /v1/agent/service/register of a new instance; time from just before the PUT until each watcher has its answer`,
  );
  report.section(
    'Reads, closed loop (median of rounds)',
    table(
      ['path', 'req/s', 'rounds (req/s)', '÷ native', 'p99 ms', 'server CPU µs/req'],
      peers.map((p) => {
        const rs = results.get(p.name) ?? [];
        return [
          p.name,
          fmt(median(rs.map((r) => r.rps))),
          rs.map((r) => fmt(r.rps)).join(' / '),
          ratio(median(rs.map((r) => r.rps)), nativeRps),
          fmt(median(rs.map((r) => r.result.p99Ms))),
          fmt(median(rs.map((r) => (r.serverCores / r.rps) * 1e6))),
        ];
      }),
    ),
  );
  const fanRow = (name: string, changes: { lat: Summary }[]): unknown[] => [
    name,
    fmt(median(changes.map((c) => c.lat.p50))),
    fmt(median(changes.map((c) => c.lat.p99))),
    fmt(Math.max(...changes.map((c) => c.lat.p99))),
    fmt(median(changes.map((c) => c.lat.max))),
    changes.map((c) => fmt(c.lat.p99)).join(' / '),
  ];
  report.section(
    `${opts.watchers} blocking queries, one change at a time (ms from the change request; medians over ${opts.changes} changes)`,
    table(
      ['blocking queries', 'p50', 'p99', 'worst p99', 'all returned (max)', 'p99 per change'],
      [
        fanRow('native, before', nativeFan),
        fanRow('consul /v1/health/service', fan),
        fanRow('native, after', nativeFan2),
      ],
    ),
  );
  const cost = 1 - consulRps / nativeRps;
  const worstP99 = median(fan.map((c) => c.lat.p99));
  report.text(
    `Adapter cost on reads: ${(cost * 100).toFixed(1)}% fewer req/s than native (target at most 15%: ${cost <= 0.15 ? 'met' : 'NOT met'}). Blocking queries: median p99 over the changes ${fmt(worstP99)} ms (target under 100 ms: ${worstP99 < 100 ? 'met' : 'NOT met'}).`,
  );
  if (cpuProfile !== undefined) {
    report.section(
      'Agent CPU profile, Consul read rounds',
      profileTables(summarizeProfile(cpuProfile, 20, consulWindows)),
    );
    report.section(
      'Agent CPU profile, Consul blocking-query changes',
      profileTables(summarizeProfile(cpuProfile, 25, fanoutWindows)),
    );
  }
  report.finish();
});
