/**
 * @module bench:eureka: the Eureka adapter's cost (issue 23). (1) Renewals: `PUT
 * /eureka/v2/apps/BENCH/<id>` against the native heartbeat `PUT /api/v1/instances/<id>/heartbeat`
 * of the same instances on the same agent (wrk with a Lua script walking the ids, A B A B); the
 * agent's CPU per request of each (target: Eureka at most 1.2x). (2) Full-registry fetches with
 * 10,000 instances, JSON and XML, and `/apps/delta` after a few changes: latency and bytes.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { request as undiciRequest } from 'undici';
import { profiling, startAgent } from '../lib/agent.js';
import { makeTempDir, runMain } from '../lib/cleanup.js';
import { profileTables, summarizeProfile } from '../lib/cpuprofile.js';
import { alternate, closedLoop, flags } from '../lib/load.js';
import { loadPeer, type LoadRound } from '../lib/load-peer.js';
import { CpuWindow } from '../lib/proc.js';
import { agentPool } from '../lib/registry-load.js';
import { fmt, log, Report, settle, table } from '../lib/report.js';
import { median, summarize } from '../lib/stats.js';
import { ensureWrk, runWrk, type WrkResult } from '../lib/wrk.js';

const opts = flags('npm run bench:eureka -- [flags]', {
  instances: { default: 1_000, help: 'instances renewed in the renewal rounds (app BENCH)' },
  registry: { default: 10_000, help: 'instances in the registry for the fetch part' },
  apps: { default: 100, help: 'apps the fetch part spreads its instances over' },
  connections: { default: 32, help: 'wrk connections' },
  duration: { default: 5, help: 'seconds per renewal round' },
  rounds: { default: 4, help: 'A B rounds of renewals' },
  warmup: { default: 2, help: 'seconds of untimed renewals per path before the rounds' },
  fetches: { default: 20, help: 'sequential fetches per kind (full JSON, full XML, deltas)' },
  changes: { default: 50, help: 'status changes made before the delta fetches' },
  'quiet-wait': { default: 60, help: 'seconds to wait for other work on the machine to settle' },
  'cpu-prof': { default: false, help: 'run the agent under --cpu-prof' },
});

const BASE = '/eureka/v2/apps';
/** The output a Eureka renewal writes; the native heartbeat sends the same, so neither writes. */
const RENEWAL_OUTPUT = 'Eureka status UP';

/** A registration body as eureka-js-client sends it. */
function eurekaBody(app: string, id: string, port: number): string {
  return JSON.stringify({
    instance: {
      instanceId: id,
      app,
      hostName: `${id}.bench.local`,
      ipAddr: `10.${(port >> 16) & 255}.${(port >> 8) & 255}.${port & 255}`,
      status: 'UP',
      port: { $: 8080, '@enabled': 'true' },
      securePort: { $: 8443, '@enabled': 'false' },
      vipAddress: app.toLowerCase(),
      dataCenterInfo: {
        '@class': 'com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo',
        name: 'MyOwn',
      },
      leaseInfo: { renewalIntervalInSecs: 30, durationInSecs: 600 },
      metadata: { version: 'v1', zone: `zone-${port % 3}` },
    },
  });
}

async function registerThroughEureka(
  url: string,
  n: number,
  make: (i: number) => { app: string; id: string },
): Promise<void> {
  const pool = agentPool(url, 64);
  try {
    const r = await closedLoop(n, 64, async (i) => {
      const { app, id } = make(i);
      const res = await pool.request({
        path: `${BASE}/${app}`,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: eurekaBody(app, id, i + 1),
      });
      await res.body.dump();
      return res.statusCode === 204;
    });
    if (r.errors > 0) throw new Error(`${r.errors} Eureka registrations failed: ${r.firstError}`);
  } finally {
    await pool.close();
  }
}

/** A wrk Lua script PUTting `path(i)` (a Lua expression of i) over ids 0..n-1, with `body`. */
function walkScript(dir: string, name: string, n: number, path: string, body?: string): string {
  const file = join(dir, `${name}.lua`);
  writeFileSync(
    file,
    `local i = 0
local n = ${n}
${body === undefined ? '' : 'wrk.headers["Content-Type"] = "application/json"\n'}local body = ${body === undefined ? 'nil' : JSON.stringify(body)}
request = function()
  i = (i + 1) % n
  return wrk.format("PUT", ${path}, nil, body)
end
`,
  );
  return file;
}

