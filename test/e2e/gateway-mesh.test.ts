/**
 * `meshwork gateway --mesh` as the mesh's first proxy, end to end (issue 18): a real agent
 * process, real upstreams registered in it, `meshwork apply -f` of a VirtualService bound to the
 * gateway and a DestinationRule, and a real gateway process. (a) a 90/10 split within 3% over
 * 2,000 requests, then 0/100 after an apply, without restart; (b) a snapshot the gateway refuses
 * shows NACKED with the reason in `meshwork proxy-status` and the gateway keeps routing on its
 * last good version; (c) with the agent killed the gateway keeps routing, and a restarted gateway
 * routes from the snapshot persisted in --data-dir.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Pool, request } from 'undici';
import type { ProxyStatus } from '../../src/protocol/mesh/snapshot.js';
import {
  runCli,
  spawnAgent,
  spawnGateway,
  type AgentProcess,
  type GatewayProcess,
} from '../helpers/cli.js';
import { startUpstream, until, type Upstream } from '../helpers/gateway.js';

/** `meshwork gateway --mesh` against `registry`, its snapshot kept in `dataDir`. */
function spawnMeshGateway(
  registry: string,
  dataDir: string,
  more: readonly string[] = [],
): Promise<GatewayProcess> {
  return spawnGateway(['--mesh', '--registry', registry, '--data-dir', dataDir, ...more]);
}

async function stop(p: { child: ChildProcess; exited: Promise<unknown> }): Promise<void> {
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await p.exited;
}

const HOST = 'shop.example.com';

/** The instances, DestinationRule and the VirtualService bound to the gateway, as one file. */
function meshFile(
  v1: Upstream,
  v2: Upstream,
  weights: [number, number],
  unsupported = false,
): string {
  return `set: shop
services:
  - { service: shop, id: shop-v1, address: 127.0.0.1, port: ${v1.port}, meta: { version: v1 } }
  - { service: shop, id: shop-v2, address: 127.0.0.1, port: ${v2.port}, meta: { version: v2 } }
---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata:
  name: shop
spec:
  host: shop
  trafficPolicy:
    outlierDetection: { consecutive5xxErrors: 5, baseEjectionTime: 10s }
  subsets:
  - name: v1
    labels: { version: v1 }
  - name: v2
    labels: { version: v2 }
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: shop-edge
spec:
  hosts: [${HOST}]
  gateways: [meshwork-gateway]
  http:${
    // An HTTPS upstream: the gateway speaks plain HTTP/1.1 upstream, so it refuses this.
    unsupported
      ? `
  - name: partner
    match: [{ uri: { prefix: /partner } }]
    route:
    - destination: { host: api.partner.example }`
      : ''
  }
  - name: split
    route:
    - destination: { host: shop, subset: v1 }
      weight: ${weights[0]}
    - destination: { host: shop, subset: v2 }
      weight: ${weights[1]}
${
  unsupported
    ? `---
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata:
  name: partner
spec:
  hosts: [api.partner.example]
  ports: [{ number: 443, name: https, protocol: HTTPS }]
  resolution: DNS
`
    : ''
}`;
}

/** The gateway's row in `meshwork proxy-status --json`. */
async function gatewayStatus(registry: string): Promise<ProxyStatus | undefined> {
  const r = await runCli(['proxy-status', '--json', '--registry', registry]);
  assert.equal(r.code, 0, r.stderr);
  const { proxies } = JSON.parse(r.stdout) as { proxies: ProxyStatus[] };
  return proxies.find((p) => p.kind === 'gateway' && p.name === 'meshwork-gateway');
}

/** The version the gateway routes by (its /config_dump). */
async function versionInForce(gw: GatewayProcess): Promise<string | null> {
  const res = await request(`${gw.adminUrl}/config_dump`);
  return ((await res.body.json()) as { version: string | null }).version;
}

/** `n` requests through the gateway, 20 at a time; answers how many each upstream served. */
async function traffic(gw: GatewayProcess, n: number): Promise<Record<string, number>> {
  const pool = new Pool(gw.url, { connections: 20 });
  const seen: Record<string, number> = {};
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      next++;
      const res = await pool.request({ path: '/', method: 'GET', headers: { host: HOST } });
      const text = await res.body.text();
      const key = res.statusCode === 200 ? text : `status ${res.statusCode}`;
      seen[key] = (seen[key] ?? 0) + 1;
    }
  };
  try {
    await Promise.all(Array.from({ length: 20 }, worker));
  } finally {
    await pool.close();
  }
  return seen;
}

