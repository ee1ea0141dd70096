/**
 * @module Micro benchmark of issue 21's per-request observers on realistic records: Istio's
 * standard metrics (a source report to an mTLS instance, a destination report of an mTLS
 * caller), the access log line (entry and its JSON: what the asynchronous writer is handed), the
 * sampling decision at 1%, and the scrape of the metrics. Setup stays outside timing; results
 * are kept live.
 * Usage: npm run bench:observers [-- --quick]
 */
import { cpus, loadavg } from 'node:os';
import { Registry } from 'prom-client';
import type { Endpoint } from '../../src/client/balancers/index.js';
import { accessLogEntry, createAccessLogObserver } from '../../src/proxy/access-log.js';
import { IstioMetrics } from '../../src/proxy/istio-metrics.js';
import type { RequestRecord } from '../../src/proxy/observe.js';
import { setPeerIdentity } from '../../src/proxy/peer-identity.js';
import { testEndpoint } from '../../test/helpers/request-record.js';
import { flags } from '../lib/load.js';

const opts = flags('npm run bench:observers [-- --quick]', {
  quick: { default: false, help: 'shorter samples, noisier numbers' },
});
const N = opts.quick ? 100_000 : 1_000_000;
const ROUNDS = 5;

const endpoints: Endpoint[] = [1, 2, 3].map((i) =>
  testEndpoint({
    id: `payments-${i}`,
    address: `10.0.0.${i}`,
    meta: { version: i === 3 ? 'v2' : 'v1', 'tls-mode': 'istio', 'app-port': '8080' },
  }),
);
const callerSocket = { remoteAddress: '10.0.0.9', localPort: 15006 };
setPeerIdentity(callerSocket, {
  mtls: true,
  spiffeId: 'spiffe://cluster.local/ns/default/sa/orders',
  principal: 'cluster.local/ns/default/sa/orders',
  namespace: 'default',
});
const headers = {
  host: 'payments',
  'user-agent': 'node',
  'x-request-id': '6c1f4d1e-2b1a-4a51-9c0b-0d5c1a2b3c4d',
  traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
  accept: '*/*',
};
/** 64 records: three instances, mostly 200, some 404 and 503 with flags. */
const records: RequestRecord[] = Array.from({ length: 64 }, (_, i) => ({
  startTimeMs: Date.now(),
  durationMs: 0.8 + (i % 7) * 0.3,
  responseHeadMs: 0.7,
  method: i % 5 === 0 ? 'POST' : 'GET',
  path: `/pay/${i}`,
  authority: 'payments',
  headers,
  socket: callerSocket,
  route: 'default/payments/0',
  service: 'payments',
  cluster: 'payments',
  endpoint: endpoints[i % 3],
  attempts: 1,
  status: i % 31 === 0 ? 503 : i % 17 === 0 ? 404 : 200,
  flags: i % 31 === 0 ? ['UF', 'URX'] : [],
  errorCode: undefined,
  requestBytes: i % 5 === 0 ? 120 : 0,
  responseBytes: 512,
}));

const registry = new Registry();
const istio = new IstioMetrics(registry, {
  component: 'sidecar',
  workload: { name: 'payments', namespace: 'default', version: 'v1' },
  trustDomain: 'cluster.local',
});
let written = 0;
const sink = { write: (e: object) => (written += JSON.stringify(e).length) };
const sampled = createAccessLogObserver({ sink, reporter: 'source', sampleRate: 0.01 });

/** Median ns per call of `fn(i)` over ROUNDS rounds of `n` calls (as authorization.ts). */
function nsPerCall(fn: (i: number) => unknown, n: number): number {
  const rounds: number[] = [];
  let keep: unknown;
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) keep = fn(i);
    rounds.push(Number(process.hrtime.bigint() - t0) / n);
  }
  if (keep === Symbol.for('never')) console.log(keep); // keeps the results live
  rounds.sort((a, b) => a - b);
  return rounds[(rounds.length - 1) >> 1] as number;
}

const rec = (i: number): RequestRecord => records[i & 63] as RequestRecord;
const CASES: [string, (i: number) => unknown, number][] = [
  ['baseline: handing out the record', rec, N],
  ['istio source report', (i) => istio.source.end(rec(i), undefined), N],
  ['istio destination report (mTLS caller)', (i) => istio.destination.end(rec(i), undefined), N],
  ['access log entry + JSON (rate 1)', (i) => JSON.stringify(accessLogEntry(rec(i), 'source')), N],
  ['access log at 1% (draw + 1 in 100 lines)', (i) => sampled.end(rec(i), undefined), N],
];

console.log(`observers on ${cpus()[0]?.model ?? 'cpu'}, load ${loadavg()[0]?.toFixed(1)}`);
console.log('ns per request, median of rounds');
for (let i = 0; i < 50_000; i++) for (const [, fn] of CASES) fn(i);
for (const [name, fn, n] of CASES)
  console.log(`${name.padEnd(48)} ${nsPerCall(fn, n).toFixed(0).padStart(6)} ns`);
const t0 = process.hrtime.bigint();
const text = await registry.metrics();
console.log(
  `${'scrape (istio_* text)'.padEnd(48)} ${(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(2).padStart(6)} ms, ${text.length} bytes, ${written > 0 ? 'lines written' : ''}`,
);
