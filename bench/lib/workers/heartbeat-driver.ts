/**
 * @module Worker for bench:scale: heartbeats at a fixed rate (open loop) spread over instance ids
 * `inst-0 .. inst-(n-1)`, from its own process so the driver never shares the agent's core
 * budget accounting or event loop.
 *
 * IPC in:  {type:'start', url, instances, rate, seconds, connections}
 * IPC out: {type:'done', result}
 */
import { Pool } from 'undici';
import { openLoop } from '../open-loop.js';
import { RawHttpPool } from '../raw-http.js';
import { summarize } from '../stats.js';

interface Start {
  type: 'start';
  url: string;
  instances: number;
  rate: number;
  seconds: number;
  connections: number;
  client: 'raw' | 'undici';
}

/** A step coprime with n: request k hits instance (k * step) mod n, so each is hit once per n. */
function strideFor(n: number): number {
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  for (const candidate of [7919, 104_729, 15_485_863, 1])
    if (gcd(candidate, n) === 1) return candidate;
  return 1;
}

process.on('message', (m: Start) => {
  if (m.type !== 'start') return;
  void run(m);
});

async function run(m: Start): Promise<void> {
  const pool = new Pool(m.url, {
    connections: m.connections,
    pipelining: 1,
    keepAliveTimeout: 60_000,
  });
  const raw = m.client === 'raw' ? new RawHttpPool(m.url, m.connections) : undefined;
  // Pre-built request bytes: the driver's per-heartbeat work is a write and a header scan.
  const requests =
    raw === undefined
      ? []
      : Array.from({ length: m.instances }, (_, i) =>
          raw.build('PUT', `/api/v1/instances/inst-${i}/heartbeat`),
        );
  const stride = strideFor(m.instances);
  const statuses = new Map<number, number>();
  /** Slowest response completed in each second of the run (service time, ms). */
  const maxBySecond: number[] = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await openLoop({
    rate: m.rate,
    seconds: m.seconds,
    maxInFlight: 10_000,
    op: async (k) => {
      const sent = performance.now();
      const i = (k * stride) % m.instances;
      let status: number;
      if (raw !== undefined) status = await raw.request(requests[i] ?? Buffer.alloc(0));
      else {
        const res = await pool.request({
          path: `/api/v1/instances/inst-${i}/heartbeat`,
          method: 'PUT',
        });
        await res.body.dump();
        status = res.statusCode;
      }
      if (status !== 200) statuses.set(status, (statuses.get(status) ?? 0) + 1);
      const end = performance.now();
      const sec = Math.floor((end - t0) / 1000);
      maxBySecond[sec] = Math.max(maxBySecond[sec] ?? 0, end - sent);
      return status === 200;
    },
  });
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await pool.close();
  raw?.close();
  process.send?.({
    type: 'done',
    result: {
      offered: r.offered,
      ok: r.ok,
      errors: r.errors,
      firstError: r.firstError,
      statuses: Object.fromEntries(statuses),
      elapsedMs: r.elapsedMs,
      achievedRate: r.ok / (r.elapsedMs / 1000),
      latency: summarize(r.latencyMs),
      service: summarize(r.serviceMs),
      lateSends: r.lateSends,
      maxInFlight: r.maxInFlightSeen,
      driverCores: (cpu.user + cpu.system) / 1e6 / wall,
      maxBySecond: Array.from(maxBySecond, (x) => Math.round(x ?? 0)),
    },
  });
}

process.on('disconnect', () => process.exit(0));
