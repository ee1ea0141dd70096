/**
 * @module Panic mode and ejections through the agent's API (issue 21): a real agent, an
 * in-process caller sidecar (its real data path, outlier detection and edge reporter) and three
 * real `inventory` instances, two of which answer every request 500. Traffic through the
 * caller's outbound ejects the two (a DestinationRule: 2 consecutive 5xx, ejected 3 s), which
 * puts the cluster in panic (1 of 3 available, under the 50% threshold): `GET
 * /api/v1/mesh/proxies` lists the caller's cluster health with both instances, their addresses
 * and panic, within a few seconds though the sidecar's report interval is 10 minutes (the
 * reporter sends a health change at once); and once the ejections end, the health goes away.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ProxyStatus, ProxyStatusList } from '../../src/protocol/mesh/snapshot.js';
import type { RunningSidecar } from '../../src/sidecar/sidecar.js';
import { FAST_CHECKS, http, startTestAgent, type TestAgent } from '../helpers/agent.js';
import { startTestApp, startTestSidecar, type TestApp } from '../helpers/sidecar.js';
import { until } from '../helpers/until.js';
import { ejectedHealth } from '../helpers/proxy-health.js';

const DESTINATION_RULE = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'DestinationRule',
  metadata: { name: 'inventory-outliers' },
  spec: {
    host: 'inventory',
    trafficPolicy: {
      outlierDetection: {
        consecutive5xxErrors: 2,
        interval: '1s',
        baseEjectionTime: '3s',
        maxEjectionPercent: 100,
      },
    },
  },
};

/** A server answering every request 500. */
async function failingServer(): Promise<Server> {
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(500).end('broken');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

describe('cluster health in GET /api/v1/mesh/proxies', () => {
  let agent: TestAgent;
  let good: TestApp;
  let bad: Server[];
  let caller: RunningSidecar;
  const dir = mkdtempSync(join(tmpdir(), 'proxy-health-'));

  before(async () => {
    agent = await startTestAgent({ flags: FAST_CHECKS });
    good = await startTestApp();
    bad = [await failingServer(), await failingServer()];
    const ports = [good.port, ...bad.map((s) => (s.address() as AddressInfo).port)];
    for (const [i, port] of ports.entries()) {
      const r = await http(agent.url, 'PUT', '/api/v1/instances', {
        id: `inventory-${i}`,
        service: 'inventory',
        address: '127.0.0.1',
        port,
      });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    }
    const applied = await http(agent.url, 'POST', '/api/v1/mesh/apply', {
      documents: [DESTINATION_RULE],
    });
    assert.equal(applied.status, 200, JSON.stringify(applied.body));
    caller = await startTestSidecar({
      service: 'caller',
      appPort: good.port,
      registry: [agent.url],
      dataDir: dir,
      // Far longer than the test: what reaches the agent is sent on the health change.
      edgeReportIntervalMs: 600_000,
      accessLog: 'off',
    });
  });
  after(async () => {
    await caller?.stop('test');
    await agent?.stop();
    await good?.close();
    for (const s of bad ?? []) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
    rmSync(dir, { recursive: true, force: true });
  });

  const callerStatus = async (): Promise<ProxyStatus | undefined> => {
    const r = await http<ProxyStatusList>(agent.url, 'GET', '/api/v1/mesh/proxies');
    assert.equal(r.status, 200);
    return r.body.proxies.find((p) => p.id === caller.instanceId);
  };

  it('lists the instances the caller ejected and its panic, then drops them when the ejections end', async () => {
    // The rule in force at the caller, and every instance reachable through it.
    await until(
      async () => {
        const dump = (await http(caller.adminUrl, 'GET', '/config_dump')).body;
        const clusters = (dump?.snapshot?.clusters ?? []) as {
          service?: string;
          endpoints?: unknown[];
          outlierDetection?: { consecutive5xxErrors?: number };
        }[];
        return clusters.some(
          (c) =>
            c.service === 'inventory' &&
            c.endpoints?.length === 3 &&
            c.outlierDetection?.consecutive5xxErrors === 2,
        );
      },
      10_000,
      'the outlier detection in force at the caller',
    );
    const before = await until(callerStatus, 10_000, 'the caller on the push stream');
    assert.equal(before.health, undefined, 'nothing to say before any traffic');

    // Calls until both failing instances are ejected (the caller's own metric says so).
    await until(
      async () => {
        for (let i = 0; i < 6; i++)
          await http(caller.outboundUrl, 'GET', '/', undefined, { host: 'inventory' });
        const metrics = (await http(caller.adminUrl, 'GET', '/metrics')).text;
        const m = /^meshwork_sidecar_panic\{service="inventory"\} 1$/m.exec(metrics);
        return m === null ? undefined : true;
      },
      10_000,
      'both failing instances ejected: panic at the caller',
    );
    const ejectedAt = performance.now();
    const status = await until(
      async () => {
        const s = await callerStatus();
        return s?.health?.[0]?.panic === true ? s : undefined;
      },
      5_000,
      'the panic in the API',
    );
    const ms = performance.now() - ejectedAt;
    console.log(`ejection -> API in ${Math.round(ms)} ms`);
    // The reporter looks every second; its report interval (10 min) plays no part.
    assert.ok(ms < 3_000, `${ms} ms`);
    const ports = bad.map((s) => (s.address() as AddressInfo).port);
    assert.equal(status.health?.[0]?.available, 1);
    assert.deepEqual(status.health, [
      ejectedHealth('inventory', 3, [
        { id: 'inventory-1', address: `127.0.0.1:${ports[0]}` },
        { id: 'inventory-2', address: `127.0.0.1:${ports[1]}` },
      ]),
    ]);
    assert.equal(typeof status.healthSince, 'number');

    // No more calls: the ejections end after 3 s, and the agent is told there is nothing to say.
    await until(
      async () => ((await callerStatus())?.health === undefined ? true : undefined),
      10_000,
      'the health cleared in the API',
    );
  });
});
