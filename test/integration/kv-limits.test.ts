/**
 * KV limits of a real agent on port 0 (issue 16): the per-value limit and the quota in both APIs
 * and across a restart, and `?recurse` / `?keys` over many large values answered without freezing
 * the agent (800 values of 512 KiB made one `?recurse` block it for 6.5 s, then fail).
 * @solo: its 100 ms liveness bound runs with no other test file beside it (scripts/test.mjs).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { http, startTestAgent, type TestAgent } from '../helpers/agent.js';

const KIB = 1024;

/** The value of `/metrics` line `name` (no labels). */
async function gauge(agent: TestAgent, name: string): Promise<number> {
  const text = (await http(agent.url, 'GET', '/metrics')).text;
  const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
  assert.ok(m?.[1] !== undefined, `${name} in /metrics`);
  return Number(m[1]);
}

describe('KV quota and value limit', () => {
  let agent: TestAgent;
  before(async () => {
    agent = await startTestAgent({ flags: { kv: { quotaBytes: 2000 } } });
  });
  after(async () => {
    await agent.stop();
  });

  it('refuses a value over 512 KiB with 413 naming the key, in both APIs', async () => {
    const big = Buffer.alloc(512 * KIB + 1);
    const native = await http(agent.url, 'PUT', '/api/v1/kv/too/big', big);
    assert.equal(native.status, 413);
    assert.equal(native.body.error.code, 'MESHWORK_ERR_REGISTRY_KV_VALUE_TOO_LARGE');
    assert.match(native.body.error.message, /key "too\/big" is 524289 bytes/);
    const consul = await http(agent.url, 'PUT', '/v1/kv/too/big', big);
    assert.equal(consul.status, 413);
    assert.match(consul.text, /too large, max size: 524288 bytes\. Key: "too\/big"/);
  });

  it('refuses a put past the quota with 507 saying used and quota, in both APIs, and counts KV bytes', async () => {
    assert.equal(await gauge(agent, 'meshwork_registry_kv_quota_bytes'), 2000);
    const first = await http(agent.url, 'PUT', '/api/v1/kv/q/a', Buffer.alloc(1497));
    assert.equal(first.status, 200, first.text);
    assert.equal(await gauge(agent, 'meshwork_registry_kv_bytes'), 1500);
    const native = await http(agent.url, 'PUT', '/api/v1/kv/q/b', Buffer.alloc(600));
    assert.equal(native.status, 507);
    assert.equal(native.body.error.code, 'MESHWORK_ERR_REGISTRY_KV_QUOTA_EXCEEDED');
    assert.match(native.body.error.message, /adds 603 bytes to 1500 used of 2000/);
    const consul = await http(agent.url, 'PUT', '/v1/kv/q/b', Buffer.alloc(600));
    assert.equal(consul.status, 507);
    assert.match(consul.text, /KV quota exceeded: .*1500 used of 2000/);
    assert.equal((await http(agent.url, 'GET', '/v1/kv/q/b')).status, 404);
    // Room is made by shrinking or deleting.
    assert.equal((await http(agent.url, 'PUT', '/v1/kv/q/a', Buffer.alloc(10))).status, 200);
    assert.equal((await http(agent.url, 'PUT', '/v1/kv/q/b', Buffer.alloc(600))).status, 200);
    assert.equal(await gauge(agent, 'meshwork_registry_kv_bytes'), 616);
    assert.match(
      (await http(agent.url, 'GET', '/metrics')).text,
      /^meshwork_registry_kv_quota_refusals_total 2$/m,
    );
  });
});

describe('KV quota across a restart (sqlite store)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'meshwork-kv-quota-'));
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  it('counts the stored values again after a restart', async () => {
    const flags = { kv: { quotaBytes: 2000 } };
    const first = await startTestAgent({ sqlite: true, dataDir, flags });
    try {
      const r = await http(first.url, 'PUT', '/api/v1/kv/kept', Buffer.alloc(1496));
      assert.equal(r.status, 200, r.text);
    } finally {
      await first.stop();
    }
    const second = await startTestAgent({ sqlite: true, dataDir, flags });
    try {
      assert.equal(await gauge(second, 'meshwork_registry_kv_bytes'), 1500);
      const r = await http(second.url, 'PUT', '/api/v1/kv/more', Buffer.alloc(600));
      assert.equal(r.status, 507, r.text);
    } finally {
      await second.stop();
    }
  });
});

