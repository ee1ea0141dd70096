/** The Consul-compatible API (/v1) over real HTTP on port 0: wire quirks, endpoints, errors. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { http, startTestAgent, type TestAgent } from '../helpers/agent.js';

describe('Consul API', () => {
  let agent: TestAgent;
  let base: string;
  const put = (path: string, body?: unknown, headers: Record<string, string> = {}) =>
    http(base, 'PUT', `/v1${path}`, body, headers);
  const get = (path: string, headers: Record<string, string> = {}) =>
    http(base, 'GET', `/v1${path}`, undefined, headers);

  before(async () => {
    agent = await startTestAgent();
    base = agent.url;
  });
  after(async () => {
    await agent.stop();
  });

  describe('wire conventions', () => {
    it('matches keys case-insensitively and snake_case, ignores unknown fields, needs no Content-Type', async () => {
      const body = JSON.stringify({
        NAME: 'wire',
        id: 'wire-1',
        Address: '127.0.0.1',
        port: 7000,
        Tags: ['a'],
        enable_tag_override: true,
        NoSuchField: { x: 1 },
        Meta: { 'Mixed-Case': 'kept' },
        check: { TTL: '10s', deregister_critical_service_after: '1m', notes: 'n' },
      });
      const r = await http(base, 'PUT', '/v1/agent/service/register', body);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.text, '');
      const s = await get('/agent/service/wire-1');
      assert.equal(s.status, 200);
      assert.equal(s.headers['content-type'], 'application/json; charset=utf-8');
      assert.deepEqual(s.body.Meta, { 'Mixed-Case': 'kept' }, 'user map keys stay verbatim');
      assert.equal(s.body.EnableTagOverride, true);
      assert.equal(s.body.Port, 7000);
      const checks = (await get('/agent/checks')).body;
      assert.equal(checks['service:wire-1'].Notes, 'n');
      assert.equal(checks['service:wire-1'].Status, 'critical');
    });

    it('answers errors in plain text with Consul status codes, and keeps running', async () => {
      const cases: [string, string, unknown, number, RegExp][] = [
        ['PUT', '/agent/service/register', '{', 400, /^Request decode failed: /],
        ['PUT', '/agent/service/register', '', 400, /^Request decode failed: EOF$/],
        [
          'PUT',
          '/agent/service/register',
          { Name: 'x', Port: 'eighty' },
          400,
          /Port: must be a whole number/,
        ],
        ['PUT', '/agent/service/register', { Port: 80 }, 400, /^Missing service name$/],
        ['PUT', '/agent/service/register', { Name: 'x', Tags: 'a' }, 400, /Tags: must be a list/],
        [
          'PUT',
          '/agent/service/register',
          { Name: 'x', Check: { HTTP: 'http://a/' } },
          400,
          /^Invalid check: Interval must be > 0/,
        ],
        [
          'PUT',
          '/agent/service/register',
          { Name: 'x', Check: { TTL: '1s', Interval: '1s' } },
          400,
          /^Invalid check: Interval and TTL/,
        ],
        [
          'PUT',
          '/agent/service/register',
          { Name: 'x', Check: {} },
          400,
          /^Invalid check: TTL must be > 0/,
        ],
        [
          'PUT',
          '/agent/service/register',
          { Name: 'x', Check: { Args: ['/bin/true'], Interval: '1s' } },
          400,
          /Args checks are not supported/,
        ],
        [
          'PUT',
          '/agent/service/register',
          { Name: 'x', Check: { TTL: 'soon' } },
          400,
          /Check\.TTL: must be a duration/,
        ],
        [
          'PUT',
          '/agent/service/register',
          { Name: 'x', Check: { TTL: '1s', Status: 'great' } },
          400,
          /^Status for checks must/,
        ],
        [
          'PUT',
          '/agent/service/register',
          { Name: 'x', Meta: { 'consul-x': '1' } },
          400,
          /reserved prefix/,
        ],
        [
          'PUT',
          '/agent/service/register',
          { Name: 'x', Weights: { Passing: 0 } },
          400,
          /^Invalid Weights/,
        ],
        [
          'PUT',
          '/agent/service/register',
          { Name: 'x', Address: '0.0.0.0' },
          400,
          /^Invalid service address$/,
        ],
        ['PUT', '/agent/service/register', { Name: 'Bad_Name' }, 400, /^Invalid service name/],
        ['PUT', '/agent/service/register', [1, 2], 400, /must be a JSON object/],
        ['PUT', '/agent/service/deregister/nope', undefined, 404, /^Unknown service ID "nope"/],
        ['PUT', '/agent/check/pass/nope', undefined, 404, /^Unknown check ID "nope"/],
        ['PUT', '/agent/service/maintenance/wire-1', undefined, 400, /^Missing value for enable$/],
        [
          'PUT',
          '/agent/service/maintenance/wire-1?enable=maybe',
          undefined,
          400,
          /^Invalid value for enable/,
        ],
        [
          'GET',
          '/health/service/wire?passing=perhaps',
          undefined,
          400,
          /^Invalid value for \?passing$/,
        ],
        ['GET', '/health/service/wire?index=abc', undefined, 400, /^Invalid index$/],
        ['GET', '/health/service/wire?index=1&wait=10', undefined, 400, /^Invalid wait time$/],
        [
          'GET',
          '/health/service/wire?stale&consistent',
          undefined,
          400,
          /^Cannot specify \?stale with \?consistent/,
        ],
        ['GET', '/health/service/wire?dc=dc9', undefined, 500, /^No path to datacenter$/],
        [
          'GET',
          '/health/service/wire?filter=Service.ID%20%3D%3D',
          undefined,
          400,
          /^Failed to create boolean expression evaluator/,
        ],
        ['GET', '/health/state/sideways', undefined, 400, /^Invalid check state/],
        ['GET', '/kv/', undefined, 400, /^Missing key name$/],
        ['PUT', '/kv/a?cas=1&acquire=s', undefined, 400, /^Conflicting flags: /],
        [
          'GET',
          '/no/such/endpoint',
          undefined,
          404,
          /^Invalid URL path: not a recognized HTTP API endpoint/,
        ],
        ['PUT', '/agent/token/default', undefined, 401, /^ACL support disabled$/],
      ];
      for (const [method, path, body, status, text] of cases) {
        const r = await http(base, method, `/v1${path}`, body);
        assert.equal(r.status, status, `${method} ${path}: ${r.text}`);
        assert.match(r.text, text, `${method} ${path}`);
        if (r.text !== '')
          assert.match(String(r.headers['content-type']), /^text\/plain/, `${method} ${path}`);
      }
      assert.equal((await get('/agent/self')).status, 200, 'the agent still answers');
    });

    it('refuses an oversized body, and a KV value over 512 KiB with 413', async () => {
      const big = await put('/kv/big', Buffer.alloc(600 * 1024, 97));
      assert.equal(big.status, 413);
      assert.match(big.text, /too large, max size: 524288 bytes/);
      const huge = await put('/agent/service/register', Buffer.alloc(2 * 1024 * 1024, 32));
      assert.equal(huge.status, 413);
      assert.match(String(huge.headers['content-type']), /^text\/plain/);
    });

    it('answers 405 with Allow for a method the endpoint does not take, and OPTIONS', async () => {
      const r = await http(base, 'DELETE', '/v1/agent/services');
      assert.equal(r.status, 405);
      assert.equal(r.text, 'method DELETE not allowed');
      assert.equal(r.headers.allow, 'OPTIONS,GET');
      const o = await http(base, 'OPTIONS', '/v1/kv/x');
      assert.equal(o.status, 200);
      assert.equal(o.headers.allow, 'OPTIONS,GET,PUT,DELETE');
    });

    it('accepts tokens from ?token=, X-Consul-Token and Authorization: Bearer (not enforced)', async () => {
      for (const [path, headers] of [
        ['/agent/services?token=secret', {}],
        ['/agent/services', { 'x-consul-token': 'secret' }],
        ['/agent/services', { authorization: 'Bearer secret' }],
      ] as const) {
        assert.equal((await get(path, headers)).status, 200);
      }
    });

    it('sets X-Consul-Index (never 0) and the leader headers on reads, 404s included', async () => {
      for (const path of [
        '/health/service/none',
        '/catalog/services',
        '/catalog/service/none',
        '/catalog/nodes',
        '/health/state/any',
        '/kv/missing',
      ]) {
        const r = await get(path);
        assert.ok(Number(r.headers['x-consul-index']) >= 1, path);
        assert.equal(r.headers['x-consul-knownleader'], 'true', path);
        assert.equal(r.headers['x-consul-lastcontact'], '0', path);
      }
      const missing = await get('/kv/missing');
      assert.equal(missing.status, 404);
      assert.equal(missing.text, '');
      assert.equal(
        (await get('/catalog/nodes?stale')).headers['x-consul-effective-consistency'],
        'stale',
      );
      assert.equal((await get('/health/service/none?pretty')).text, '[]');
    });
  });

  describe('legacy verbs (python-consul 0.7)', () => {
    it('accepts GET on deregister and check pass/warn/fail, but not from a browser', async () => {
      await put('/agent/service/register', {
        Name: 'legacy',
        ID: 'legacy-1',
        Port: 1,
        Check: { TTL: '30s' },
      });
      const browser = await get('/agent/check/pass/service:legacy-1', {
        origin: 'http://evil.example',
      });
      assert.equal(browser.status, 403);
      assert.match(browser.text, /Origin "http:\/\/evil.example" may not call this agent/);
      // A page of the agent's own origin passes the origin check, and still may not write by GET.
      const own = await get('/agent/check/pass/service:legacy-1', { origin: base });
      assert.equal(own.status, 403);
      assert.match(own.text, /refused for browser requests/);
      const site = await get('/agent/service/deregister/legacy-1', {
        'sec-fetch-site': 'cross-site',
      });
      assert.equal(site.status, 403);
      assert.equal((await get('/agent/check/warn/service:legacy-1?note=hmm')).status, 200);
      const checks = (await get('/agent/checks')).body;
      assert.equal(checks['service:legacy-1'].Status, 'warning');
      assert.equal(checks['service:legacy-1'].Output, 'hmm');
      assert.equal(
        (await get('/agent/service/deregister/legacy-1', { 'sec-fetch-site': 'none' })).status,
        200,
      );
      assert.equal((await get('/agent/service/legacy-1')).status, 404);
    });

    it('answers 405 to those GETs when consul.legacyVerbs is off', async () => {
      const strict = await startTestAgent({ flags: { consul: { legacyVerbs: false } } });
      try {
        await http(strict.url, 'PUT', '/v1/agent/service/register', {
          Name: 'x',
          ID: 'x-1',
          Check: { TTL: '9s' },
        });
        const r = await http(strict.url, 'GET', '/v1/agent/service/deregister/x-1');
        assert.equal(r.status, 405);
        assert.equal(r.headers.allow, 'OPTIONS,PUT');
        assert.equal(
          (await http(strict.url, 'PUT', '/v1/agent/service/deregister/x-1')).status,
          200,
        );
      } finally {
        await strict.stop();
      }
    });
  });

  describe('blocking queries', () => {
    it('does not block on index=0, blocks past the index, and wakes on a change', async () => {
      const first = await get('/health/service/blocky?index=0&wait=5s');
      assert.equal(first.status, 200);
      const index = first.headers['x-consul-index'];
      const started = Date.now();
      const waiting = get(`/health/service/blocky?index=${index}&wait=5s`);
      await put('/agent/service/register', { Name: 'blocky', Port: 80 });
      const woke = await waiting;
      assert.ok(Date.now() - started < 3000);
      assert.equal(woke.body.length, 1);
      assert.ok(Number(woke.headers['x-consul-index']) > Number(index));
    });

    it('returns the unchanged result after wait when nothing changes', async () => {
      const first = await get('/catalog/service/quiet');
      const r = await get(
        `/catalog/service/quiet?index=${first.headers['x-consul-index']}&wait=50ms`,
      );
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-consul-index'], first.headers['x-consul-index']);
      assert.deepEqual(r.body, []);
    });

    it('wakes a single-key KV watch on delete, with a 404 carrying a higher index', async () => {
      await put('/kv/watched', 'v');
      const first = await get('/kv/watched');
      const index = first.headers['x-consul-index'];
      assert.equal(index, String(first.body[0].ModifyIndex));
      const waiting = get(`/kv/watched?index=${index}&wait=5s`);
      await http(base, 'DELETE', '/v1/kv/watched');
      const r = await waiting;
      assert.equal(r.status, 404);
      assert.ok(Number(r.headers['x-consul-index']) > Number(index));
    });
  });

  describe('health and catalog', () => {
    before(async () => {
      for (const [id, tags, env] of [
        ['api-1', ['v1', 'Blue'], 'prod'],
        ['api-2', ['v2'], 'staging'],
      ] as const) {
        const r = await put('/agent/service/register', {
          Name: 'api',
          ID: id,
          Address: '10.0.0.1',
          Port: 8080,
          Tags: tags,
          Meta: { env },
          Checks: [
            { TTL: '30s', Status: 'passing' },
            { TTL: '30s', Name: 'second' },
          ],
        });
        assert.equal(r.status, 200, r.text);
      }
      await put('/agent/check/pass/service:api-1:2');
    });

    it('numbers several checks service:<id>:<n> and filters ?passing on every check', async () => {
      const all = (await get('/health/service/api')).body;
      assert.deepEqual(
        all.map((e: { Checks: { CheckID: string }[] }) => e.Checks.map((c) => c.CheckID)),
        [
          ['serfHealth', 'service:api-1:1', 'service:api-1:2'],
          ['serfHealth', 'service:api-2:1', 'service:api-2:2'],
        ],
      );
      const passing = (await get('/health/service/api?passing=1')).body;
      assert.deepEqual(
        passing.map((e: { Service: { ID: string } }) => e.Service.ID),
        ['api-1'],
      );
    });

    it('filters by repeated tags (AND, case-insensitive) and by filter expressions', async () => {
      const ids = async (path: string) =>
        (await get(path)).body.map(
          (e: { Service?: { ID: string }; ServiceID?: string }) => e.Service?.ID ?? e.ServiceID,
        );
      assert.deepEqual(await ids('/health/service/api?tag=blue&tag=v1'), ['api-1']);
      assert.deepEqual(await ids('/health/service/api?tag=v1&tag=v2'), []);
      assert.deepEqual(await ids('/catalog/service/api?tag=v2'), ['api-2']);
      assert.deepEqual(await ids('/catalog/service/api?node-meta=consul-network-segment:'), [
        'api-1',
        'api-2',
      ]);
      assert.deepEqual(await ids('/health/service/api?node-meta=rack:r1'), []);
      assert.deepEqual((await get('/catalog/nodes?node-meta=rack:r1')).body, []);
      const f = (e: string) => encodeURIComponent(e);
      assert.deepEqual(await ids(`/health/service/api?filter=${f('Service.Meta.env == "prod"')}`), [
        'api-1',
      ]);
      assert.deepEqual(
        await ids(`/health/service/api?filter=${f('"v2" in Service.Tags or Service.ID == "x"')}`),
        ['api-2'],
      );
      assert.deepEqual(
        await ids(`/health/service/api?filter=${f('Checks.Status == "critical"')}`),
        ['api-2'],
      );
      assert.deepEqual(await ids(`/catalog/service/api?filter=${f('ServiceMeta.env != "prod"')}`), [
        'api-2',
      ]);
      assert.deepEqual(
        Object.keys(
          (await get(`/agent/services?filter=${f('Service == "api" and Meta.env matches "^st"')}`))
            .body,
        ),
        ['api-2'],
      );
    });

    // Issue 16: `matches "^(a+)+$"` over a 30-character meta value took 4.6 s with RegExp
    // (doubling per character), and the agent answered nothing else meanwhile. 28 characters take
    // seconds with a backtracking engine; RE2 answers at once. The bounds here only tell seconds
    // from milliseconds; the 100 ms liveness bound is liveness-property.test.ts's, run alone.
    it('runs a catastrophic filter regex in linear time, the agent live meanwhile', async () => {
      const value = `${'a'.repeat(28)}!`;
      const reg = await put('/agent/service/register', {
        Name: 'redos',
        ID: 'redos-1',
        Port: 1,
        Meta: { x: value },
      });
      assert.equal(reg.status, 200, reg.text);
      const filter = encodeURIComponent('Service.Meta.x matches "^(a+)+$"');
      const timed = async <T>(p: Promise<T>): Promise<[T, number]> => {
        const t0 = performance.now();
        const r = await p;
        return [r, performance.now() - t0];
      };
      const [[redos, redosMs], [live, liveMs]] = await Promise.all([
        timed(get(`/health/service/redos?filter=${filter}`)),
        timed(http(base, 'GET', '/health/live')),
      ]);
      assert.equal(redos.status, 200, redos.text);
      assert.deepEqual(redos.body, []);
      assert.equal(live.status, 200);
      assert.ok(liveMs < 1000, `/health/live took ${liveMs.toFixed(0)} ms`);
      assert.ok(redosMs < 1000, `the filter took ${redosMs.toFixed(0)} ms`);
      const kept = await get(
        `/health/service/redos?filter=${encodeURIComponent('Service.Meta.x matches "a!$"')}`,
      );
      assert.equal(kept.body.length, 1, 'a search, not anchored');
    });

    it('answers 400 naming the filter selector for a pattern RE2 refuses', async () => {
      for (const [re, reason] of [
        ['(a)\\\\1', 'invalid escape sequence'],
        ['(?=a)', 'invalid or unsupported Perl syntax'],
      ] as const) {
        const expr = encodeURIComponent(`Service.Meta.x matches "${re}"`);
        const r = await get(`/health/service/redos?filter=${expr}`);
        assert.equal(r.status, 400, re);
        assert.match(String(r.headers['content-type']), /^text\/plain/);
        assert.ok(
          r.text.startsWith(
            'Failed to create boolean expression evaluator: Service.Meta.x matches: not an RE2 regular expression (error parsing regexp: ',
          ),
          r.text,
        );
        assert.ok(r.text.includes(reason), r.text);
      }
    });

    it('lists checks by service, by state and by node, and the catalog', async () => {
      const checks = (await get('/health/checks/api')).body;
      assert.equal(checks.length, 4);
      const critical = (await get('/health/state/critical')).body.map(
        (c: { CheckID: string }) => c.CheckID,
      );
      assert.ok(critical.includes('service:api-2:2'));
      assert.ok(!critical.includes('service:api-1:2'));
      const nodeChecks = (await get('/health/node/test-node')).body.map(
        (c: { CheckID: string }) => c.CheckID,
      );
      assert.equal(nodeChecks[0], 'serfHealth');
      assert.deepEqual((await get('/health/node/other-node')).body, []);
      assert.deepEqual((await get('/catalog/services')).body.api, ['Blue', 'v1', 'v2']);
      const node = (await get('/catalog/node/test-node')).body;
      assert.equal(node.Node.Node, 'test-node');
      assert.equal(node.Services['api-1'].Port, 8080);
      assert.equal((await get('/catalog/node/elsewhere')).text, 'null');
    });

    it('answers agent health by id and name: 200 passing, 503 critical, text format', async () => {
      const one = await get('/agent/health/service/id/api-1');
      assert.equal(one.status, 200);
      assert.equal(one.body.AggregatedStatus, 'passing');
      const two = await get('/agent/health/service/id/api-2?format=text');
      assert.equal(two.status, 503);
      assert.equal(two.text, 'critical');
      const byName = await get('/agent/health/service/name/api');
      assert.equal(byName.status, 503);
      assert.equal(byName.body.length, 2);
      assert.equal((await get('/agent/health/service/id/none')).status, 404);
    });

    it('shows maintenance as critical _service_maintenance and _node_maintenance checks', async () => {
      assert.equal((await put('/agent/service/maintenance/api-1?enable=true')).status, 200);
      let checks = (await get('/health/checks/api')).body;
      const m = checks.find((c: { CheckID: string }) => c.CheckID === '_service_maintenance:api-1');
      assert.equal(m.Status, 'critical');
      assert.match(m.Notes, /no reason was provided/);
      assert.equal((await get('/agent/health/service/id/api-1?format=text')).text, 'maintenance');
      await put('/agent/service/maintenance/api-1?enable=false');
      assert.equal((await put('/agent/maintenance?enable=true&reason=patching')).status, 200);
      checks = (await get('/health/service/api')).body[0].Checks;
      const n = checks.find((c: { CheckID: string }) => c.CheckID === '_node_maintenance');
      assert.equal(n.Notes, 'patching');
      assert.deepEqual((await get('/health/service/api?passing')).body, []);
      await put('/agent/maintenance?enable=false');
      assert.equal((await get('/health/service/api?passing')).body.length, 1);
    });

    it('registers, updates and deregisters standalone checks on a service', async () => {
      const r = await put('/agent/check/register', {
        Name: 'disk',
        ServiceID: 'api-1',
        TTL: '30s',
        Notes: 'df',
      });
      assert.equal(r.status, 200, r.text);
      assert.equal(
        (await put('/agent/check/update/disk', { Status: 'warning', Output: '85%' })).status,
        200,
      );
      let checks = (await get('/agent/checks')).body;
      assert.equal(checks.disk.Status, 'warning');
      assert.equal(checks.disk.Output, '85%');
      assert.equal(checks.disk.ServiceID, 'api-1');
      assert.equal(
        checks['service:api-1:1'].Status,
        'passing',
        'the other checks keep their state',
      );
      assert.equal((await put('/agent/check/update/disk', { Status: 'bad' })).status, 400);
      const both = await put('/agent/check/register', {
        Name: 'two',
        ServiceID: 'api-1',
        HTTP: 'http://127.0.0.1:1/',
        TCP: '127.0.0.1:1',
        Interval: '10s',
      });
      assert.equal(both.status, 400);
      assert.match(both.text, /HTTP and TCP cannot both be specified/);
      assert.equal(
        (await put('/agent/check/register', { Name: 'x', ServiceID: 'none', TTL: '1s' })).status,
        404,
      );
      // Re-registering the service keeps the standalone check (Consul does, unless told otherwise).
      await put('/agent/service/register', {
        Name: 'api',
        ID: 'api-1',
        Address: '10.0.0.1',
        Port: 8080,
        Tags: ['v1', 'Blue'],
        Meta: { env: 'prod' },
        Checks: [
          { TTL: '30s', Status: 'passing' },
          { TTL: '30s', Name: 'second' },
        ],
      });
      assert.ok((await get('/agent/checks')).body.disk);
      assert.equal((await put('/agent/check/deregister/disk')).status, 200);
      checks = (await get('/agent/checks')).body;
      assert.equal(checks.disk, undefined);
      assert.equal((await put('/agent/check/deregister/disk')).status, 404);
    });

    it('registers and deregisters through the catalog on this node, refuses other nodes', async () => {
      const r = await put('/catalog/register', {
        Node: 'test-node',
        Address: '127.0.0.1',
        Service: { Service: 'cat', ID: 'cat-1', Port: 5000, Tags: ['x'] },
        Check: { CheckID: 'cat-ttl', Name: 'cat', ServiceID: 'cat-1', Definition: { TTL: '30s' } },
      });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.text, 'true');
      assert.deepEqual(
        (await get('/catalog/service/cat')).body.map((s: { ServiceID: string }) => s.ServiceID),
        ['cat-1'],
      );
      assert.equal(
        (await put('/catalog/register', { Node: 'elsewhere', Address: '10.9.9.9' })).status,
        400,
      );
      const d = await put('/catalog/deregister', { Node: 'test-node', ServiceID: 'cat-1' });
      assert.equal(d.text, 'true');
      assert.deepEqual((await get('/catalog/service/cat')).body, []);
      assert.deepEqual((await get('/catalog/datacenters')).body, ['dc1']);
    });

    it('answers the harmless single-node no-ops and status', async () => {
      for (const path of [
        '/agent/join/10.0.0.9',
        '/agent/force-leave/n2',
        '/agent/leave',
        '/agent/reload',
      ]) {
        assert.equal((await put(path)).status, 200, path);
      }
      assert.deepEqual((await get('/status/peers')).body, ['127.0.0.1:8300']);
      assert.equal((await get('/agent/members')).body[0].Status, 1);
    });
  });

  describe('one catalog for both APIs', () => {
    it('shows native registrations through /v1 and Consul registrations through /api/v1', async () => {
      const n = await http(base, 'PUT', '/api/v1/instances', {
        service: 'shared',
        id: 'shared-native',
        address: '10.1.1.1',
        port: 81,
        checks: [{ ttl: '30s' }],
      });
      assert.equal(n.status, 200, n.text);
      await put('/agent/service/register', {
        Name: 'shared',
        ID: 'shared-consul',
        Address: '10.1.1.2',
        Port: 82,
      });
      const consul = (await get('/health/service/shared')).body;
      assert.deepEqual(
        consul.map((e: { Service: { ID: string } }) => e.Service.ID),
        ['shared-consul', 'shared-native'],
      );
      // A native instance's single check gets the id Consul would give it, and takes a pass.
      assert.equal(consul[1].Checks[1].CheckID, 'service:shared-native');
      assert.equal((await put('/agent/check/pass/service:shared-native')).status, 200);
      const native = await http(base, 'GET', '/api/v1/services/shared/instances?status=passing');
      assert.deepEqual(
        native.body.instances.map((i: { id: string }) => i.id),
        ['shared-consul', 'shared-native'],
      );
    });
  });

  describe('kv', () => {
    it('decodes percent-encoded keys, stores empty values as null, and keeps flags', async () => {
      assert.equal((await put('/kv/a%2Fx%2F1?flags=7', 'v')).text, 'true');
      const e = (await get('/kv/a/x/1')).body[0];
      assert.equal(e.Key, 'a/x/1');
      assert.equal(e.Flags, 7);
      assert.equal(Buffer.from(e.Value, 'base64').toString(), 'v');
      await put('/kv/empty', '');
      assert.equal((await get('/kv/empty')).body[0].Value, null);
      assert.equal((await get('/kv/a/x/1?raw')).text, 'v');
      assert.equal((await put('/kv/a/x/1?cas=0', 'w')).text, 'false', 'cas=0 creates only');
      assert.deepEqual((await get('/kv/?keys')).body.includes('a/x/1'), true);
      assert.equal((await get('/kv/zz?keys')).status, 404);
      assert.equal(
        (await http(base, 'DELETE', '/v1/kv/gone?cas=5')).text,
        'true',
        'cas delete of a missing key',
      );
      assert.equal((await http(base, 'DELETE', '/v1/kv/a?recurse')).text, 'true');
      assert.equal((await get('/kv/a/x/1')).status, 404);
    });
  });
});

// Consul's check_update_interval: a TTL check's pass/warn/fail with a new note under the same
// status is written at most every `checks.updateIntervalMs` (5 min by default; 0: every one).
describe('Consul API: check output updates (checks.updateIntervalMs)', () => {
  const register = async (base: string): Promise<void> => {
    const r = await http(base, 'PUT', '/v1/agent/service/register', {
      Name: 'notes',
      ID: 'notes-1',
      Port: 9000,
      Check: { TTL: '30s' },
    });
    assert.equal(r.status, 200, r.text);
  };
  const output = async (base: string): Promise<string> =>
    (await http(base, 'GET', '/v1/health/checks/notes', undefined)).body[0].Output;

  it('writes every new note under the same status with an interval of 0', async () => {
    const agent = await startTestAgent({ flags: { checks: { updateIntervalMs: 0 } } });
    try {
      await register(agent.url);
      for (const note of ['first', 'second']) {
        const r = await http(agent.url, 'PUT', `/v1/agent/check/pass/service:notes-1?note=${note}`);
        assert.equal(r.status, 200, r.text);
        assert.equal(await output(agent.url), note);
      }
    } finally {
      await agent.stop();
    }
  });

  it("keeps the written note for the interval by default (the status change is written, a new note under it waits), while the agent's own endpoints answer the new note", async () => {
    const agent = await startTestAgent();
    try {
      await register(agent.url);
      await http(agent.url, 'PUT', '/v1/agent/check/pass/service:notes-1?note=first');
      assert.equal(await output(agent.url), 'first');
      await http(agent.url, 'PUT', '/v1/agent/check/pass/service:notes-1?note=second');
      assert.equal(await output(agent.url), 'first');
      // The agent's own endpoints answer with what it holds, as Consul's agent does.
      const local = (await http(agent.url, 'GET', '/v1/agent/checks', undefined)).body;
      assert.equal(local['service:notes-1'].Output, 'second');
      const health = await http(agent.url, 'GET', '/v1/agent/health/service/id/notes-1', undefined);
      const check = (health.body.Checks as { CheckID: string; Output: string }[]).find(
        (c) => c.CheckID === 'service:notes-1',
      );
      assert.equal(check?.Output, 'second');
      await http(agent.url, 'PUT', '/v1/agent/check/warn/service:notes-1?note=third');
      assert.equal(await output(agent.url), 'third');
      const after = (await http(agent.url, 'GET', '/v1/agent/checks', undefined)).body;
      assert.equal(after['service:notes-1'].Output, 'third');
    } finally {
      await agent.stop();
    }
  });

  it("answers a node check's new note on the agent's own endpoints too, while the node's health keeps the written one", async () => {
    const agent = await startTestAgent();
    try {
      const reg = await http(agent.url, 'PUT', '/v1/agent/check/register', {
        Name: 'node disk',
        CheckID: 'node-disk',
        TTL: '30s',
      });
      assert.equal(reg.status, 200, reg.text);
      const nodeName = (await http(agent.url, 'GET', '/v1/agent/self', undefined)).body.Config
        .NodeName as string;
      const written = async (): Promise<string | undefined> =>
        (
          (await http(agent.url, 'GET', `/v1/health/node/${nodeName}`, undefined)).body as {
            CheckID: string;
            Output: string;
          }[]
        ).find((c) => c.CheckID === 'node-disk')?.Output;
      await http(agent.url, 'PUT', '/v1/agent/check/pass/node-disk?note=first');
      assert.equal(await written(), 'first');
      await http(agent.url, 'PUT', '/v1/agent/check/pass/node-disk?note=second');
      assert.equal(await written(), 'first');
      const local = (await http(agent.url, 'GET', '/v1/agent/checks', undefined)).body;
      assert.equal(local['node-disk'].Output, 'second');
    } finally {
      await agent.stop();
    }
  });
});
