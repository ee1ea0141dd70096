/**
 * @module Root rotation of the mesh CA under load, through real processes (issue 20: "root
 * rotation under load loses no request"): an agent, `inventory` behind its sidecar (the policy
 * fixture app) under a mesh-wide STRICT PeerAuthentication, and a caller sidecar; 500 requests
 * a second for 8 s (after a 2 s warm-up) through the caller's outbound port while `meshwork ca
 * rotate` runs at 1 s. Every request must be answered 200 by the app over mTLS, and both
 * sidecars must end on leaves of the new root (their /config_dump), the old root kept in the
 * bundle through the overlap.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { http } from '../helpers/agent.js';
import { runCli, type AgentProcess, type SidecarProcess } from '../helpers/cli.js';
import { openLoop } from '../helpers/open-loop.js';
import { MeshFixture } from '../helpers/mesh-fixture.js';
import { until } from '../helpers/until.js';

const APP = fileURLToPath(new URL('../fixtures/policy-app.mjs', import.meta.url));
const RATE = 500;
const DURATION_MS = 8_000;
const ROTATE_AT_MS = 1_000;

const STRICT = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: istio-system
spec:
  mtls:
    mode: STRICT
`;

interface MtlsDump {
  state: string;
  served: boolean;
  rootId: string;
  activeRootId: string;
}

describe('mesh CA root rotation under load through real sidecars', () => {
  let mesh: MeshFixture;
  let agent: AgentProcess;
  let server: SidecarProcess;
  let caller: SidecarProcess;

  const dump = async (s: SidecarProcess) =>
    (await http(s.adminUrl, 'GET', '/config_dump')).body as {
      version: string | null;
      mtls: MtlsDump;
    };

  before(async () => {
    mesh = await MeshFixture.start('sidecar-rotation-');
    agent = mesh.agent;
    [server, caller] = await Promise.all([
      mesh.sidecar('inventory', { app: APP }),
      mesh.sidecar('shop'),
    ]);
    const file = join(mesh.dir, 'strict.yaml');
    writeFileSync(file, STRICT);
    const before = (await dump(server)).version;
    const applied = await runCli(['apply', '-f', file], { MESHWORK_ADDR: agent.url });
    assert.equal(applied.code, 0, applied.stderr);
    await until(async () => (await dump(server)).version !== before, 10_000, 'STRICT in force');
    await until(
      async () => {
        const r = await http(caller.outboundUrl, 'GET', '/warm', undefined, { host: 'inventory' });
        return (
          r.status === 200 &&
          (r.body as { headers: Record<string, string> }).headers['x-meshwork-source-principal'] ===
            'cluster.local/ns/default/sa/shop'
        );
      },
      20_000,
      'shop reaching inventory over mTLS',
    );
  });

  after(async () => {
    await mesh?.stop();
  });

  it('loses no request while the root rotates, and both sidecars move to the new root', async () => {
    const [s0, c0] = [(await dump(server)).mtls, (await dump(caller)).mtls];
    assert.equal(s0.state, 'on');
    assert.equal(s0.served, true);
    assert.equal(c0.rootId, s0.rootId, 'both leaves from the one root');
    // Warm-up: the same load for 2 s first, so the measured run sees the steady state (node's
    // code is cold at first in every process: several times the CPU per request on 2 cores).
    await openLoop({
      origin: caller.outboundUrl,
      ratePerSecond: RATE,
      durationMs: 2_000,
      headers: { host: 'inventory' },
      timeoutMs: 10_000,
    });
    let rotated: ReturnType<typeof runCli> | undefined;
    const result = await openLoop({
      origin: caller.outboundUrl,
      ratePerSecond: RATE,
      durationMs: DURATION_MS,
      headers: { host: 'inventory' },
      timeoutMs: 10_000,
      actions: [
        {
          afterMs: ROTATE_AT_MS,
          run: () => {
            rotated = runCli(['ca', 'rotate', '--overlap', '10m', '--json'], {
              MESHWORK_ADDR: agent.url,
            });
          },
        },
      ],
    });
    assert.ok(rotated !== undefined, 'the rotation ran during the load');
    const r = await rotated;
    assert.equal(r.code, 0, r.stderr);
    const roots = JSON.parse(r.stdout) as { activeRootId: string; roots: { id: string }[] };
    assert.notEqual(roots.activeRootId, s0.rootId);
    assert.deepEqual(
      roots.roots.map((x) => x.id),
      [roots.activeRootId, s0.rootId],
      'the old root stays in the bundle through the overlap',
    );

    const failed = result.records.filter((x) => x.status !== 200);
    assert.equal(result.records.length, (RATE * DURATION_MS) / 1000);
    assert.deepEqual(
      failed.slice(0, 20).map((x) => ({ at: Math.round(x.sentMs), s: x.status, e: x.error })),
      [],
      `${failed.length} of ${result.records.length} failed`,
    );
    // Each sidecar gets a leaf of the new root within its rotation jitter (up to 5 s).
    for (const [name, s] of [
      ['inventory', server],
      ['shop', caller],
    ] as const)
      await until(
        async () => (await dump(s)).mtls.rootId === roots.activeRootId,
        20_000,
        `${name}'s leaf from the new root`,
      );
    // And traffic still flows on the new leaves.
    const after = await http(caller.outboundUrl, 'GET', '/after', undefined, { host: 'inventory' });
    assert.equal(after.status, 200);
  });
});