interface Fetched {
  readonly ms: number;
  readonly bytes: number;
  readonly gzipBytes: number;
  readonly body: string;
}

async function fetchOnce(url: string, accept: string): Promise<Fetched> {
  const t0 = performance.now();
  const res = await undiciRequest(url, { headers: { accept } });
  const body = await res.body.text();
  const ms = performance.now() - t0;
  if (res.statusCode !== 200) throw new Error(`GET ${url}: HTTP ${res.statusCode} ${body}`);
  return {
    ms,
    bytes: Buffer.byteLength(body),
    gzipBytes: gzipSync(body).length,
    body,
  };
}

runMain(async () => {
  ensureWrk();
  const busy = await settle(opts['quiet-wait']);
  const dir = await makeTempDir('bench-eureka');
  const agent = await startAgent({ dev: true, ...profiling(opts['cpu-prof']) });
  log(`agent at ${agent.url}; registering ${opts.instances} instances of BENCH through Eureka`);
  await registerThroughEureka(agent.url, opts.instances, (i) => ({ app: 'BENCH', id: `b-${i}` }));

  // ---- (1) renewals ------------------------------------------------------------------------
  const eurekaScript = walkScript(
    dir,
    'eureka',
    opts.instances,
    `"${BASE}/BENCH/b-" .. i .. "?status=UP&lastDirtyTimestamp=1700000000000"`,
  );
  const nativeScript = walkScript(
    dir,
    'native',
    opts.instances,
    `"/api/v1/instances/bench:b-" .. i .. "/heartbeat"`,
    JSON.stringify({ status: 'passing', output: RENEWAL_OUTPUT }),
  );
  const windows: [number, number][] = [];
  const peer = (name: string, script: string) =>
    loadPeer<WrkResult>({
      name,
      pid: agent.pid,
      load: () => runWrk(agent.url + '/', opts.connections, opts.duration, [], script),
      rps: (r) => r.rps,
      failure: (r) => (r.errors > 0 ? `${r.errors} errors or non-2xx` : undefined),
      ...(name === 'eureka' ? { windows } : {}),
    });
  for (const [name, script] of [
    ['native', nativeScript],
    ['eureka', eurekaScript],
  ] as const) {
    log(`warm-up ${name} ${opts.warmup}s`);
    const w = runWrk(agent.url + '/', opts.connections, opts.warmup, [], script);
    if (w.errors > 0) throw new Error(`${name} warm-up: ${w.errors} errors or non-2xx`);
  }
  const peers = [peer('native', nativeScript), peer('eureka', eurekaScript)];
  const results = await alternate(
    peers,
    opts.rounds,
    (name, round, r) =>
      log(
        `round ${round} ${name}: ${fmt(r.rps)} req/s, ${fmt((r.serverCores / r.rps) * 1e6)} µs CPU/req`,
      ),
    { order: 'mirrored' },
  );
  const cpuPerReq = (r: LoadRound<WrkResult>): number => (r.serverCores / r.rps) * 1e6;
  const rounds = (name: string): LoadRound<WrkResult>[] => results.get(name) ?? [];
  // Round-by-round ratios (each pair back to back), then their median: drift hits both.
  const pairRatios = rounds('eureka').map((e, k) => {
    const n = rounds('native')[k];
    return n === undefined ? NaN : cpuPerReq(e) / cpuPerReq(n);
  });
  const cpuRatio = median(pairRatios);

  // ---- (2) full fetch and delta ----------------------------------------------------------
  const more = Math.max(0, opts.registry - opts.instances);
  log(`registering ${more} more instances over ${opts.apps} apps`);
  await registerThroughEureka(agent.url, more, (i) => ({
    app: `APP-${i % opts.apps}`,
    id: `a-${i}`,
  }));
  const kinds: { name: string; path: string; accept: string }[] = [
    { name: 'full, JSON', path: `${BASE}/`, accept: 'application/json' },
    { name: 'full, XML', path: `${BASE}/`, accept: 'application/xml' },
  ];
  const fetched = new Map<string, Fetched[]>();
  const fetchRounds = async (name: string, path: string, accept: string): Promise<number> => {
    await fetchOnce(agent.url + path, accept); // warm-up
    const cpu = new CpuWindow(agent.pid);
    const all: Fetched[] = [];
    for (let k = 0; k < opts.fetches; k++) all.push(await fetchOnce(agent.url + path, accept));
    const { cores, wallSeconds } = cpu.read();
    fetched.set(name, all);
    return (cores * wallSeconds * 1e3) / opts.fetches;
  };
  const cpuMs = new Map<string, number>();
  for (const k of kinds) cpuMs.set(k.name, await fetchRounds(k.name, k.path, k.accept));
  const full = fetched.get('full, JSON')?.[0]?.body ?? '';
  const listed = (JSON.parse(full) as { applications: { application: { instance: unknown[] }[] } })
    .applications.application;
  const count = listed.reduce((a, app) => a + app.instance.length, 0);
  if (count !== opts.registry) throw new Error(`GET /apps lists ${count} instances`);

  log(`${opts.changes} status changes, then delta fetches`);
  const pool = agentPool(agent.url, 8);
  try {
    for (let c = 0; c < opts.changes; c++) {
      const res = await pool.request({
        path: `${BASE}/APP-${c % opts.apps}/a-${c}/status?value=OUT_OF_SERVICE`,
        method: 'PUT',
      });
      await res.body.dump();
      if (res.statusCode !== 200) throw new Error(`status change ${c}: HTTP ${res.statusCode}`);
    }
  } finally {
    await pool.close();
  }
  const deltaKinds = [
    { name: 'delta, JSON', path: `${BASE}/delta`, accept: 'application/json' },
    { name: 'delta, XML', path: `${BASE}/delta`, accept: 'application/xml' },
  ];
  for (const k of deltaKinds) cpuMs.set(k.name, await fetchRounds(k.name, k.path, k.accept));
  const { cpuProfile } = await agent.stop();

  const report = new Report('eureka', 'npm run bench:eureka');
  report.quiet(busy);
  report.meta(
    `renewals: ${opts.instances} instances of BENCH registered through Eureka; wrk -t1 -c${opts.connections} ${opts.duration}s per round, ${opts.rounds} rounds in mirrored order (native, eureka / eureka, native ...) after ${opts.warmup}s warm-up each; the Lua script walks the ids; the native heartbeat sends the same check output as a renewal, so neither path writes`,
  );
  report.section(
    'Renewals (closed loop)',
    table(
      ['path', 'req/s (median)', 'rounds', 'agent CPU µs/req (median)', 'p99 ms'],
      peers.map((p) => [
        p.name,
        fmt(median(rounds(p.name).map((r) => r.rps))),
        rounds(p.name)
          .map((r) => fmt(r.rps))
          .join(' / '),
        fmt(median(rounds(p.name).map(cpuPerReq))),
        fmt(median(rounds(p.name).map((r) => r.result.p99Ms))),
      ]),
    ),
  );
  report.text(
    `Eureka renewal CPU per request ÷ native heartbeat: **${cpuRatio.toFixed(3)}x** (median of round-by-round ratios ${pairRatios.map((r) => r.toFixed(2)).join(' / ')}; target at most 1.2x: ${cpuRatio <= 1.2 ? 'met' : 'NOT met'}).`,
  );
  report.meta(
    `fetches: ${opts.registry} instances over ${opts.apps + 1} apps; ${opts.fetches} sequential GETs per kind after one warm-up, undici, no compression on the wire (gzip size computed for reference); delta after ${opts.changes} status changes`,
  );
  report.section(
    'Registry fetches',
    table(
      ['fetch', 'bytes', 'gzip bytes', 'p50 ms', 'p99 ms', 'agent CPU ms/fetch'],
      [...kinds, ...deltaKinds].map((k) => {
        const all = fetched.get(k.name) ?? [];
        const lat = summarize(all.map((f) => f.ms));
        return [
          k.name,
          fmt(all[0]?.bytes ?? NaN),
          fmt(all[0]?.gzipBytes ?? NaN),
          fmt(lat.p50),
          fmt(lat.p99),
          fmt(cpuMs.get(k.name) ?? NaN),
        ];
      }),
    ),
  );
  if (cpuProfile !== undefined) {
    report.section(
      'Agent CPU profile, Eureka renewal rounds',
      profileTables(summarizeProfile(cpuProfile, 20, windows)),
    );
  }
  report.finish();
});