describe('large KV listings', () => {
  const COUNT = 100;
  const VALUE_BYTES = 512 * KIB;
  let agent: TestAgent;
  before(async () => {
    agent = await startTestAgent();
    // 50 MiB of values, put in-process: the setup is not what is measured.
    for (let i = 0; i < COUNT; i++) {
      const key = `big/${String(i).padStart(3, '0')}`;
      await agent.registry.kvPut(key, Buffer.alloc(VALUE_BYTES, i));
    }
  });
  after(async () => {
    await agent.stop();
  });

  /**
   * GETs `path` and reads the whole answer while pinging /health/live one request after another;
   * answers the parsed body and the slowest ping.
   */
  async function readWhilePinging(path: string): Promise<{ body: unknown; slowestMs: number }> {
    let reading = true;
    let slowestMs = 0;
    let pings = 0;
    const pinger = (async () => {
      while (reading) {
        const t0 = performance.now();
        const r = await request(`${agent.url}/health/live`);
        await r.body.text();
        slowestMs = Math.max(slowestMs, performance.now() - t0);
        pings++;
      }
    })();
    const res = await request(`${agent.url}${path}`);
    assert.equal(res.statusCode, 200);
    // The agent runs in this process: the answer is kept in chunks while the pings run, and only
    // joined and parsed after, so the measure is of the agent's work, not of the test's.
    const chunks: Buffer[] = [];
    for await (const chunk of res.body) chunks.push(chunk as Buffer);
    reading = false;
    await pinger;
    assert.ok(pings > 1, `pings while the answer went out: ${pings}`);
    return { body: JSON.parse(Buffer.concat(chunks).toString('utf8')), slowestMs };
  }

  const assertValues = (entries: { key: string; value: string }[]): void => {
    assert.equal(entries.length, COUNT);
    entries.forEach((e, i) => {
      assert.equal(e.key, `big/${String(i).padStart(3, '0')}`);
      const v = Buffer.from(e.value, 'base64');
      assert.equal(v.length, VALUE_BYTES);
      assert.ok(v.every((b) => b === i % 256));
    });
  };

  it('answers /api/v1/kv ?recurse over 50 MiB correctly, and /health/live within 100 ms meanwhile', async () => {
    const { body, slowestMs } = await readWhilePinging('/api/v1/kv/big?recurse');
    const b = body as { index: number; entries: { key: string; value: string }[] };
    assert.equal(b.index, agent.registry.kvIndex);
    assertValues(b.entries);
    assert.ok(slowestMs < 100, `slowest /health/live: ${slowestMs.toFixed(1)} ms`);
  });

  it('answers /v1/kv ?recurse over 50 MiB correctly, and /health/live within 100 ms meanwhile', async () => {
    const { body, slowestMs } = await readWhilePinging('/v1/kv/big?recurse');
    assertValues(
      (body as { Key: string; Value: string }[]).map((e) => ({ key: e.Key, value: e.Value })),
    );
    assert.ok(slowestMs < 100, `slowest /health/live: ${slowestMs.toFixed(1)} ms`);
  });

  it('answers ?keys and ?pretty as Consul formats them', async () => {
    const keys = await http(agent.url, 'GET', '/v1/kv/big/0?keys');
    assert.deepEqual(
      keys.body,
      Array.from({ length: COUNT }, (_, i) => `big/${String(i).padStart(3, '0')}`).filter((k) =>
        k.startsWith('big/0'),
      ),
    );
    const pretty = await request(`${agent.url}/v1/kv/big/00?recurse&pretty`);
    const text = await pretty.body.text();
    const parsed = JSON.parse(text) as unknown[];
    assert.equal(parsed.length, 10);
    assert.equal(text, JSON.stringify(parsed, null, 4));
  });

  it('answers a blocking ?recurse when a key under it changes', async () => {
    const index = agent.registry.kvIndex;
    const pending = http(agent.url, 'GET', `/v1/kv/big?recurse&index=${index}&wait=10s`);
    await agent.registry.kvPut('big/100', Buffer.from('new'));
    const r = await pending;
    assert.equal(r.status, 200);
    assert.equal((r.body as unknown[]).length, COUNT + 1);
    assert.ok(Number(r.headers['x-consul-index']) > index);
  });
});
