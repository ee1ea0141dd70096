/**
 * @module Micro benchmark of the proxies' tracing (issue 21): the TraceObserver's start + end per
 * request, for a request with no trace context at the sidecar's default ratio (0.01, unsampled),
 * a caller's unsampled traceparent (passed untouched), a caller's sampled traceparent (a span:
 * ids, headers, attributes, the OpenTelemetry SDK's span and its batch processor), and the
 * default ratio with real randomness (1 in 100 sampled); plus the engine's request record with a
 * no-op observer (what any observer costs), and the export itself: CPU time per sampled span to
 * serialize and send the batches (OTLP/HTTP JSON) to a local receiver. Setup stays outside
 * timing; results are kept live. Usage: npm run bench:tracing [-- --quick]
 */
import { createServer } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { silentLogger } from '../../src/core/logger.js';
import type { FilterExchange } from '../../src/proxy/filter.js';
import type { RequestObserver } from '../../src/proxy/observe.js';
import { ObservedRequest, type ObservedExchange } from '../../src/proxy/observed-request.js';
import { TraceObserver } from '../../src/proxy/tracing/trace-observer.js';
import { startOtlpTracing, type SpanSink } from '../../src/telemetry/tracing.js';
import { flags } from '../lib/load.js';

const opts = flags('npm run bench:tracing [-- --quick]', {
  quick: { default: false, help: 'shorter samples, noisier numbers' },
});
const N = opts.quick ? 20_000 : 100_000;
const ROUNDS = 5;

// A local OTLP receiver that reads and drops what it gets: the export runs for real.
let received = 0;
const receiver = createServer((req, res) => {
  req.on('data', (c: Buffer) => (received += c.length));
  req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
});
await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
const endpoint = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/v1/traces`;
const exporter = await startOtlpTracing({
  endpoint,
  serviceName: 'bench',
  version: '0',
  logger: silentLogger,
});

const TRACEPARENT_SAMPLED = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const TRACEPARENT_UNSAMPLED = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00';
const socket = { remoteAddress: '127.0.0.1', localAddress: '127.0.0.1', localPort: 15001 };

/** An exchange made once per case; header edits land in an object, as the Exchange keeps them. */
function exchange(extra: Record<string, string>): () => FilterExchange {
  const headers = { host: 'payments', 'user-agent': 'bench', accept: '*/*', ...extra };
  let edits: Record<string, string | undefined> = {};
  const x: FilterExchange = {
    method: 'GET',
    path: '/pay?x=1',
    headers,
    authority: 'payments',
    socket,
    setRequestHeader: (n, v) => (edits[n] = v),
    addRequestHeader: (n, v) => (edits[n] = v),
    removeRequestHeader: (n) => (edits[n] = undefined),
  };
  return () => {
    edits = {};
    return x;
  };
}

/** One request's observation, as the Exchange makes it: record, start, end. */
function request(observers: readonly RequestObserver[], make: () => FilterExchange): unknown {
  const x = make();
  const o = new ObservedRequest(observers, x.path);
  o.service = 'payments';
  o.cluster = 'payments';
  o.started(x, 'default');
  o.attempts = 1;
  o.responded(200);
  o.responseBytes = 8;
  o.ended(x as ObservedExchange, 0);
  return o;
}

/**
 * Median CPU ns per call of `fn` (process.cpuUsage: the bar is CPU per request, and on a
 * shared machine wall time also counts the neighbours) over ROUNDS rounds of `n` calls, made in
 * chunks of 1,000 with the exporter flushed between chunks, untimed: the batch processor's queue
 * (2,048 spans) never overflows, and the export's own CPU is measured apart (below).
 */
async function cpuNsPerCall(fn: () => unknown, n: number): Promise<number> {
  const CHUNK = 1_000;
  const rounds: number[] = [];
  let sink: unknown;
  for (let r = 0; r < ROUNDS; r++) {
    let us = 0;
    for (let done = 0; done < n; done += CHUNK) {
      const c0 = process.cpuUsage();
      for (let i = 0; i < CHUNK; i++) sink = fn();
      const c = process.cpuUsage(c0);
      us += c.user + c.system;
      await exporter.flush();
    }
    rounds.push((us * 1000) / n);
  }
  if (sink === Symbol.for('never')) console.log(sink); // keeps the results live
  rounds.sort((a, b) => a - b);
  return rounds[(rounds.length - 1) >> 1] as number;
}

const noop: RequestObserver = { start: () => undefined, end: () => undefined };
const counting: SpanSink = { export: () => undefined };
const unsampledRoot = new TraceObserver({
  spans: 'client',
  sampleRatio: 0.01,
  sink: counting,
  random: () => 0.5,
});
const realSdk = new TraceObserver({ spans: 'client', sampleRatio: 0.01, sink: exporter });

const plain = exchange({});
const unsampledCaller = exchange({ traceparent: TRACEPARENT_UNSAMPLED });
const sampledCaller = exchange({ traceparent: TRACEPARENT_SAMPLED });
/** Name, one request, requests per round. */
const CASES: readonly [string, () => unknown, number][] = [
  ['record only, a no-op observer (baseline)', () => request([noop], plain), N],
  ['no context, ratio 0.01, unsampled', () => request([unsampledRoot], plain), N],
  ['caller unsampled (traceparent -00)', () => request([unsampledRoot], unsampledCaller), N],
  ['caller sampled: a span through the SDK', () => request([realSdk], sampledCaller), N],
  ['no context, ratio 0.01, Math.random, SDK', () => request([realSdk], plain), N],
];

console.log(`tracing observer on ${cpus()[0]?.model ?? 'cpu'}, load ${loadavg()[0]?.toFixed(1)}`);
console.log('CPU ns per request (record + observer start/end), median of rounds');
for (let i = 0; i < 2; i++) for (const [, fn] of CASES) await cpuNsPerCall(fn, 1_000); // warm-up
for (const [name, fn, n] of CASES) {
  const ns = await cpuNsPerCall(fn, n);
  console.log(`${name.padEnd(44)} ${ns.toFixed(0).padStart(7)} ns`);
}

// The export: CPU of the whole process (span making, JSON serialization, HTTP) per sampled span,
// the spans made and then flushed.
await exporter.flush();
const EXPORTED = N;
const cpu0 = process.cpuUsage();
for (let done = 0; done < EXPORTED; done += 1_000) {
  for (let i = 0; i < 1_000; i++) request([realSdk], sampledCaller);
  await exporter.flush();
}
const cpu = process.cpuUsage(cpu0);
const usPerSpan = (cpu.user + cpu.system) / EXPORTED;
console.log(
  `${'sampled span, made and exported (CPU)'.padEnd(44)} ${(usPerSpan * 1000).toFixed(0).padStart(7)} ns`,
);
console.log(`(received ${(received / 1e6).toFixed(1)} MB of OTLP JSON)`);
await exporter.shutdown();
receiver.close();
