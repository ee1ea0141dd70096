/** A watcher that stops reading is dropped (and told to resync); the others get every event. */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { http, startTestAgent, type TestAgent } from '../helpers/agent.js';
import { collectSse } from '../helpers/sse.js';

describe('slow watchers', () => {
  let agent: TestAgent;
  before(async () => {
    agent = await startTestAgent();
  });
  after(async () => {
    await agent.stop();
  });

  it('drops a stream whose reader stalls, without stalling a healthy stream', async () => {
    const { port } = new URL(agent.url);
    // A raw client that sends the request and then never reads: its socket buffers fill up.
    const stalled = connect(Number(port), '127.0.0.1');
    await new Promise<void>((r) => stalled.once('connect', () => r()));
    stalled.pause();
    stalled.write(`GET /api/v1/watch?service=bulky HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
    const healthy = await collectSse<{ type: string }>(`${agent.url}/api/v1/watch?service=bulky`);
    await healthy.until(1);
    while (agent.registry.watchers().streams < 2) await new Promise((r) => setImmediate(r));

    // ~48 KiB per event: tags and meta at their limits.
    const tags = Array.from({ length: 64 }, (_, i) => `${i}-${'t'.repeat(250)}`);
    const meta = Object.fromEntries(
      Array.from({ length: 64 }, (_, i) => [`k${i}`, 'v'.repeat(500)]),
    );
    let sent = 0;
    while (agent.registry.watchers().dropped === 0) {
      const r = await http(agent.url, 'PUT', '/api/v1/instances', {
        service: 'bulky',
        id: `bulky-${sent}`,
        address: '10.0.0.1',
        port: 1,
        tags,
        meta,
      });
      assert.equal(r.status, 200);
      sent++;
      assert.ok(sent < 5000, 'the stalled watcher was never dropped');
    }
    assert.equal(agent.registry.watchers().streams, 1, 'only the healthy stream remains');
    await healthy.until(1 + sent);
    assert.deepEqual(
      healthy.events.slice(1).map((e) => e.type),
      Array.from({ length: sent }, () => 'upsert'),
    );
    await healthy.close();
    stalled.destroy();
  });
});
