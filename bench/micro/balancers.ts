/**
 * @module Micro benchmark of the balancers: pick() at 10, 100 and 1,000 endpoints per kind, and
 * update() (table or ring rebuild) separately; heap bytes per pick beside. Setup stays outside
 * timing and every result is kept live (mitata's do_not_optimize).
 * Usage: npm run bench:balancers [-- --quick] [-- --rounds N]
 */
import { cpus, loadavg } from 'node:os';
import { getHeapStatistics } from 'node:v8';
import { do_not_optimize, measure } from 'mitata';
import type { Balancer, BalancerSpec, Endpoint, PickContext } from '../../src/client/index.js';
import { createBalancer } from '../../src/client/index.js';
import { flags } from '../lib/load.js';

const opts = flags('npm run bench:balancers [-- --quick] [-- --rounds N]', {
  quick: { default: false, help: 'shorter samples, noisier numbers' },
  rounds: { default: 3, help: 'measure every cell N times and report the median' },
});

const SIZES = [10, 100, 1_000] as const;
const KEYS = 1_024;
const SPECS: readonly (readonly [string, BalancerSpec])[] = [
  ['round-robin', 'round-robin'],
  ['weighted-round-robin', 'weighted-round-robin'],
  ['random', 'random'],
  ['least-request', 'least-request'],
  ['ring-hash', 'ring-hash'],
  ['maglev', 'maglev'],
  ['zone-aware (weighted-round-robin)', { type: 'zone-aware', localZone: 'z0' }],
];
const MIN_CPU_TIME_NS = opts.quick ? 100e6 : 500e6;
const ROUNDS = Math.max(1, Math.trunc(opts.rounds) || 1);

/** The median over ROUNDS runs of `measureOnce` (mean ns per call each). */
async function median(measureOnce: () => Promise<number>): Promise<number> {
  const values: number[] = [];
  for (let r = 0; r < ROUNDS; r++) values.push(await measureOnce());
  values.sort((a, b) => a - b);
  return values[(values.length - 1) >> 1]!;
}

/** n endpoints, weights 1..10, spread over three zones, one priority. */
function endpoints(n: number): Endpoint[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `web-${String(i).padStart(4, '0')}`,
    address: `10.0.${i >> 8}.${i & 255}`,
    port: 8080,
    weight: 1 + (i % 10),
    status: 'passing' as const,
    zone: `z${i % 3}`,
    priority: 0,
    tags: [],
    meta: {},
  }));
}

/** One context per key, made before timing: the hot loop allocates nothing of its own. */
const CONTEXTS: readonly PickContext[] = Array.from({ length: KEYS }, (_, i) => ({
  hashKey: `session-${i}`,
}));

function ready(spec: BalancerSpec, n: number): Balancer {
  const balancer = createBalancer(spec);
  balancer.update(endpoints(n));
  return balancer;
}

async function timePick(spec: BalancerSpec, n: number, perRequest: boolean): Promise<number> {
  const stats = await measure(
    function* () {
      const balancer = ready(spec, n);
      let i = 0;
      if (perRequest) {
        yield () => {
          const e = balancer.pick(CONTEXTS[i++ & (KEYS - 1)])!;
          balancer.started(e.id);
          balancer.finished(e.id);
          return do_not_optimize(e);
        };
      } else yield () => do_not_optimize(balancer.pick(CONTEXTS[i++ & (KEYS - 1)]));
    },
    { min_cpu_time: MIN_CPU_TIME_NS },
  );
  return stats.avg;
}

async function timeUpdate(spec: BalancerSpec, n: number): Promise<number> {
  const stats = await measure(
    function* () {
      const balancer = createBalancer(spec);
      const sets = [endpoints(n), endpoints(n).slice(1)];
      let i = 0;
      yield () => do_not_optimize(balancer.update(sets[i++ & 1]!));
    },
    { min_cpu_time: MIN_CPU_TIME_NS },
  );
  return stats.avg;
}

/** Heap growth over 200,000 picks, per pick (needs --expose-gc and a young generation large enough not to be collected meanwhile). */
function heapBytesPerPick(spec: BalancerSpec, n: number): number {
  const balancer = ready(spec, n);
  for (let i = 0; i < 10_000; i++) do_not_optimize(balancer.pick(CONTEXTS[i & (KEYS - 1)]));
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) return NaN;
  gc();
  const before = getHeapStatistics().used_heap_size;
  const picks = 200_000;
  for (let i = 0; i < picks; i++) do_not_optimize(balancer.pick(CONTEXTS[i & (KEYS - 1)]));
  return Math.max(0, (getHeapStatistics().used_heap_size - before) / picks);
}

const fmt = (ns: number): string =>
  ns >= 1e6
    ? `${(ns / 1e6).toFixed(2)} ms`
    : ns >= 1e3
      ? `${(ns / 1e3).toFixed(2)} µs`
      : `${ns.toFixed(0)} ns`;

const started = new Date();
const loadBefore = loadavg()[0]!;
const rows: string[] = [];
for (const [name, spec] of SPECS) {
  const picks = [];
  const updates = [];
  const heap = [];
  for (const n of SIZES) {
    picks.push(fmt(await median(() => timePick(spec, n, false))));
    updates.push(fmt(await median(() => timeUpdate(spec, n))));
    heap.push(heapBytesPerPick(spec, n).toFixed(1));
  }
  rows.push(`| ${name} | ${picks.join(' | ')} | ${updates.join(' | ')} | ${heap.join(' / ')} |`);
  if (name === 'least-request') {
    const perRequest = [];
    for (const n of SIZES) perRequest.push(fmt(await median(() => timePick(spec, n, true))));
    rows.push(`| least-request, pick + started + finished | ${perRequest.join(' | ')} | | | | |`);
  }
}

console.log(
  `\nbalancers: ${started.toISOString()}, nproc ${cpus().length}, ${cpus()[0]?.model ?? '?'}, Node ${process.version}, load average ${loadBefore.toFixed(2)} before, ${loadavg()[0]!.toFixed(2)} after`,
);
console.log(
  `mean time per call, median of ${ROUNDS} rounds; hash balancers pick with a hash key (1,024 keys in turn)\n`,
);
console.log(
  '| balancer | pick 10 | pick 100 | pick 1,000 | update 10 | update 100 | update 1,000 | heap B/pick 10 / 100 / 1,000 |',
);
console.log('| --- | --: | --: | --: | --: | --: | --: | --: |');
for (const row of rows) console.log(row);
