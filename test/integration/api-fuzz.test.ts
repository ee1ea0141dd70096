/**
 * Property tests: arbitrary bodies and parameters sent to the native API over real HTTP. The
 * agent answers 2xx or a 4xx JSON error naming a code, never a 5xx, never crashes, and loses
 * nothing it acknowledged before.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { http, startTestAgent, type TestAgent } from '../helpers/agent.js';

const SEED = 20261121;

/** A registration whose fields are sometimes valid, sometimes of the wrong type or shape. */
const fuzzRegistration = fc.record(
  {
    service: fc.oneof(
      fc.constantFrom('fuzz', 'Fuzz', '', '-x', 'a'.repeat(70)),
      fc.string(),
      fc.integer(),
    ),
    id: fc.oneof(fc.string(), fc.constant('fuzz-1'), fc.constant(null)),
    address: fc.oneof(fc.ipV4(), fc.ipV6(), fc.domain(), fc.string(), fc.integer()),
    port: fc.oneof(fc.integer({ min: -10, max: 70000 }), fc.double(), fc.string()),
    tags: fc.oneof(fc.array(fc.string()), fc.string(), fc.array(fc.integer())),
    meta: fc.oneof(fc.dictionary(fc.string(), fc.string()), fc.array(fc.string()), fc.string()),
    weights: fc.oneof(fc.record({ passing: fc.integer(), warning: fc.integer() }), fc.anything()),
    checks: fc.oneof(
      fc.array(
        fc.record(
          {
            // Check targets stay on loopback: a valid registration makes the agent probe them.
            http: fc.oneof(
              fc.constantFrom(
                'http://127.0.0.1:1/health',
                'https://127.0.0.1:1/',
                'ftp://127.0.0.1/',
                '',
              ),
              fc.string().filter((s) => !s.includes(':')),
            ),
            tcp: fc.oneof(
              fc.constantFrom('127.0.0.1:1', '[::1]:1', '127.0.0.1:99999', 'nohost'),
              fc.string().filter((s) => !s.includes(':')),
            ),
            ttl: fc.oneof(fc.string(), fc.integer()),
            interval: fc.oneof(
              fc.constantFrom('1s', '10ms', '1h', '-1s', '1e9h'),
              fc.string(),
              fc.double(),
            ),
            kind: fc.string(),
            role: fc.constantFrom('startup', 'readiness', 'liveness', 'other'),
            failuresBeforeCritical: fc.integer(),
          },
          { requiredKeys: [] },
        ),
        { maxLength: 3 },
      ),
      fc.anything(),
    ),
  },
  { requiredKeys: [] },
);

describe('native API under arbitrary input', () => {
  let agent: TestAgent;
  let base: string;
  let baselineIndex = 0;
  before(async () => {
    agent = await startTestAgent();
    base = agent.url;
    const r = await http(base, 'PUT', '/api/v1/instances', {
      service: 'baseline',
      id: 'baseline-1',
      address: '10.0.0.1',
      port: 1,
    });
    baselineIndex = r.body.instance.modifyIndex;
  });
  after(async () => {
    // Nothing acknowledged before the fuzzing was lost or changed.
    const r = await http(base, 'GET', '/api/v1/instances/baseline-1');
    assert.equal(r.status, 200);
    assert.equal(r.body.instance.modifyIndex, baselineIndex);
    await agent.stop();
  });

  const expectClean = (
    r: { status: number; body: { error?: { code?: string; message?: string } } },
    allowed: number[],
  ) => {
    assert.ok(allowed.includes(r.status), `status ${r.status}: ${JSON.stringify(r.body)}`);
    if (r.status >= 400) {
      assert.match(r.body.error?.code ?? '', /^MESHWORK_ERR_/);
      assert.ok((r.body.error?.message ?? '').length > 0);
    }
  };

  it('answers registrations of any shape with 200 or a named 4xx', async () => {
    await fc.assert(
      fc.asyncProperty(fuzzRegistration, async (body) => {
        const r = await http(base, 'PUT', '/api/v1/instances', body);
        expectClean(r, [200, 400, 409]);
        if (r.status === 400)
          assert.equal(typeof (r.body as { error: { field?: string } }).error.field, 'string');
      }),
      { numRuns: 300, seed: SEED },
    );
  });

  it('answers any JSON value and any bytes on every write endpoint with a named 4xx, never a 5xx', async () => {
    const paths = [
      ['PUT', '/api/v1/instances'],
      ['PUT', '/api/v1/apply'],
      ['PUT', '/api/v1/instances/baseline-1/heartbeat'],
      ['PUT', '/api/v1/instances/baseline-1/maintenance'],
      ['PUT', '/api/v1/agent/maintenance'],
    ] as const;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...paths),
        fc.oneof(
          fc.jsonValue().map((v) => JSON.stringify(v)),
          fc.uint8Array({ maxLength: 2048 }).map((b) => Buffer.from(b)),
          fc.string(),
        ),
        async ([method, path], body) => {
          if (path.endsWith('/maintenance') && /"enabled"\s*:\s*true/.test(String(body))) return; // would change baseline
          const r = await http(base, method, path, body, { 'content-type': 'application/json' });
          // A heartbeat to baseline-1 (no TTL check) is a 409; a valid empty apply is a 200.
          expectClean(r, [200, 400, 404, 409]);
        },
      ),
      { numRuns: 300, seed: SEED },
    );
  });

  it('answers arbitrary query strings on reads with 200 or 400', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.dictionary(
          fc.constantFrom('status', 'tag', 'zone', 'meta.version', 'index', 'wait', 'x'),
          fc.string(),
          { maxKeys: 4 },
        ),
        async (q) => {
          // A huge valid wait would block; bound it by forcing index=0 when wait parses.
          const params = new URLSearchParams(q);
          params.set('index', '0');
          const r = await http(
            base,
            'GET',
            `/api/v1/services/baseline/instances?${params.toString()}`,
          );
          expectClean(r, [200, 400]);
        },
      ),
      { numRuns: 200, seed: SEED },
    );
  });
});
