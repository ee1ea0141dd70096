// The gateway's Istio metrics and access log (issue 21), in-process against a real agent and a
// real upstream: reporter="source" with the gateway's name as source workload, the instance's
// version as destination version; one access log line per request in a file (sample 1), and a
// failed one logged even at sample 0.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createRegistryClient } from '../../src/client/registry-client.js';
import type { RunningGateway } from '../../src/gateway/gateway.js';
import type { AccessLogEntry } from '../../src/proxy/access-log.js';
import { startTestAgent, type TestAgent } from '../helpers/agent.js';
import { call, startTestGateway, startUpstream, until, type Upstream } from '../helpers/gateway.js';

describe('gateway: Istio metrics and access logs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshwork-gateway-obs-'));
  let agent: TestAgent;
  let up: Upstream;
  let all: RunningGateway;
  let failedOnly: RunningGateway;
  const lines = (file: string): AccessLogEntry[] => {
    try {
      return readFileSync(join(dir, file), 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as AccessLogEntry);
    } catch {
      return [];
    }
  };

  before(async () => {
    agent = await startTestAgent();
    up = await startUpstream('users-1');
    const registry = createRegistryClient({ addresses: [agent.url] });
    await registry.register({
      service: 'users',
      id: 'users-1',
      address: '127.0.0.1',
      port: up.port,
      meta: { version: 'v3' },
    });
    // An instance nothing listens on: every attempt is refused.
    await registry.register({ service: 'dead', id: 'dead-1', address: '127.0.0.1', port: 1 });
    await registry.close();
    all = await startTestGateway(agent.url, {
      name: 'edge',
      accessLog: join(dir, 'all.log'),
      accessLogSample: 1,
    });
    failedOnly = await startTestGateway(agent.url, {
      accessLog: join(dir, 'failed.log'),
      accessLogSample: 0,
      istioMetrics: 'off',
    });
  });
  after(async () => {
    await Promise.all([all.close(), failedOnly.close()]);
    await up.close();
    await agent.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reports each request as source with the gateway as workload, and logs it', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await call(all.url, `/u/${i}`, { headers: { host: 'users.mesh.local' } });
      assert.equal(r.status, 200);
    }
    const metrics = (await call(all.adminUrl, '/metrics')).text;
    const line = metrics
      .split('\n')
      .find(
        (l) =>
          l.startsWith('istio_requests_total{') &&
          l.includes('destination_service_name="users"') &&
          l.includes('response_code="200"'),
      );
    assert.ok(line !== undefined, metrics);
    assert.match(line, /reporter="source"/);
    assert.match(line, /source_workload="edge"/);
    assert.match(line, /destination_version="v3"/);
    assert.match(line, / 3$/);
    await until(() => lines('all.log').length === 3, 5_000, 'three lines');
    const e = lines('all.log')[2] as AccessLogEntry;
    assert.equal(e.reporter, 'source');
    assert.equal(e.path, '/u/2');
    assert.equal(e.upstream_host, `127.0.0.1:${up.port}`);
  });

  it('with --istio-metrics off serves and counts no istio_* series', async () => {
    const r = await call(failedOnly.url, '/m', { headers: { host: 'users.mesh.local' } });
    assert.equal(r.status, 200);
    const metrics = (await call(failedOnly.adminUrl, '/metrics')).text;
    assert.match(metrics, /^meshwork_/m);
    assert.doesNotMatch(metrics, /^istio_/m);
  });

  it('at sample 0 logs only the failed requests', async () => {
    assert.equal(
      (await call(failedOnly.url, '/ok', { headers: { host: 'users.mesh.local' } })).status,
      200,
    );
    const refused = await call(failedOnly.url, '/nope', { headers: { host: 'dead.mesh.local' } });
    assert.ok(refused.status >= 500, `${refused.status}`);
    const bad = await call(failedOnly.url, '/bad', { headers: { host: 'bad host!' } });
    assert.equal(bad.status, 400);
    await until(() => lines('failed.log').length >= 1, 5_000, 'the failed request logged');
    // Closing writes out what is buffered: then the file holds everything it will.
    await failedOnly.close();
    const logged = lines('failed.log');
    assert.deepEqual(
      logged.map((x) => x.path),
      ['/nope', '/bad'],
    );
    // (/m, the 200 of the test before, is not logged at sample 0.)
    assert.equal(logged[0]?.response_code, refused.status);
    assert.match(logged[0]?.response_flags ?? '', /UF/);
    assert.deepEqual([logged[1]?.response_code, logged[1]?.response_flags], [400, 'DPE']);
  });
});
