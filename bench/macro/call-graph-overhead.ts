/**
 * @module bench:call-graph-overhead: what the call graph's counting costs a request crossing two
 * sidecars (issue 21's bar: all observability on costs at most 15% CPU per request). One process
 * holds the client (undici, 8 connections), two sidecar data paths (A's outbound -> B's inbound,
 * A routing on a compiled snapshot) and the upstream; two such pairs run, one with the edge
 * observers (A's outbound: source, B's inbound: destination; request records made for them) and
 * one without, in alternating rounds; the process's CPU time per request is compared (medians).
 * The sum includes the client and the upstream, so the ratio understates the sidecars' share;
 * the difference in µs is what counting costs two sidecars.
 * Usage: npm run bench:call-graph-overhead [-- --requests N] [-- --rounds N]
 */
import { cpus, loadavg } from 'node:os';
import { Pool } from 'undici';
import {
  destinationEdgeObserver,
  EdgeCounter,
  sourceEdgeObserver,
} from '../../src/proxy/edge-counts.js';
import type { RunningSidecarProxy } from '../../src/sidecar/sidecar-proxy.js';
import { startUpstream } from '../../test/helpers/gateway.js';
import { flags } from '../lib/load.js';
import { startInProcessPair } from '../lib/sidecar-pair.js';

const opts = flags('npm run bench:call-graph-overhead [-- --requests N] [-- --rounds N]', {
  requests: { default: 4000, help: 'requests per round' },
  rounds: { default: 6, help: 'rounds per pair (alternating which goes first)' },
});
const CONNECTIONS = 8;

interface Pair {
  readonly a: RunningSidecarProxy;
  readonly b: RunningSidecarProxy;
  readonly pool: Pool;
}

const app = await startUpstream('payments');

async function startPair(counting: boolean): Promise<Pair> {
  const { a, b } = await startInProcessPair(
    app.port,
    counting
      ? {
          inbound: [destinationEdgeObserver(new EdgeCounter(), 'payments')],
          outbound: [sourceEdgeObserver(new EdgeCounter(), 'orders')],
        }
      : {},
  );
  return { a, b, pool: new Pool(a.outboundUrl, { connections: CONNECTIONS }) };
}

/** µs of this process's CPU per request over one round. */
async function round(p: Pair): Promise<number> {
  let next = 0;
  const c0 = process.cpuUsage();
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (next++ < opts.requests) {
        const r = await p.pool.request({
          path: '/x',
          method: 'GET',
          headers: { host: 'payments' },
        });
        await r.body.dump();
      }
    }),
  );
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / opts.requests;
}

const median = (v: readonly number[]): number => [...v].sort((x, y) => x - y)[v.length >> 1]!;

const on = await startPair(true);
const off = await startPair(false);
await round(on); // warm-up
await round(off);
const loadBefore = loadavg()[0]!;
const results = { on: [] as number[], off: [] as number[] };
for (let i = 0; i < opts.rounds; i++) {
  const order = i % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const);
  for (const k of order) results[k].push(await round(k === 'on' ? on : off));
}
console.log(
  `\ncall-graph-overhead: ${new Date().toISOString()}, nproc ${cpus().length}, ${cpus()[0]?.model ?? '?'}, Node ${process.version}, load average ${loadBefore.toFixed(2)} before, ${loadavg()[0]!.toFixed(2)} after`,
);
const show = (v: number[]): string => v.map((x) => x.toFixed(1)).join(', ');
console.log(`µs CPU per request, counting on:  ${show(results.on)}`);
console.log(`µs CPU per request, counting off: ${show(results.off)}`);
const mOn = median(results.on);
const mOff = median(results.off);
console.log(
  `median on ${mOn.toFixed(1)} µs, off ${mOff.toFixed(1)} µs: ${(mOn - mOff).toFixed(1)} µs (${(((mOn - mOff) / mOff) * 100).toFixed(1)}%)`,
);
for (const p of [on, off]) {
  await p.pool.close();
  await Promise.all([p.a.close(), p.b.close()]);
}
await app.close();
