/**
 * @module bench:observability-ab: what each part of issue 21's observability costs a request
 * crossing two sidecar data paths, measured in one process (so two pairs share one core's state
 * and the round-to-round swings of bench:sidecar's separate processes mostly cancel). One process
 * holds the client (undici, 16 connections), two sidecar pairs (A's outbound -> B's inbound, A
 * routing on a compiled snapshot) and the upstream. The "on" pair has the parts named by
 * `--parts`, made as `meshwork sidecar` makes them (requestObservers: Istio metrics, the access
 * log to a file at the default sample 0.1, tracing at the default ratio 0.01 exported over
 * OTLP/HTTP to a receiver in a child process, edge counts); the "off" pair has none. Rounds are
 * short and alternate which pair goes first; each on round's CPU per request is divided by the
 * off round's next to it, and the median of those ratios is the figure (with both medians). The sum
 * includes the client and the upstream, so the ratio understates the sidecars' share: the
 * difference in µs is the figure. V8's young generation is bounded as `meshwork sidecar` bounds
 * it (unless NODE_OPTIONS sets a semi-space size).
 * Usage: npm run bench:observability-ab [-- --parts metrics,edges,tracing,access-log] [-- --rounds N]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { requestObservers } from '../../src/proxy/observer-lists.js';
import { boundYoungGeneration } from '../../src/sidecar/young-generation.js';
import { startUpstream } from '../../test/helpers/gateway.js';
import { flags } from '../lib/load.js';
import {
  driveRequests,
  parseObserverParts,
  sideParts,
  startInProcessPair,
  type InProcessPair,
} from '../lib/sidecar-pair.js';
import { startOtlpSink } from '../lib/otlp-sink.js';
import { median } from '../lib/stats.js';

const opts = flags('npm run bench:observability-ab [-- flags]', {
  parts: {
    default: 'metrics,edges,tracing,access-log',
    help: 'what the "on" pair turns on: a comma list of metrics, edges, tracing, access-log',
  },
  requests: {
    default: 3000,
    help: 'requests per round (short rounds: the speed of this VM drifts over seconds, so each on round is compared with the off round next to it)',
  },
  rounds: { default: 40, help: 'rounds per pair (alternating which goes first)' },
  connections: { default: 16, help: 'client connections per pair' },
});
const parts = parseObserverParts(opts.parts, '--parts');

const bounded = boundYoungGeneration(process.env, process.execArgv);

interface Pair {
  readonly pair: InProcessPair;
  readonly pool: Pool;
  readonly closeParts: () => Promise<void>;
}

const app = await startUpstream('payments');
const dir = mkdtempSync(join(tmpdir(), 'meshwork-obs-ab-'));
const otlp = parts.has('tracing') ? await startOtlpSink() : undefined;

async function startPair(on: boolean): Promise<Pair> {
  const bParts = await sideParts('payments', on ? parts : new Set(), dir, otlp?.url);
  const aParts = await sideParts('orders', on ? parts : new Set(), dir, otlp?.url);
  const pair = await startInProcessPair(app.port, {
    inbound: requestObservers('destination', bParts.parts),
    outbound: requestObservers('source', aParts.parts),
  });
  return {
    pair,
    pool: new Pool(pair.a.outboundUrl, { connections: opts.connections }),
    closeParts: async () => {
      await Promise.all([aParts.close(), bParts.close()]);
    },
  };
}

/** µs of this process's CPU per request over one round. */
async function round(p: Pair): Promise<number> {
  const c0 = process.cpuUsage();
  await driveRequests(p.pool, opts.requests, opts.connections, 'observability-ab');
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / opts.requests;
}

const on = await startPair(true);
const off = await startPair(false);
for (let i = 0; i < 2; i++) {
  await round(on); // warm-up
  await round(off);
}
const loadBefore = loadavg()[0] ?? 0;
const results = { on: [] as number[], off: [] as number[] };
for (let i = 0; i < opts.rounds; i++) {
  const order = i % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const);
  for (const k of order) results[k].push(await round(k === 'on' ? on : off));
}
console.log(
  `\nobservability-ab: ${new Date().toISOString()}, nproc ${cpus().length}, ${cpus()[0]?.model ?? '?'}, Node ${process.version}, load average ${loadBefore.toFixed(2)} before, ${(loadavg()[0] ?? 0).toFixed(2)} after; on: ${[...parts].join(',') || '(nothing)'}; young generation ${bounded ? 'bounded (1 MB semi-spaces)' : 'as NODE_OPTIONS sets it'}; ${opts.rounds} rounds of ${opts.requests} requests, ${opts.connections} connections`,
);
const show = (v: number[]): string => v.map((x) => x.toFixed(1)).join(', ');
console.log(`µs CPU per request (client, 2 sidecars, upstream), on:  ${show(results.on)}`);
console.log(`µs CPU per request (client, 2 sidecars, upstream), off: ${show(results.off)}`);
const ratios = results.on.map((x, i) => x / (results.off[i] ?? x));
const mOn = median(results.on);
const mOff = median(results.off);
console.log(
  `median on ${mOn.toFixed(1)} µs, off ${mOff.toFixed(1)} µs: +${(mOn - mOff).toFixed(1)} µs per request (${(((mOn - mOff) / mOff) * 100).toFixed(1)}%); round-by-round ratio median ${median(ratios).toFixed(3)}x`,
);
for (const p of [on, off]) {
  await p.pool.close();
  await p.pair.close();
  await p.closeParts();
}
await app.close();
await otlp?.child.stop(3_000);
rmSync(dir, { recursive: true, force: true });
