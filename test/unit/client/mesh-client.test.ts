/** @module Unit tests of MeshworkClient's option checks: every policy is validated at construction. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MeshworkClient, type MeshworkClientOptions } from '../../../src/client/mesh-client.js';
import { ERROR_CODES } from '../../../src/core/errors.js';

/** Constructs a client (no I/O until it is used) and closes it; returns what construction threw. */
async function construct(options: unknown): Promise<unknown> {
  let client: MeshworkClient;
  try {
    client = new MeshworkClient(options as MeshworkClientOptions);
  } catch (err) {
    return err;
  }
  await client.close();
  return undefined;
}

async function rejects(options: unknown, code: string, message: string): Promise<void> {
  const err = (await construct(options)) as { code?: unknown; message?: unknown } | undefined;
  assert.ok(err !== undefined, `${JSON.stringify(options)} is refused`);
  assert.equal(err.code, code);
  assert.equal(err.message, message);
}

/** Refused with CONFIG_INVALID, listing the one `problem`. */
const refusesConfig = (options: unknown, problem: string): Promise<void> =>
  rejects(options, ERROR_CODES.CONFIG_INVALID, `invalid configuration:\n  ${problem}`);

/** Refused with BALANCER_INVALID, listing the one `problem`. */
const refusesBalancer = (options: unknown, problem: string): Promise<void> =>
  rejects(options, ERROR_CODES.BALANCER_INVALID, `invalid balancer:\n  ${problem}`);

const BALANCERS =
  'round-robin, weighted-round-robin, random, least-request, ring-hash, maglev, zone-aware';

describe('MeshworkClient', () => {
  it('accepts no options, and valid policies of every kind', async () => {
    assert.equal(await construct(undefined), undefined);
    const valid = {
      balancer: { payments: { type: 'ring-hash', minRingSize: 64 }, '*': 'least-request' },
      outlierDetection: { consecutiveFailures: 3 },
      bulkhead: { maxConcurrent: 4 },
      rateLimit: { ratePerSecond: 10, burst: 2 },
    };
    assert.equal(await construct(valid), undefined);
  });

  it('refuses bad outlierDetection options at construction, listing the problem', async () => {
    await refusesConfig(
      { outlierDetection: { consecutiveFailures: 0 } },
      'circuitBreaker.consecutiveFailures: Too small: expected number to be >=1',
    );
    await refusesConfig(
      { outlierDetection: { baseEjectionMs: 10, maxEjectionMs: 5 } },
      'circuitBreaker.maxEjectionMs: must be >= baseEjectionMs',
    );
    await refusesConfig({ outlierDetection: { nope: 1 } }, 'circuitBreaker.nope: unknown option');
    await refusesConfig({ outlierDetection: 5 }, 'circuitBreaker: options must be an object');
  });

  it('refuses bad bulkhead and rateLimit options at construction', async () => {
    await refusesConfig(
      { bulkhead: { maxConcurrent: 0 } },
      'bulkhead.maxConcurrent: Too small: expected number to be >=1',
    );
    await refusesConfig(
      { bulkhead: { maxConcurrent: 2, maxQueue: -1 } },
      'bulkhead.maxQueue: Too small: expected number to be >=0',
    );
    await refusesConfig(
      { rateLimit: { ratePerSecond: 0 } },
      'rateLimiter.ratePerSecond: Too small: expected number to be >0',
    );
    await refusesConfig(
      { rateLimit: { ratePerSecond: 5, burst: 0.5 } },
      'rateLimiter.burst: Invalid input: expected int, received number',
    );
  });

  it('refuses an unknown or badly configured balancer, for every service or one of them', async () => {
    await refusesBalancer(
      { balancer: 'nope' },
      `balancer: unknown balancer "nope": use one of ${BALANCERS}`,
    );
    await refusesBalancer(
      { balancer: { type: 'ring-hash', minRingSize: 0 } },
      'balancer.minRingSize: Too small: expected number to be >=1',
    );
    await refusesBalancer(
      { balancer: { a: 'round-robin', b: { type: 'maglev', tableSize: 4 } } },
      'balancer.tableSize: must be a prime (65537 by default)',
    );
  });

  it('reports the first bad policy in the order outlierDetection, bulkhead, rateLimit, balancer', async () => {
    const bad = {
      outlierDetection: { consecutiveFailures: 0 },
      bulkhead: { maxConcurrent: 0 },
      rateLimit: { ratePerSecond: 0 },
      balancer: 'x',
    };
    const first = (await construct(bad)) as Error;
    assert.match(first.message, /circuitBreaker\.consecutiveFailures/);
    const second = (await construct({ ...bad, outlierDetection: undefined })) as Error;
    assert.match(second.message, /bulkhead\.maxConcurrent/);
    const third = (await construct({
      ...bad,
      outlierDetection: undefined,
      bulkhead: undefined,
    })) as Error;
    assert.match(third.message, /rateLimiter\.ratePerSecond/);
  });
});
