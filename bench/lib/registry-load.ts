/**
 * @module Registration records and agent-side load helpers shared by the macro benchmarks: the
 * same record shape everywhere, bulk registration over an undici Pool, heartbeats.
 */
import { Pool } from 'undici';
import { monoMicros } from './cpuprofile.js';
import { closedLoop, type ClosedLoopResult } from './load.js';
import { sharedNow } from './stats.js';

/** A registration body as the native API takes it (PUT /api/v1/instances). */
export interface Registration {
  service: string;
  id: string;
  address: string;
  port: number;
  tags: string[];
  meta: Record<string, string>;
  checks: object[];
}

/**
 * A realistic record: two tags, three meta pairs, one check. Addresses are data only (never
 * dialled: TTL checks do not connect anywhere).
 */
export function registration(
  service: string,
  id: string,
  i: number,
  checks: object[] = [{ ttl: '30s' }],
): Registration {
  return {
    service,
    id,
    address: `127.1.${(i >> 8) & 255}.${i & 255}`,
    port: 8000 + (i % 1000),
    tags: ['v2', i % 2 === 0 ? 'blue' : 'green'],
    meta: { version: '2.1.0', zone: `eu-1${'abc'[i % 3]}`, team: 'payments' },
    checks,
  };
}

/** An undici Pool to the agent with `connections` sockets (keep-alive, no pipelining). */
export function agentPool(url: string, connections: number): Pool {
  return new Pool(url, { connections, pipelining: 1, keepAliveTimeout: 60_000 });
}

/** PUT one registration body (already JSON); true on 200. */
export async function putInstance(pool: Pool, body: string): Promise<boolean> {
  const res = await pool.request({
    path: '/api/v1/instances',
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body,
  });
  await res.body.dump();
  return res.statusCode === 200;
}

/** PUT a heartbeat (no body: status passing); true on 200. */
export async function heartbeat(pool: Pool, id: string): Promise<boolean> {
  const res = await pool.request({
    path: `/api/v1/instances/${encodeURIComponent(id)}/heartbeat`,
    method: 'PUT',
  });
  await res.body.dump();
  return res.statusCode === 200;
}

/** Registers `n` records made by `make(i)`, `concurrency` in flight. Throws on any failure. */
export async function registerMany(
  url: string,
  n: number,
  make: (i: number) => Registration,
  concurrency = 64,
): Promise<ClosedLoopResult> {
  const pool = agentPool(url, concurrency);
  try {
    const r = await closedLoop(n, concurrency, (i) => putInstance(pool, JSON.stringify(make(i))));
    if (r.errors > 0) throw new Error(`${r.errors} registrations failed: ${r.firstError}`);
    return r;
  } finally {
    await pool.close();
  }
}

/** Heartbeats `n` ids made by `idOf(i)`, `concurrency` in flight. Throws on any failure. */
export async function heartbeatMany(
  url: string,
  n: number,
  idOf: (i: number) => string,
  concurrency = 64,
): Promise<ClosedLoopResult> {
  const pool = agentPool(url, concurrency);
  try {
    const r = await closedLoop(n, concurrency, (i) => heartbeat(pool, idOf(i)));
    if (r.errors > 0) throw new Error(`${r.errors} heartbeats failed: ${r.firstError}`);
    return r;
  } finally {
    await pool.close();
  }
}

/**
 * One timed change: PUTs `body` and answers the index it was committed at, with `t0` (shared
 * clock, just before sending), `mono0` (monotonic µs, for profile windows) and the PUT's ms.
 */
export async function timedChange(
  pool: Pool,
  body: string,
): Promise<{ index: number; t0: number; mono0: number; putMs: number }> {
  const mono0 = monoMicros();
  const t0 = sharedNow();
  const res = await pool.request({
    path: '/api/v1/instances',
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body,
  });
  const { index } = (await res.body.json()) as { index: number };
  const putMs = sharedNow() - t0;
  if (res.statusCode !== 200) throw new Error(`change: HTTP ${res.statusCode}`);
  return { index, t0, mono0, putMs };
}
