/**
 * @module bench:client-fetch: what the SDK costs a caller. The same upstream (a plain node:http
 * server in its own process, one small body), the same concurrency and the same undici Agent
 * settings; A: undici `request()` straight to the upstream's address; B: `client.fetch('http://
 * upstream/')` through discovery (watched cache), the balancer, the retry policy (per request:
 * state, budget, attempt headers) and outlier detection; C: undici `request()` with
 * `dispatcher: client.dispatcher` (the same path without the WHATWG Response). Rounds alternate.
 */
import { fileURLToPath } from 'node:url';
import { Agent, fetch as undiciFetch, request } from 'undici';
// The built SDK, as a service would load it (not the TypeScript sources through tsx).
import { createMeshworkClient } from '../../dist/client/index.js';
import { startAgent } from '../lib/agent.js';
import { runMain } from '../lib/cleanup.js';
import { alternate, closedLoop, flags, type ClosedLoopResult, type Peer } from '../lib/load.js';
import { CpuWindow, forkWorker, request as ask } from '../lib/proc.js';
import { fmt, log, ratio, Report, settle, table } from '../lib/report.js';
import { median, percentile } from '../lib/stats.js';

const opts = flags('npm run bench:client-fetch -- [flags]', {
  requests: { default: 40_000, help: 'timed requests per round and peer' },
  warmup: { default: 5_000, help: 'untimed requests before each timed run' },
  concurrency: { default: 32, help: 'requests in flight' },
  rounds: { default: 3, help: 'A B C rounds' },
  peers: {
    default: 'all',
    help: 'comma-separated peer numbers to run (1-4), e.g. 3 to profile one',
  },
  'quiet-wait': { default: 300, help: 'seconds to wait for other work on the machine to settle' },
});

const WORKER = fileURLToPath(new URL('../lib/workers/static-json-server.ts', import.meta.url));
const BODY = JSON.stringify({ ok: true, charged: 12 });

interface Round {
  readonly load: ClosedLoopResult;
  /** This driver process's CPU (the caller's cost), in cores. */
  readonly driverCores: number;
}

async function measure(op: (i: number) => Promise<boolean>): Promise<Round> {
  const warm = await closedLoop(opts.warmup, opts.concurrency, op);
  if (warm.errors > 0) throw new Error(`warm-up failed: ${warm.firstError}`);
  const cpu = new CpuWindow(process.pid);
  const load = await closedLoop(opts.requests, opts.concurrency, op);
  const driverCores = cpu.read().cores;
  if (load.errors > 0) throw new Error(`${load.errors} requests failed: ${load.firstError}`);
  return { load, driverCores };
}

runMain(async () => {
  const busy = await settle(opts['quiet-wait']);
  const agent = await startAgent({ dev: true });
  const upstream = forkWorker('upstream', WORKER);
  const { port } = await ask<{ port: number }>(
    upstream,
    { type: 'serve', body: BODY, headers: { 'content-type': 'application/json' } },
    'listening',
  );
  const client = createMeshworkClient({
    registry: agent.url,
    agent: { connections: opts.concurrency },
  });
  const plain = new Agent({ keepAliveTimeout: 30_000, connections: opts.concurrency });
  try {
    await client.registry.register({ service: 'upstream', address: '127.0.0.1', port });
    await client.discover('upstream', { status: ['passing', 'warning', 'critical', 'starting'] });
    const direct = `http://127.0.0.1:${port}/charge`;
    const peers: Peer<Round>[] = [
      {
        name: 'undici request (direct)',
        run: () =>
          measure(async () => {
            const res = await request(direct, { dispatcher: plain });
            await res.body.text();
            return res.statusCode === 200;
          }),
      },
      {
        name: 'undici fetch (direct)',
        run: () =>
          measure(async () => {
            const res = await undiciFetch(direct, { dispatcher: plain });
            await res.text();
            return res.status === 200;
          }),
      },
      {
        name: 'client.fetch (by name)',
        run: () =>
          measure(async () => {
            const res = await client.fetch('http://upstream/charge');
            await res.text();
            return res.status === 200;
          }),
      },
      {
        name: 'undici request + client.dispatcher',
        run: () =>
          measure(async () => {
            const res = await request('http://upstream/charge', {
              dispatcher: client.dispatcher,
            });
            await res.body.text();
            return res.statusCode === 200;
          }),
      },
    ];
    if (opts.peers !== 'all') {
      const keep = new Set(opts.peers.split(',').map(Number));
      peers.splice(0, peers.length, ...peers.filter((_, i) => keep.has(i + 1)));
    }
    const rate = (r: Round): number => r.load.ops / (r.load.elapsedMs / 1000);
    const results = await alternate(peers, opts.rounds, (peer, round, r) =>
      log(`round ${round} ${peer}: ${fmt(rate(r))} req/s, driver ${fmt(r.driverCores)} cores`),
    );
    const base = median((results.get(peers[0]!.name) ?? []).map(rate));
    const report = new Report('client-fetch', `npm run bench:client-fetch`);
    report.quiet(busy);
    report.meta(
      `${opts.requests} requests per round and peer after ${opts.warmup} warm-up, ${opts.concurrency} in flight (closed loop), ${opts.rounds} rounds; upstream: node:http in its own process answering ${BODY.length} B of JSON; both pools: undici Agent, ${opts.concurrency} connections, keep-alive`,
    );
    report.section(
      'Requests per second to one upstream (median of rounds)',
      table(
        ['peer', 'req/s', 'rounds (req/s)', '÷ direct', 'p50 ms', 'p99 ms', 'driver CPU (cores)'],
        peers.map((p) => {
          const rs = results.get(p.name) ?? [];
          const rates = rs.map(rate);
          return [
            p.name,
            fmt(median(rates)),
            rates.map((x) => fmt(x)).join(' / '),
            ratio(median(rates), base),
            fmt(median(rs.map((r) => percentile(r.load.latenciesMs, 50)))),
            fmt(median(rs.map((r) => percentile(r.load.latenciesMs, 99)))),
            fmt(median(rs.map((r) => r.driverCores))),
          ];
        }),
      ),
    );
    const rateOf = (name: string): number => median((results.get(name) ?? []).map(rate));
    const viaFetch = rateOf('client.fetch (by name)') / base;
    const viaDispatcher = rateOf('undici request + client.dispatcher') / base;
    const overFetch = rateOf('client.fetch (by name)') / rateOf('undici fetch (direct)');
    report.text(
      [
        `Target client.fetch ≥ 0.9x undici request direct: ${viaFetch >= 0.9 ? 'met' : 'NOT met'} (${viaFetch.toFixed(2)}x).`,
        `The mesh path without WHATWG Response (request + client.dispatcher): ${viaDispatcher.toFixed(2)}x; client.fetch ÷ undici fetch direct: ${overFetch.toFixed(2)}x.`,
      ].join('\n'),
    );
    report.finish();
  } finally {
    await client.close();
    await plain.close();
    await upstream.stop();
    await agent.stop();
  }
});
