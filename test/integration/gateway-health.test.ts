/**
 * @module A mesh-mode gateway reports its clusters' health (issue 21): real upstreams (one
 * answering 200, two answering 500), the gateway's real engine and outlier detection fed a
 * snapshot in-process, and a stand-in for the agent's `POST /api/v1/mesh/edges` on a real socket
 * that keeps what it is sent. Calls through the gateway eject the two failing instances, which
 * puts the cluster in panic: the gateway posts that health within a couple of seconds, though
 * its report interval is 10 minutes. (The agent's side, and a sidecar's, are
 * test/integration/proxy-health.test.ts.)
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../src/core/logger.js';
import { startGateway, type RunningGateway } from '../../src/gateway/gateway.js';
import { resolveGatewayOptions } from '../../src/gateway/options.js';
import type { ProxyEdgeReport } from '../../src/protocol/mesh/graph.js';
import { http } from '../helpers/agent.js';
import { MESH_GATEWAY_FLAGS, TestFeed } from '../helpers/mesh-gateway.js';
import {
  meshSnapshot,
  snapshotCluster,
  snapshotEndpoint,
  snapshotRoute,
} from '../helpers/mesh-snapshot.js';
import { ejectedHealth } from '../helpers/proxy-health.js';
import { until } from '../helpers/until.js';

/** A server on 127.0.0.1:0 answering every request with `status`, or keeping its JSON bodies. */
async function server(status: number, bodies?: unknown[]): Promise<Server> {
  const s = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (bodies !== undefined && req.method === 'POST')
        bodies.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      res.writeHead(status).end(status === 204 ? undefined : 'x');
    });
  });
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  return s;
}
const portOf = (s: Server): number => (s.address() as AddressInfo).port;

describe('a mesh-mode gateway reports ejections and panic', () => {
  const reports: ProxyEdgeReport[] = [];
  let agent: Server;
  let upstreams: Server[];
  let gateway: RunningGateway;
  before(async () => {
    agent = await server(204, reports);
    upstreams = [await server(200), await server(500), await server(500)];
    const endpoints = upstreams.map((u, i) => snapshotEndpoint(`inventory-${i}`, portOf(u)));
    const snapshot = meshSnapshot(
      [snapshotRoute('inventory', { backends: [{ cluster: 'inventory', weight: 100 }] })],
      [
        snapshotCluster('inventory', {
          endpoints,
          outlierDetection: {
            consecutive5xxErrors: 2,
            intervalMs: 1_000,
            baseEjectionMs: 30_000,
            maxEjectionPercent: 100,
            minHealthPercent: 0,
          },
        }),
      ],
    );
    const options = resolveGatewayOptions({
      flags: {
        ...MESH_GATEWAY_FLAGS,
        registry: [`http://127.0.0.1:${portOf(agent)}`],
        // Far longer than the test: what is sent goes on the health change.
        edgeReportIntervalMs: 600_000,
      },
    });
    gateway = await startGateway(options, silentLogger, { snapshotFeed: new TestFeed(snapshot) });
  });
  after(async () => {
    await gateway?.close();
    for (const s of [agent, ...(upstreams ?? [])]) {
      s?.closeAllConnections();
      await new Promise((r) => s?.close(r));
    }
  });

  it('posts the two ejected instances and the panic, on the change', async () => {
    const health = () => reports.findLast((r) => r.health !== undefined)?.health;
    assert.equal(health(), undefined);
    await until(
      async () => {
        for (let i = 0; i < 6; i++) await http(gateway.url, 'GET', '/', undefined, { host: 'x' });
        const c = [...gateway.clusters()].find((x) => x.name === 'inventory');
        return c?.panic === true ? true : undefined;
      },
      10_000,
      'both failing instances ejected: panic at the gateway',
    );
    const sent = await until(() => health()?.[0]?.panic, 3_000, 'the panic posted');
    assert.equal(sent, true);
    assert.deepEqual(health(), [
      ejectedHealth('inventory', 3, [
        { id: 'inventory-1', address: `127.0.0.1:${portOf(upstreams[1] as Server)}` },
        { id: 'inventory-2', address: `127.0.0.1:${portOf(upstreams[2] as Server)}` },
      ]),
    ]);
    const last = reports.findLast((r) => r.health !== undefined);
    // The gateway's id on the push stream (name~host~pid), which the agent keeps it under.
    assert.match(last?.proxy ?? '', /^meshwork-gateway~/);
  });
});
