/**
 * @module bench:eureka: the Eureka adapter's cost (issue 23). (1) Eureka renewals
 * (`PUT /eureka/v2/apps/{app}/{id}`) against native heartbeats
 * (`PUT /api/v1/instances/{id}/heartbeat`) on the same agent, wrk, A B A B: the agent's CPU per
 * request (the bar: at most 1.2x). (2) The full-registry fetch with 10,000 instances (JSON and
 * XML, as they are and gzipped: latency and bytes on the wire), rendered afresh (a change before
 * each fetch) and from the response cache (no change in between), against the delta after 100
 * changes.
 *
 * Run: `npm run bench:eureka` (`-- --parts fetches` for one part).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { startAgent, type AgentHandle } from '../lib/agent.js';
import { makeTempDir, runMain } from '../lib/cleanup.js';
import { alternate, flags, sleep } from '../lib/load.js';
import { loadPeer, type LoadRound } from '../lib/load-peer.js';
import { registerMany, registration } from '../lib/registry-load.js';
import { fmt, log, ratio, Report, settle, table } from '../lib/report.js';
import { ensureWrk, runWrk, type WrkResult } from '../lib/wrk.js';
import { median } from '../lib/stats.js';

const opts = flags('node --import tsx bench/macro/eureka.ts [flags]', {
  connections: { default: 32, help: 'wrk connections' },
  duration: { default: 5, help: 'seconds per renewal round' },
  rounds: { default: 3, help: 'A B rounds' },
  instances: { default: 10_000, help: 'instances in the catalog for the fetch part' },
  fetches: { default: 20, help: 'timed fetches per kind' },
  changes: { default: 100, help: 'changes before the delta fetch' },
  parts: { default: 'renewals,fetches', help: 'which parts to run (comma-separated)' },
  'quiet-wait': { default: 60, help: 'seconds to wait for other work on the machine to settle' },
});

async function put(url: string, body?: string, type = 'application/json'): Promise<number> {
  const res = await request(url, {
    method: url.includes('/eureka/') && body !== undefined ? 'POST' : 'PUT',
    ...(body === undefined ? {} : { body, headers: { 'content-type': type } }),
  });
  await res.body.dump();
  return res.statusCode;
}

async function fetchStats(
  url: string,
  accept: string,
  before?: (n: number) => Promise<void>,
  gzip = false,
): Promise<{ medianMs: number; bytes: number }> {
  const times: number[] = [];
  let bytes = 0;
  for (let n = 0; n < opts.fetches; n++) {
    // A change first (untimed), so the answer is rendered afresh rather than from the cache.
    await before?.(n);
    const t0 = performance.now();
    // undici's request does not decompress: the bytes are those on the wire.
    const res = await request(url, {
      headers: { accept, ...(gzip ? { 'accept-encoding': 'gzip' } : {}) },
    });
    const buf = Buffer.from(await res.body.arrayBuffer());
    times.push(performance.now() - t0);
    if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode}`);
    if (gzip && res.headers['content-encoding'] !== 'gzip') throw new Error(`${url}: not gzipped`);
    // The first answer's size: a delta empties as its window passes.
    if (n === 0) bytes = buf.length;
  }
  return { medianMs: median(times), bytes };
}

async function renewals(agent: AgentHandle, report: Report): Promise<void> {
  const dir = await makeTempDir('eureka-bench');
  const script = join(dir, 'put.lua');
  writeFileSync(script, 'wrk.method = "PUT"\n');
  const native = registration('native', 'native-1', 1);
  if ((await put(`${agent.url}/api/v1/instances`, JSON.stringify(native))) !== 200)
    throw new Error('native registration failed');
  const body = JSON.stringify({
    instance: {
      instanceId: 'e1',
      app: 'RENEW',
      hostName: 'h1',
      ipAddr: '127.0.0.2',
      status: 'UP',
      port: { $: 8080, '@enabled': 'true' },
      dataCenterInfo: {
        '@class': 'com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo',
        name: 'MyOwn',
      },
      leaseInfo: { renewalIntervalInSecs: 30, durationInSecs: 90 },
    },
  });
  if ((await put(`${agent.url}/eureka/v2/apps/RENEW`, body)) !== 204)
    throw new Error('Eureka registration failed');
  const peer = (name: string, url: string) =>
    loadPeer<WrkResult>({
      name,
      pid: agent.pid,
      load: () => runWrk(url, opts.connections, opts.duration, [], script),
      rps: (r) => r.rps,
      failure: (r) => (r.errors > 0 ? `${r.errors} non-2xx` : undefined),
    });
  const peers = [
    peer('native heartbeat', `${agent.url}/api/v1/instances/native-1/heartbeat`),
    peer('eureka renewal', `${agent.url}/eureka/v2/apps/RENEW/e1`),
  ];
  const results = await alternate(peers, opts.rounds, (name, round, r) =>
    log(`${name} round ${round}: ${fmt(r.rps)} req/s, ${fmt(r.serverCores, 2)} cores`),
  );
  const perRequestUs = (rs: readonly LoadRound<WrkResult>[]): number =>
    median(rs.map((r) => (r.serverCores * 1e6) / r.rps));
  const rows = [...results].map(([name, rs]) => [
    name,
    fmt(median(rs.map((r) => r.rps))),
    fmt(perRequestUs(rs), 1),
    fmt(median(rs.map((r) => r.result.p99Ms)), 2),
  ]);
  const nativeUs = perRequestUs(results.get('native heartbeat') ?? []);
  const eurekaUs = perRequestUs(results.get('eureka renewal') ?? []);
  report.section(
    'Renewals against native heartbeats (one instance each, A B A B)',
    `${table(['path', 'req/s', 'agent CPU µs/request', 'p99 ms'], rows)}\n\nEureka renewal / native heartbeat, CPU per request: ${ratio(eurekaUs, nativeUs)} (bar: at most 1.2x)`,
  );
}

async function fetches(agent: AgentHandle, report: Report): Promise<void> {
  log(`registering ${opts.instances} instances`);
  await registerMany(agent.url, opts.instances, (i) =>
    // No TTL check: lapsing ones would put status changes into the delta window measured below.
    registration(`svc-${i % 100}`, `svc-${i % 100}-${i}`, i, []),
  );
  const full = `${agent.url}/eureka/v2/apps/`;
  const delta = `${agent.url}/eureka/v2/apps/delta`;
  const rows: unknown[][] = [];
  let bumps = 0;
  const bump = async (): Promise<void> => {
    const n = bumps++;
    const status = await put(
      `${agent.url}/api/v1/instances`,
      JSON.stringify(registration('bump', `bump-${n}`, n + 1, [])),
    );
    if (status !== 200) throw new Error(`change ${n}: HTTP ${status}`);
  };
  for (const accept of ['application/json', 'application/xml']) {
    for (const gzip of [false, true]) {
      const as = gzip ? `${accept}, gzip` : accept;
      const f = await fetchStats(full, accept, bump, gzip);
      rows.push([`full, rendered afresh, ${as}`, fmt(f.medianMs, 1), fmt(f.bytes)]);
      const c = await fetchStats(full, accept, undefined, gzip);
      rows.push([`full, from the response cache, ${as}`, fmt(c.medianMs, 1), fmt(c.bytes)]);
    }
  }
  // The registrations above leave the delta window (the agent runs with a short retention), so
  // the delta holds the changes below only, as a client polling every 30 s sees them.
  await sleep(DELTA_RETENTION_MS + 1000);
  for (let n = 0; n < opts.changes; n++) {
    await put(
      `${agent.url}/api/v1/instances`,
      JSON.stringify(registration('changed', `changed-${n}`, n, [])),
    );
  }
  for (const accept of ['application/json', 'application/xml']) {
    for (const gzip of [false, true]) {
      const d = await fetchStats(delta, accept, bump, gzip);
      rows.push([
        `delta (${opts.changes} changes in the window, and one more before each fetch), ${gzip ? `${accept}, gzip` : accept}`,
        fmt(d.medianMs, 1),
        fmt(d.bytes),
      ]);
    }
  }
  report.section(
    `Registry fetch with ${opts.instances} instances`,
    table(['fetch', 'median ms', 'bytes'], rows),
  );
}

/** The agent's delta retention here: short, so the bulk registration leaves the window. */
const DELTA_RETENTION_MS = 5_000;

runMain(async () => {
  ensureWrk();
  process.env.MESHWORK_EUREKA__DELTA_RETENTION_MS = String(DELTA_RETENTION_MS);
  const report = new Report('eureka', 'node --import tsx bench/macro/eureka.ts');
  report.quiet(await settle(opts['quiet-wait']));
  const agent = await startAgent({ dev: true });
  try {
    const parts = String(opts.parts).split(',');
    if (parts.includes('renewals')) await renewals(agent, report);
    if (parts.includes('fetches')) await fetches(agent, report);
  } finally {
    await agent.stop();
  }
  report.finish();
});
