/**
 * Consul node-level checks (agent/check/register without ServiceID) over real HTTP and DNS on
 * port 0: they run on the agent, gate every instance of the node, wake blocking queries and
 * survive a restart.
 */
import assert from 'node:assert/strict';
import { Resolver } from 'node:dns/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { http, startTestAgent, type TestAgent } from '../helpers/agent.js';
import { until } from '../helpers/until.js';

interface Check {
  CheckID: string;
  Status: string;
  ServiceID: string;
  Output: string;
  Notes: string;
  Type: string;
}
interface Entry {
  Service: { ID: string };
  Checks: Check[];
}

describe('Consul node-level checks', () => {
  let agent: TestAgent;
  let base: string;
  const put = (path: string, body?: unknown, headers: Record<string, string> = {}) =>
    http(base, 'PUT', `/v1${path}`, body, headers);
  const get = (path: string) => http(base, 'GET', `/v1${path}`);
  const nativeStatuses = async (service: string): Promise<string[]> =>
    (await http(base, 'GET', `/api/v1/services/${service}/instances`)).body.instances.map(
      (i: { status: string }) => i.status,
    );
  const passingIds = async (service: string): Promise<string[]> =>
    ((await get(`/health/service/${service}?passing`)).body as Entry[]).map((e) => e.Service.ID);

  before(async () => {
    agent = await startTestAgent();
    base = agent.url;
    for (const [id, address] of [
      ['web-1', '10.2.0.1'],
      ['web-2', '10.2.0.2'],
    ] as const) {
      const r = await put('/agent/service/register', {
        Name: 'web',
        ID: id,
        Address: address,
        Port: 80,
        Check: { TTL: '1h', Status: 'passing' },
      });
      assert.equal(r.status, 200, r.text);
    }
  });
  after(async () => {
    await agent.stop();
  });

  it('registers a TTL node check that gates every instance of the node in ?passing', async () => {
    const r = await put('/agent/check/register', { Name: 'disk', TTL: '1h', Notes: 'df -h' });
    assert.equal(r.status, 200, r.text);
    const check = (await get('/agent/checks')).body.disk as Check;
    assert.equal(check.CheckID, 'disk', 'CheckID defaults to Name');
    assert.equal(check.ServiceID, '');
    assert.equal(check.Status, 'critical', 'a new check is critical until it reports');
    assert.equal(check.Type, 'ttl');
    assert.equal(check.Notes, 'df -h');
    assert.deepEqual(await passingIds('web'), []);

    // Every entry's Checks carries the node's checks, serfHealth first, then the service's.
    const all = (await get('/health/service/web')).body as Entry[];
    assert.deepEqual(
      all.map((e) => e.Checks.map((c) => c.CheckID)),
      [
        ['serfHealth', 'disk', 'service:web-1'],
        ['serfHealth', 'disk', 'service:web-2'],
      ],
    );

    assert.equal((await put('/agent/check/pass/disk?note=42%25%20used')).status, 200);
    assert.deepEqual(await passingIds('web'), ['web-1', 'web-2']);
    assert.equal((await get('/agent/checks')).body.disk.Output, '42% used');

    // Consul's ?passing keeps only entries whose every check passes: warning is left out.
    assert.equal((await put('/agent/check/warn/disk')).status, 200);
    assert.deepEqual(await passingIds('web'), []);
    assert.equal((await get('/health/service/web')).body.length, 2);
    assert.equal(
      (await put('/agent/check/update/disk', { Status: 'passing', Output: 'ok' })).status,
      200,
    );
    assert.deepEqual(await passingIds('web'), ['web-1', 'web-2']);
  });

  it('lists node checks in health/node, health/state and agent health', async () => {
    const node = (await get('/health/node/test-node')).body as Check[];
    assert.deepEqual(
      node.filter((c) => c.ServiceID === '').map((c) => c.CheckID),
      ['serfHealth', 'disk'],
    );
    await put('/agent/check/fail/disk?note=full');
    const critical = (await get('/health/state/critical')).body as Check[];
    assert.deepEqual(
      critical.map((c) => c.CheckID),
      ['disk'],
    );
    assert.equal(critical[0]?.Output, 'full');
    assert.equal((await get('/health/state/any')).body.length, 4);
    const health = await get('/agent/health/service/id/web-1');
    assert.equal(health.status, 503, 'a failing node check fails the services of the node');
    assert.equal(health.body.AggregatedStatus, 'critical');
    // health/checks/:service lists the service's own checks only, as Consul does.
    assert.deepEqual(
      ((await get('/health/checks/web')).body as Check[]).map((c) => c.CheckID),
      ['service:web-1', 'service:web-2'],
    );
    await put('/agent/check/pass/disk');
  });

  it('wakes a blocking health/service query when the node check changes', async () => {
    const first = await get('/health/service/web?passing');
    assert.equal(first.body.length, 2);
    const index = Number(first.headers['x-consul-index']);
    const waiting = get(`/health/service/web?passing&index=${index}&wait=10s`);
    await put('/agent/check/fail/disk');
    const woke = await waiting;
    assert.deepEqual(woke.body, [], 'the cached answer of the old index is not served');
    assert.ok(Number(woke.headers['x-consul-index']) > index);

    const again = get(`/health/service/web?passing&index=${woke.headers['x-consul-index']}`);
    await put('/agent/check/pass/disk');
    assert.equal((await again).body.length, 2);
    // Catalog-wide reads move too (health/node, health/state, agent/checks read the catalog index).
    const node = await get('/health/node/test-node');
    const nodeWait = get(`/health/node/test-node?index=${node.headers['x-consul-index']}`);
    await put('/agent/check/warn/disk');
    const changed = (await nodeWait).body as Check[];
    assert.equal(changed.find((c) => c.CheckID === 'disk')?.Status, 'warning');
    await put('/agent/check/pass/disk');
  });

  it('makes native and DNS readers see the instances as critical', async () => {
    const resolver = new Resolver();
    resolver.setServers([`127.0.0.1:${agent.dns?.port ?? 0}`]);
    assert.deepEqual((await resolver.resolve4('web.service.consul')).sort(), [
      '10.2.0.1',
      '10.2.0.2',
    ]);
    await put('/agent/check/fail/disk?note=full');
    assert.deepEqual(await nativeStatuses('web'), ['critical', 'critical']);
    const native = await http(base, 'GET', '/api/v1/instances/web-1');
    assert.equal(native.body.instance.statusReason, 'node check "disk" is critical: full');
    await assert.rejects(resolver.resolve4('web.service.consul'), { code: 'ENOTFOUND' });
    // The node's checks are no instance of the native API.
    for (const [method, path] of [
      ['GET', '/api/v1/instances/_node:test-node'],
      ['PUT', '/api/v1/instances/_node:test-node/heartbeat'],
      ['DELETE', '/api/v1/instances/_node:test-node'],
    ] as const) {
      assert.equal((await http(base, method, path)).status, 404, `${method} ${path}`);
    }
    assert.deepEqual(
      (await http(base, 'GET', '/api/v1/services')).body.services.map(
        (s: { name: string }) => s.name,
      ),
      ['web'],
    );
    await put('/agent/check/pass/disk');
    assert.deepEqual(await nativeStatuses('web'), ['passing', 'passing']);
    assert.equal((await resolver.resolve4('web.service.consul')).length, 2);
  });

  it('runs HTTP node checks with the agent probes', async () => {
    let code = 503;
    const target: Server = createServer((_req, res) => {
      res.statusCode = code;
      res.end(code === 200 ? 'ok' : 'down');
    });
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(target.address() as AddressInfo).port}/health`;
      const r = await put('/agent/check/register', {
        name: 'uplink',
        id: 'uplink-http',
        http: url,
        interval: '1s',
        timeout: '1s',
      });
      assert.equal(r.status, 200, r.text);
      // The first probe runs at once and sees the 503.
      const failed = await until(
        async () => {
          const c = (await get('/agent/checks')).body['uplink-http'] as Check | undefined;
          return c?.Output.includes('503') === true ? c : undefined;
        },
        5_000,
        'probed',
      );
      assert.equal(failed.Status, 'critical');
      assert.equal(failed.Type, 'http');
      assert.deepEqual(await passingIds('web'), []);
      code = 200;
      await until(
        async () => ((await passingIds('web')).length === 2 ? true : undefined),
        5_000,
        'passing again',
      );
    } finally {
      assert.equal((await put('/agent/check/deregister/uplink-http')).status, 200);
      await new Promise((r) => target.close(r));
    }
  });

  it('refuses bad node checks with a 400 naming the problem', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [
        { Name: 'x', HTTP: 'http://127.0.0.1:1/', TCP: '127.0.0.1:1', Interval: '5s' },
        /HTTP and TCP/,
      ],
      [{ Name: 'x', TCP: '127.0.0.1:1', Interval: 'soon' }, /Interval: must be a duration/],
      [{ Name: 'x', TCP: '127.0.0.1:1' }, /Interval must be > 0/],
      [{ Name: 'x', TTL: '10s', Interval: '5s' }, /Interval and TTL cannot both be specified/],
      [{ Name: 'x' }, /TTL must be > 0/],
      [{ Name: 'x', TTL: '10s', Status: 'bad' }, /Status for checks must/],
      [{ Name: 'x', GRPC: '127.0.0.1:1', Interval: '5s' }, /GRPC checks are not supported/],
      [{ TTL: '10s' }, /Missing check name/],
      [{ Name: 'x', CheckID: 'service:web-1', TTL: '10s' }, /already a check of service "web-1"/],
    ];
    for (const [body, message] of cases) {
      const r = await put('/agent/check/register', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match(r.text, message);
    }
    // A service check may not take a node check's id either.
    const r = await put('/agent/check/register', { Name: 'disk', ServiceID: 'web-1', TTL: '1s' });
    assert.equal(r.status, 400);
    assert.match(r.text, /already a check of the node/);
    const s = await put('/agent/service/register', {
      Name: 'clash',
      Check: { CheckID: 'disk', TTL: '1s' },
    });
    assert.equal(s.status, 400);
    assert.match(s.text, /already a check of the node/);
    // DeregisterCriticalServiceAfter is accepted; Consul ignores it without a service.
    assert.equal(
      (
        await put('/agent/check/register', {
          Name: 'reaped',
          TTL: '10s',
          DeregisterCriticalServiceAfter: '1m',
        })
      ).status,
      200,
    );
    assert.equal((await put('/agent/check/deregister/reaped')).status, 200);
  });

  it('accepts GET for pass and deregister (python-consul 0.7) and deregisters', async () => {
    assert.equal((await http(base, 'GET', '/v1/agent/check/fail/disk')).status, 200);
    assert.deepEqual(await passingIds('web'), []);
    const waiting = get(
      `/health/service/web?passing&index=${(await get('/health/service/web')).headers['x-consul-index']}`,
    );
    assert.equal((await http(base, 'GET', '/v1/agent/check/deregister/disk')).status, 200);
    assert.equal((await waiting).body.length, 2, 'deregistering wakes the query too');
    assert.equal((await get('/agent/checks')).body.disk, undefined);
    assert.deepEqual(
      ((await get('/health/node/test-node')).body as Check[])
        .filter((c) => c.ServiceID === '')
        .map((c) => c.CheckID),
      ['serfHealth'],
    );
    assert.equal((await put('/agent/check/deregister/disk')).status, 404);
    assert.equal((await put('/agent/check/pass/disk')).status, 404);
    assert.deepEqual(await nativeStatuses('web'), ['passing', 'passing']);
  });

  it('takes checks of catalog/register without a Service as node checks, all or none', async () => {
    const refused = await put('/catalog/register', {
      Node: 'test-node',
      Checks: [
        { CheckID: 'mem', Name: 'mem', Definition: { TTL: '1h' } },
        { CheckID: 'bad', Name: 'bad', Definition: { TTL: 'soon' } },
      ],
    });
    assert.equal(refused.status, 400, refused.text);
    assert.equal((await get('/agent/checks')).body.mem, undefined, 'nothing of a refused request');

    const r = await put('/catalog/register', {
      Node: 'test-node',
      Check: { CheckID: 'mem', Name: 'mem', Definition: { TTL: '1h' } },
      Checks: [{ CheckID: 'web-1-extra', Name: 'extra', ServiceID: 'web-1', TTL: '1h' }],
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body, true);
    const checks = (await get('/agent/checks')).body as Record<string, Check>;
    assert.equal(checks.mem?.ServiceID, '', 'no ServiceID: a check of the node');
    assert.equal(checks['web-1-extra']?.ServiceID, 'web-1', 'a ServiceID: that service’s check');
    assert.deepEqual(await passingIds('web'), [], 'a critical node check gates every instance');
    assert.equal((await put('/agent/check/pass/mem')).status, 200);
    assert.deepEqual(await passingIds('web'), ['web-2'], 'web-1 still has its new critical check');
    for (const id of ['mem', 'web-1-extra'])
      assert.equal((await put('/agent/check/deregister/' + id)).status, 200);
    assert.deepEqual(await passingIds('web'), ['web-1', 'web-2']);
  });
});

describe('Consul node-level checks across a restart (sqlite store)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'meshwork-node-checks-'));
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  it('keeps the node check, its status and its effect, and runs it again', async () => {
    const first = await startTestAgent({ sqlite: true, dataDir });
    const put = (a: TestAgent, path: string, body?: unknown) =>
      http(a.url, 'PUT', `/v1${path}`, body);
    try {
      assert.equal(
        (await put(first, '/agent/service/register', { Name: 'db', Port: 5432 })).status,
        200,
      );
      assert.equal(
        (await put(first, '/agent/check/register', { Name: 'mem', TTL: '1h', Status: 'passing' }))
          .status,
        200,
      );
      assert.equal((await put(first, '/agent/check/fail/mem?note=oom')).status, 200);
    } finally {
      await first.stop();
    }

    const second = await startTestAgent({ sqlite: true, dataDir });
    try {
      const checks = (await http(second.url, 'GET', '/v1/agent/checks')).body;
      assert.equal(checks.mem.Status, 'critical');
      assert.equal(checks.mem.Output, 'oom');
      assert.deepEqual((await http(second.url, 'GET', '/v1/health/service/db?passing')).body, []);
      // The TTL check runs again: a pass is heard and lets the service through.
      assert.equal((await put(second, '/agent/check/pass/mem')).status, 200);
      assert.equal((await http(second.url, 'GET', '/v1/health/service/db?passing')).body.length, 1);
      assert.equal((await put(second, '/agent/check/deregister/mem')).status, 200);
    } finally {
      await second.stop();
    }
    const third = await startTestAgent({ sqlite: true, dataDir });
    try {
      assert.equal((await http(third.url, 'GET', '/v1/agent/checks')).body.mem, undefined);
    } finally {
      await third.stop();
    }
  });
});