describe('meshwork gateway --mesh (processes)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshwork-gw-mesh-'));
  const file = join(dir, 'shop.yaml');
  const dataDir = join(dir, 'gateway');
  let agent: AgentProcess;
  let gw: GatewayProcess;
  let v1: Upstream;
  let v2: Upstream;

  const apply = async (weights: [number, number], unsupported = false): Promise<void> => {
    writeFileSync(file, meshFile(v1, v2, weights, unsupported));
    const r = await runCli(['apply', '-f', file, '--registry', agent.url]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  };
  /** Waits until the gateway runs a version other than `old` and the agent sees it SYNCED. */
  const synced = async (old: string | null): Promise<string> => {
    let version: string | null = null;
    await until(
      async () => {
        version = await versionInForce(gw);
        if (version === null || version === old) return false;
        const s = await gatewayStatus(agent.url);
        return s?.state === 'SYNCED' && s.acked === version;
      },
      20_000,
      'the gateway runs a new snapshot and proxy-status shows it SYNCED',
    );
    return version as unknown as string;
  };

  before(async () => {
    v1 = await startUpstream('v1');
    v2 = await startUpstream('v2');
    agent = await spawnAgent(['--dev']);
  });
  after(async () => {
    if (gw !== undefined) await stop(gw);
    await stop(agent);
    await Promise.all([v1.close(), v2.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('exits 2 when --mesh meets routes: in the config file, naming both', async () => {
    const config = join(dir, 'routes.yaml');
    writeFileSync(config, 'routes:\n  - { service: shop }\n');
    const r = await runCli(['gateway', '--mesh', '--config', config, '--listen', '127.0.0.1:0']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /routes: not allowed with mesh \(--mesh\)/);
  });

  it('(a) splits 90/10 within 3% over 2,000 requests, then 0/100 after an apply, without restart', async () => {
    await apply([90, 10]);
    gw = await spawnMeshGateway(agent.url, dataDir);
    const first = await synced(null);
    const split = await traffic(gw, 2000);
    assert.equal((split.v1 ?? 0) + (split.v2 ?? 0), 2000, JSON.stringify(split));
    assert.ok(Math.abs((split.v1 ?? 0) / 2000 - 0.9) <= 0.03, JSON.stringify(split));
    assert.ok(Math.abs((split.v2 ?? 0) / 2000 - 0.1) <= 0.03, JSON.stringify(split));

    await apply([0, 100]);
    await synced(first);
    assert.deepEqual(await traffic(gw, 1000), { v2: 1000 });
  });

  it('(b) refuses a snapshot it cannot run: proxy-status shows NACKED with the reason, and it keeps routing on its last good version', async () => {
    const good = await versionInForce(gw);
    await apply([0, 100], true);
    let status: ProxyStatus | undefined;
    await until(
      async () => {
        status = await gatewayStatus(agent.url);
        return status?.state === 'NACKED';
      },
      20_000,
      'proxy-status shows the gateway NACKED',
    );
    assert.equal(status?.acked, good);
    assert.notEqual(status?.nackedVersion, good);
    assert.match(
      status?.error ?? '',
      /\.external\.protocol: HTTPS upstreams are not implemented by the gateway/,
    );
    const table = await runCli(['proxy-status', '--registry', agent.url]);
    assert.match(table.stdout, /meshwork-gateway .*NACKED .*external\.protocol/);
    assert.equal(await versionInForce(gw), good);
    assert.deepEqual(await traffic(gw, 200), { v2: 200 });
  });

  it('(c) keeps routing with the control plane down, and a restarted gateway routes from its persisted snapshot', async () => {
    const good = await versionInForce(gw);
    agent.child.kill('SIGKILL');
    await agent.exited;
    assert.deepEqual(await traffic(gw, 200), { v2: 200 });

    await stop(gw);
    // No agent for its CA either: it starts without mTLS after this wait (default 5 s).
    gw = await spawnMeshGateway(agent.url, dataDir, ['--mtls-start-timeout-ms', '500']);
    assert.equal(await versionInForce(gw), good);
    assert.deepEqual(await traffic(gw, 200), { v2: 200 });
  });
});
