/** An agent restarted on the same data folder: state survives, re-registration is a no-op. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { http, startTestAgent } from '../helpers/agent.js';

describe('agent restart (sqlite store)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'meshwork-restart-'));
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  it('keeps instances, statuses and KV, and treats the same registration as unchanged', async () => {
    const body = {
      service: 'kept',
      id: 'kept-1',
      address: '10.0.0.1',
      port: 80,
      tags: ['v1'],
      meta: { zone: 'a' },
      checks: [{ ttl: '1h' }, { ttl: '1h', id: 'second', role: 'liveness' }],
    };
    const first = await startTestAgent({ sqlite: true, dataDir });
    const reg = await http(first.url, 'PUT', '/api/v1/instances', body);
    assert.equal(reg.status, 200);
    assert.equal(
      (await http(first.url, 'PUT', '/api/v1/instances/kept-1/heartbeat')).body.status,
      'passing',
    );
    await http(first.url, 'PUT', '/api/v1/kv/cfg', 'v');
    const before = (await http(first.url, 'GET', '/api/v1/instances/kept-1')).body;
    await first.stop();

    const second = await startTestAgent({ sqlite: true, dataDir });
    try {
      const after = (await http(second.url, 'GET', '/api/v1/instances/kept-1')).body;
      assert.deepEqual(after, before, 'same instance, status and indexes after the restart');
      assert.equal(
        after.instance.status,
        'passing',
        'the TTL restarts from the restart, not expired',
      );
      const again = await http(second.url, 'PUT', '/api/v1/instances', body);
      assert.equal(again.body.instance.modifyIndex, before.instance.modifyIndex, 'no write');
      const kv = await http(second.url, 'GET', '/api/v1/kv/cfg');
      assert.equal(Buffer.from(kv.body.entry.value, 'base64').toString(), 'v');
      const next = await http(second.url, 'PUT', '/api/v1/instances', { ...body, port: 81 });
      assert.ok(next.body.index > before.index, 'the index continues past the stored one');
    } finally {
      await second.stop();
    }
  });
});
