/**
 * @module bench:ca-sign: leaf certificates signed per second by the agent's mesh CA, through the
 * real endpoint (POST /api/v1/mesh/ca/leaf) of a real agent process. The CSRs (one key each,
 * EC P-256 unless --key rsa) are made before timing; each round sends --leaves of them with
 * --concurrency in flight over keep-alive connections, and checks every answer is a leaf.
 * Issue 20's bar: at least 500 leaves/s (goal 2,000).
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { Agent, request } from 'undici';
import { profiling, startAgent } from '../lib/agent.js';
import { monoMicros, profileTables, summarizeProfile } from '../lib/cpuprofile.js';
import { runMain } from '../lib/cleanup.js';
import { closedLoop, flags } from '../lib/load.js';
import { CpuWindow } from '../lib/proc.js';
import { fmt, log, Report, settle, table } from '../lib/report.js';
import { median, summarize } from '../lib/stats.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const opts = flags('npm run bench:ca-sign -- [flags]', {
  leaves: { default: 2000, help: 'leaves signed per round' },
  rounds: { default: 5, help: 'measured rounds' },
  'warmup-leaves': { default: 1000, help: 'untimed leaves first (JIT warm-up)' },
  concurrency: { default: 16, help: 'requests in flight' },
  csrs: { default: 1000, help: 'distinct CSRs (keys) made up front, sent round-robin' },
  key: { default: 'ec', help: 'ec (P-256) or rsa (2048)' },
  'cpu-prof': { default: false, help: 'run the agent under --cpu-prof and report its profile' },
  'quiet-wait': { default: 120, help: 'seconds to wait for other work on the machine to settle' },
});

const ALGORITHM =
  opts.key === 'rsa'
    ? {
        name: 'RSASSA-PKCS1-v1_5',
        modulusLength: 2048,
        publicExponent: new Uint8Array([1, 0, 1]),
        hash: 'SHA-256',
      }
    : { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };

async function makeCsrs(n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const keys = (await webcrypto.subtle.generateKey(ALGORITHM, false, [
      'sign',
      'verify',
    ])) as webcrypto.CryptoKeyPair;
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      name: `CN=bench-${i}`,
      keys,
      signingAlgorithm: ALGORITHM,
    });
    out.push(JSON.stringify({ csr: csr.toString('pem'), service: `svc-${i % 50}` }));
  }
  return out;
}

runMain(async () => {
  const command = `npm run bench:ca-sign -- ${process.argv.slice(2).join(' ')}`.trim();
  const report = new Report('ca-sign', command);
  log(`making ${opts.csrs} ${opts.key} CSRs`);
  const bodies = await makeCsrs(opts.csrs);
  const busy = await settle(opts['quiet-wait']);
  const agent = await startAgent({ dev: true, ...profiling(opts['cpu-prof']) });
  const dispatcher = new Agent({ connections: opts.concurrency, keepAliveTimeout: 30_000 });
  const url = `${agent.url}/api/v1/mesh/ca/leaf`;
  const sign = async (i: number): Promise<boolean> => {
    const res = await request(url, {
      method: 'POST',
      dispatcher,
      headers: { 'content-type': 'application/json' },
      body: bodies[i % bodies.length],
    });
    const text = await res.body.text();
    return res.statusCode === 200 && text.includes('-----BEGIN CERTIFICATE-----');
  };

  log(`warm-up: ${opts['warmup-leaves']} leaves`);
  const warm = await closedLoop(opts['warmup-leaves'], opts.concurrency, sign);
  if (warm.errors > 0) throw new Error(`warm-up failed: ${warm.firstError ?? '?'}`);

  const rows: (string | number)[][] = [];
  const rates: number[] = [];
  const cpuPerLeafMs: number[] = [];
  const windows: [number, number][] = [];
  const latencies: number[] = [];
  for (let round = 1; round <= opts.rounds; round++) {
    const cpu = new CpuWindow(agent.pid);
    const from = monoMicros();
    const r = await closedLoop(opts.leaves, opts.concurrency, (i) => sign(i + round * 7919));
    windows.push([from, monoMicros()]);
    const c = cpu.read();
    if (r.errors > 0) throw new Error(`round ${round}: ${r.errors} failed: ${r.firstError ?? '?'}`);
    const rate = r.ops / (r.elapsedMs / 1000);
    const s = summarize(r.latenciesMs);
    rates.push(rate);
    cpuPerLeafMs.push((c.cpuSeconds * 1000) / r.ops);
    latencies.push(...r.latenciesMs);
    rows.push([
      round,
      fmt(rate, 0),
      fmt(c.cores, 2),
      fmt((c.cpuSeconds * 1000) / r.ops, 3),
      fmt(s.p50, 2),
      fmt(s.p99, 2),
    ]);
    log(`round ${round}: ${fmt(rate, 0)} leaves/s, agent ${fmt(c.cores, 2)} cores`);
  }
  const { cpuProfile } = await agent.stop();
  await dispatcher.close();

  report.meta(
    `${opts.rounds} rounds of ${opts.leaves} leaves, ${opts.concurrency} in flight, ${opts.csrs} distinct ${opts.key === 'rsa' ? 'RSA 2048' : 'EC P-256'} CSRs, agent --dev (one process), load from this process`,
  );
  report.quiet(busy);
  report.section(
    'Rounds',
    table(['round', 'leaves/s', 'agent cores', 'agent CPU ms/leaf', 'p50 ms', 'p99 ms'], rows),
  );
  const all = summarize(latencies);
  report.section(
    'Summary',
    table(
      ['what', 'value'],
      [
        ['leaves/s (median of rounds)', fmt(median(rates), 0)],
        ['leaves/s (min-max)', `${fmt(Math.min(...rates), 0)}-${fmt(Math.max(...rates), 0)}`],
        ['agent CPU ms per leaf (median)', fmt(median(cpuPerLeafMs), 3)],
        ['leaves per agent CPU-second', fmt(1000 / median(cpuPerLeafMs), 0)],
        ['latency p50 / p99 (ms)', `${fmt(all.p50, 2)} / ${fmt(all.p99, 2)}`],
        ['bar (issue 20)', '>= 500/s (goal 2,000/s)'],
      ],
    ),
  );
  if (cpuProfile !== undefined) {
    report.section(
      'Agent CPU profile (measured rounds)',
      profileTables(summarizeProfile(cpuProfile, 25, windows)),
    );
  }
  report.finish();
});
