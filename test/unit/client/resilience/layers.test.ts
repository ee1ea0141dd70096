/** Two stacked layers (app -> sidecar -> upstream) cooperating through x-meshwork-attempt and x-meshwork-deadline-ms. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { executeWithRetries } from '../../../../src/client/resilience/execute.js';
import { createRetryPolicy } from '../../../../src/client/resilience/retry-policy.js';
import { FakeClock } from '../../../../src/testing/fake-clock.js';

const generousBudget = { ratio: 1, minRetriesPerSecond: 1000, windowMs: 10_000 };
const classify = (status: number) => ({ kind: 'response' as const, status });

/** An app and a sidecar, each allowed 3 attempts, in front of an upstream that always answers 503. */
function stack(forwardHeaders: boolean) {
  const clock = new FakeClock();
  const deps = { clock, random: () => 0 };
  const app = createRetryPolicy({ overallTimeoutMs: 800, budget: generousBudget }, deps);
  const sidecar = createRetryPolicy({ overallTimeoutMs: 5000, budget: generousBudget }, deps);
  const upstreamSaw: Record<string, string>[] = [];
  const sidecarHandles = (incoming: Record<string, string>) =>
    executeWithRetries(
      sidecar,
      { method: 'GET', ...(forwardHeaders ? { inherited: incoming } : {}) },
      async (state) => {
        upstreamSaw.push(state.headers());
        return 503;
      },
      classify,
    );
  const appCalls = () =>
    executeWithRetries(
      app,
      { method: 'GET' },
      (state) => sidecarHandles(state.headers()),
      classify,
    );
  return { appCalls, upstreamSaw, clock };
}

describe('layered retries', () => {
  it('makes 5 upstream calls per request, not 3 x 3 = 9, when the sidecar reads the headers', async () => {
    const { appCalls, upstreamSaw } = stack(true);
    assert.equal(await appCalls(), 503);
    assert.deepEqual(
      upstreamSaw.map((h) => h['x-meshwork-attempt']),
      ['1', '2', '3', '2', '3'],
      "the sidecar retries the app's first attempt only, and numbers its retries on",
    );
    // The sidecar's own deadline is 5000 ms; the app's 800 ms is what the upstream is told.
    assert.ok(upstreamSaw.every((h) => Number(h['x-meshwork-deadline-ms']) <= 800));
  });

  it('multiplies to 9 upstream calls when the headers are not passed on', async () => {
    const { appCalls, upstreamSaw } = stack(false);
    await appCalls();
    assert.equal(upstreamSaw.length, 9);
    assert.ok(upstreamSaw.some((h) => h['x-meshwork-deadline-ms'] === '5000'));
  });
});
