/**
 * @module Helpers for benchmarks that hold many watchers in bench/lib/workers/watchers.ts: start
 * them across worker processes, wait until the agent has every blocking query parked, and
 * collect each watcher's receipt time.
 */
import { fileURLToPath } from 'node:url';
import { scrapeMetric } from './agent.js';
import { sleep } from './load.js';
import { forkWorker, request, type Child } from './proc.js';

const WORKER = fileURLToPath(new URL('./workers/watchers.ts', import.meta.url));

export interface WatchersSpec {
  readonly agentUrl: string;
  readonly service: string;
  /** Watchers in all, spread evenly over `workers` processes. */
  readonly watchers: number;
  readonly workers: number;
  /** 'sse' streams, native 'blocking' queries or 'consul' blocking queries. */
  readonly mode: 'sse' | 'blocking' | 'consul';
  /** The index the blocking queries start from. */
  readonly index: number;
  /** The blocking-query client: 'raw' (minimal sockets) or 'node' (node:http). */
  readonly client: string;
  /** Prefix of the workers' names in logs. */
  readonly name: string;
}

/** Forks the worker processes and resolves once every watcher is started (see the worker). */
export async function startWatchers(spec: WatchersSpec): Promise<Child[]> {
  const per = Math.ceil(spec.watchers / spec.workers);
  const counts = Array.from({ length: spec.workers }, (_, i) =>
    Math.max(0, Math.min(per, spec.watchers - i * per)),
  );
  const workers = counts.map((_, i) => forkWorker(`${spec.name}-${i}`, WORKER));
  const start = {
    type: 'start',
    url: spec.agentUrl,
    service: spec.service,
    mode: spec.mode,
    index: spec.index,
    client: spec.client,
  };
  await Promise.all(
    workers.map((w, i) => request(w, { ...start, count: counts[i] }, 'ready', 60_000)),
  );
  return workers;
}

/** Waits until the agent counts `count` blocking queries waiting (or throws after 30 s). */
export async function blockingParked(agentUrl: string, count: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  while ((await scrapeMetric(agentUrl, 'meshwork_registry_watchers', 'kind="blocking"')) < count) {
    if (Date.now() > deadline) throw new Error('blocking queries did not all park');
    await sleep(50);
  }
}

/** Each watcher's first receipt time of `index` or later (null: not within `timeoutMs`). */
export async function collectReceipts(
  workers: readonly Child[],
  index: number,
  timeoutMs = 10_000,
): Promise<(number | null)[]> {
  const collected = await Promise.all(
    workers.map((w) =>
      request<{ times: (number | null)[] }>(w, { type: 'collect', index, timeoutMs }, 'collected'),
    ),
  );
  return collected.flatMap((c) => c.times);
}
