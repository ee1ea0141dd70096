/**
 * @module Helpers for benchmarks that hold many watchers in bench/lib/workers/watchers.ts: wait
 * until the agent has every blocking query parked, and collect each watcher's receipt time.
 */
import { scrapeMetric } from './agent.js';
import { sleep } from './load.js';
import { request, type Child } from './proc.js';

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
