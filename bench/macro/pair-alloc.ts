/**
 * @module bench:pair-alloc: the bytes a request allocates crossing an in-process sidecar pair
 * (the undici client, A's outbound, B's inbound and a node:http app, all in this process), for
 * each set of observer parts in `--configs`, and where the bytes of one of them come from. V8
 * counts no allocations, so the script runs with 256 MB semi-spaces (package.json) and reads
 * how much the young generation grew over a round too short to fill it: no collection runs
 * within a round, and a round whose young generation did not grow (one ran) is discarded. The
 * sites come from V8's sampling heap profiler over one such round, objects since freed included.
 * Allocation is what the sidecar's 1 MB young generation pays
 * for in scavenges (docs/benchmarks.md, "Sidecar memory"); CPU is measured elsewhere.
 * Usage: npm run bench:pair-alloc [-- --configs none|tracing] [-- --sites tracing]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { getHeapSpaceStatistics } from 'node:v8';
import { Pool } from 'undici';
import { requestObservers } from '../../src/proxy/observer-lists.js';
import { startUpstream } from '../../test/helpers/gateway.js';
import { flags } from '../lib/load.js';
import { startOtlpSink } from '../lib/otlp-sink.js';
import {
  driveRequests,
  parseObserverParts,
  sideParts,
  startInProcessPair,
} from '../lib/sidecar-pair.js';
import { median } from '../lib/stats.js';

const opts = flags('npm run bench:pair-alloc [-- flags]', {
  configs: {
    default: 'none|metrics|edges|tracing|access-log|metrics,edges,tracing,access-log',
    help: 'the pairs to measure, |-separated, each a comma list of metrics, edges, tracing, access-log (none: no observers); the first is the baseline',
  },
  sites: {
    default: 'none',
    help: 'the config (one of --configs) whose allocation sites are listed; "" lists none',
  },
  requests: { default: 3000, help: 'requests per round' },
  rounds: { default: 8, help: 'measured rounds per pair (after two warm-up rounds each)' },
  top: { default: 30, help: 'allocation sites listed (by call stack, innermost first)' },
});

const newSpace = (): { size: number; used: number } => {
  const s = getHeapSpaceStatistics().find((x) => x.space_name === 'new_space');
  return { size: s?.space_size ?? 0, used: s?.space_used_size ?? 0 };
};
if (newSpace().size < 128 * 1024 * 1024)
  throw new Error(
    'bench:pair-alloc needs a young generation that one round cannot fill: run it as `npm run bench:pair-alloc` (node --max-semi-space-size=256 --min-semi-space-size=256)',
  );
const collect = (): void => (globalThis as { gc?: () => void }).gc?.();

const configs = opts.configs.split('|').map((c) => c.trim());
const partsOf = (c: string): Set<string> => parseObserverParts(c, '--configs');
const app = await startUpstream('payments');
const dir = mkdtempSync(join(tmpdir(), 'meshwork-pair-alloc-'));
const otlp = configs.some((c) => partsOf(c).has('tracing')) ? await startOtlpSink() : undefined;

const pairs = [];
for (const config of configs) {
  const parts = partsOf(config);
  const b = await sideParts(`payments-${pairs.length}`, parts, dir, otlp?.url);
  const a = await sideParts(`orders-${pairs.length}`, parts, dir, otlp?.url);
  const pair = await startInProcessPair(app.port, {
    inbound: requestObservers('destination', b.parts),
    outbound: requestObservers('source', a.parts),
  });
  const pool = new Pool(pair.a.outboundUrl, { connections: 16 });
  pairs.push({ config, pair, pool, samples: [] as number[], close: [a.close, b.close] });
}

/** `opts.requests` GETs through the pair, 16 at a time. */
const round = (pool: Pool): Promise<void> => driveRequests(pool, opts.requests, 16, 'pair-alloc');

for (const p of pairs) for (let i = 0; i < 2; i++) await round(p.pool);
for (let i = 0; i < opts.rounds; i++)
  for (const p of pairs) {
    collect();
    const before = newSpace().used;
    await round(p.pool);
    const after = newSpace().used;
    if (after > before) p.samples.push((after - before) / opts.requests);
  }

const base = median(pairs[0]?.samples ?? []);
console.log(
  `\npair-alloc: ${new Date().toISOString()}, nproc ${cpus().length}, Node ${process.version}; bytes allocated per request (client, A, B, app), median of ${opts.rounds} rounds of ${opts.requests}`,
);
console.log('| parts | bytes per request | over the first | rounds kept | rounds |');
console.log('| --- | ---: | ---: | ---: | --- |');
for (const p of pairs) {
  const m = median(p.samples);
  const rounds = p.samples.map((x) => x.toFixed(0)).join(' / ');
  console.log(
    `| ${p.config} | ${m.toFixed(0)} | ${p === pairs[0] ? '' : `+${(m - base).toFixed(0)}`} | ${p.samples.length} | ${rounds} |`,
  );
}

const profiled = pairs.find((p) => p.config === opts.sites);
if (profiled !== undefined) {
  type ProfileNode = {
    callFrame: { functionName: string; url: string; lineNumber: number };
    selfSize: number;
    children: ProfileNode[];
  };
  const session = new Session();
  session.connect();
  collect();
  // Every sample, whatever became of its object: V8 would drop the samples of objects a
  // collection freed (the round is meant to run none, but the counts must not depend on it).
  const sampling = {
    samplingInterval: 256,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  };
  await session.post('HeapProfiler.startSampling', sampling);
  await round(profiled.pool);
  const { profile } = await session.post('HeapProfiler.stopSampling');
  session.disconnect();
  const name = (n: ProfileNode): string => {
    const f = n.callFrame;
    const where = f.url.replace(/^.*\/(node_modules|src|test|bench)\//, '$1/');
    return `${f.functionName || '(anonymous)'} ${where}${where === '' ? '' : `:${f.lineNumber + 1}`}`;
  };
  const bySite = new Map<string, number>();
  let total = 0;
  const walk = (n: ProfileNode, callers: string[]): void => {
    total += n.selfSize;
    const site = [name(n), ...callers.slice(0, 3)].join(' ← ');
    if (n.selfSize > 0) bySite.set(site, (bySite.get(site) ?? 0) + n.selfSize);
    for (const c of n.children) walk(c, [name(n), ...callers]);
  };
  walk(profile.head as unknown as ProfileNode, []);
  console.log(
    `\nwhere "${profiled.config}" allocates: ${(total / opts.requests).toFixed(0)} bytes per request sampled (every 256 bytes on average); the top ${opts.top} sites, innermost frame first, with three callers`,
  );
  for (const [site, bytes] of [...bySite].sort((x, y) => y[1] - x[1]).slice(0, opts.top))
    console.log(`${(bytes / opts.requests).toFixed(0).padStart(6)}  ${site}`);
}

for (const p of pairs) {
  await p.pool.close();
  await p.pair.close();
  for (const close of p.close) await close();
}
await app.close();
await otlp?.child.stop(3_000);
rmSync(dir, { recursive: true, force: true });
