/**
 * kill -9 durability: every registration the agent acknowledged with a 2xx survives a kill -9
 * during a burst, and its checks run again after the restart.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { spawnAgent } from '../helpers/cli.js';

describe('durability (kill -9 of a real agent)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'meshwork-kill9-'));
  const probesSeen = new Set<string>();
  let onProbe = (): void => undefined;
  const target = createServer((req, res) => {
    probesSeen.add(req.url ?? '');
    onProbe();
    res.end('ok');
  });
  let targetPort = 0;
  before(async () => {
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    targetPort = (target.address() as AddressInfo).port;
  });
  after(async () => {
    await new Promise<void>((r) => target.close(() => r()));
    rmSync(dataDir, { recursive: true, force: true });
  });

  it(
    'keeps every acknowledged registration and runs its checks again',
    { timeout: 60_000 },
    async () => {
      const agent = await spawnAgent(['--data-dir', dataDir, '--log-level', 'warn']);
      const dispatcher = new Agent({ connections: 64 });
      const acknowledged: string[] = [];
      let next = 0;
      let killed = false;
      const worker = async (): Promise<void> => {
        while (!killed) {
          const id = `burst-${next++}`;
          try {
            const res = await request(`${agent.url}/api/v1/instances`, {
              method: 'PUT',
              dispatcher,
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({
                service: `svc-${next % 7}`,
                id,
                address: '127.0.0.1',
                port: targetPort,
                checks: [{ http: `http://127.0.0.1:${targetPort}/${id}`, interval: '1h' }],
              }),
            });
            await res.body.text();
            if (res.statusCode === 200) acknowledged.push(id);
            else assert.fail(`unexpected ${res.statusCode}`);
          } catch {
            return; // the agent died under us: this one was never acknowledged
          }
        }
      };
      const workers = Array.from({ length: 32 }, () => worker());
      // Kill in the middle of the burst: once enough are acknowledged, with requests still in flight.
      while (acknowledged.length < 400) await new Promise((r) => setImmediate(r));
      agent.child.kill('SIGKILL');
      killed = true;
      assert.equal(await agent.exited, 'SIGKILL');
      await Promise.all(workers);
      await dispatcher.close();
      assert.ok(acknowledged.length >= 400);

      probesSeen.clear();
      const unprobed = (): string[] => acknowledged.filter((id) => !probesSeen.has(`/${id}`));
      const allProbed = new Promise<void>((resolve) => {
        onProbe = () => {
          if (unprobed().length === 0) resolve();
        };
      });
      const again = await spawnAgent(['--data-dir', dataDir, '--log-level', 'warn']);
      try {
        const missing: string[] = [];
        for (const id of acknowledged) {
          const res = await request(`${again.url}/api/v1/instances/${id}`);
          await res.body.text();
          if (res.statusCode !== 200) missing.push(id);
        }
        assert.deepEqual(
          missing,
          [],
          `${missing.length} of ${acknowledged.length} acknowledged registrations lost`,
        );
        // The first probe runs at start for every stored instance (the test's timeout bounds this).
        await allProbed;
        assert.deepEqual(unprobed(), []);
      } finally {
        again.child.kill('SIGTERM');
        assert.equal(await again.exited, 0);
      }
    },
  );
});
