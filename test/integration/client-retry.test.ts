/** Retries over real sockets: a budget holds a 100% failing upstream near 1.2x load; refused connections are retried. */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { isConnectError } from '../../src/client/resilience/connect-errors.js';
import { executeWithRetries } from '../../src/client/resilience/execute.js';
import { createRetryPolicy } from '../../src/client/resilience/retry-policy.js';

const listen = (server: Server): Promise<number> =>
  new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  );

describe('client retries over real sockets', () => {
  const dispatcher = new Agent({ connections: 8 });
  let server: Server;
  let url: string;
  let hits = 0;
  const attemptHeaders = new Map<string, number>();

  before(async () => {
    server = createServer((req, res) => {
      hits++;
      const a = String(req.headers['x-meshwork-attempt']);
      attemptHeaders.set(a, (attemptHeaders.get(a) ?? 0) + 1);
      res.writeHead(503).end('unavailable');
    });
    url = `http://127.0.0.1:${await listen(server)}/`;
  });
  after(async () => {
    await dispatcher.close();
    await new Promise((resolve) => server.close(resolve));
  });

  /** One attempt with undici: the policy's headers, its try timeout, the body drained. */
  const attempt =
    (target: () => string) =>
    async (state: { headers(): Record<string, string> }, signal: AbortSignal): Promise<number> => {
      const res = await request(target(), { dispatcher, headers: state.headers(), signal });
      await res.body.dump();
      return res.statusCode;
    };

  // Issue 6: "upstream answers 503 to everything: upstream attempts stay at most 1.25x the
  // requests plus the floor".
  it('keeps upstream hits within 1.25x the requests plus the floor when everything is 503', async () => {
    const policy = createRetryPolicy({ maxAttempts: 3, backoff: { baseMs: 1, maxMs: 5 } });
    const requests = 200;
    const concurrency = 4;
    const statuses: number[] = [];
    let started = 0;
    const worker = async (): Promise<void> => {
      while (started < requests) {
        started++;
        const status = await executeWithRetries(
          policy,
          { method: 'GET' },
          attempt(() => url),
          (s) => ({ kind: 'response', status: s }),
        );
        statuses.push(status);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    assert.equal(statuses.length, requests);
    assert.ok(statuses.every((s) => s === 503));
    const { minRetriesPerSecond, windowMs } = policy.options.budget;
    // The run is far shorter than one window: the floor is granted once.
    const floor = (minRetriesPerSecond * windowMs) / 1000;
    assert.ok(hits <= 1.25 * requests + floor, `${hits} upstream hits for ${requests} requests`);
    assert.ok(hits > requests * 1.5, `${hits}: retries happened (floor plus ratio)`);
    assert.equal(hits, requests + policy.budget.stats.retries);
    assert.equal(attemptHeaders.get('1'), requests, 'every first attempt says so');
    assert.ok((attemptHeaders.get('2') ?? 0) > 0);
  });

  it('retries a refused connection, even for a POST, and reports a connect error', async () => {
    const closed = createServer();
    const port = await listen(closed);
    await new Promise((resolve) => closed.close(resolve));
    const policy = createRetryPolicy({ backoff: { baseMs: 1, maxMs: 2 } });
    let tries = 0;
    const err = await executeWithRetries(
      policy,
      { method: 'POST' },
      (state, signal) => {
        tries++;
        return attempt(() => `http://127.0.0.1:${port}/`)(state, signal);
      },
      (s) => ({ kind: 'response', status: s }),
    ).catch((e: unknown) => e);
    assert.ok(isConnectError(err), String(err));
    assert.equal(tries, 3);
    assert.equal(policy.budget.stats.retries, 2);
  });
});
