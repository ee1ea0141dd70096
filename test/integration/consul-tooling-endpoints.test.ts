/**
 * Issue 22: the Consul endpoints newer and tooling clients call, with the real curl (neither the
 * npm `consul` package nor python-consul 0.7.1 has methods for these): catalog/node-services,
 * agent/version, agent/host, agent/metrics (JSON and Prometheus text), coordinate/node, and the
 * X-Consul-Index every /v1 404 carries. python-consul's own methods are in
 * consul-client-python-tooling.test.ts.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { after, before, describe, it } from 'node:test';
import { http, startTestAgent, type TestAgent } from '../helpers/agent.js';
import { curl } from '../helpers/curl.js';

const PACKAGE_VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;

const json = <T = Record<string, unknown>>(text: string): T => JSON.parse(text) as T;

describe('Consul tooling endpoints (curl)', () => {
  let agent: TestAgent;
  const url = (path: string): string => agent.url + path;

  before(async () => {
    agent = await startTestAgent();
    for (const [id, port] of [
      ['tool-web-1', 8080],
      ['tool-api-1', 9090],
    ] as const) {
      const r = await http(agent.url, 'PUT', '/v1/agent/service/register', {
        Name: id.slice(0, -2),
        ID: id,
        Port: port,
        Tags: ['t'],
      });
      assert.equal(r.status, 200, r.text);
    }
  });
  after(async () => {
    await agent.stop();
  });

  describe('catalog/node-services/:node', () => {
    it("lists this node's services as a list, with the Node object (Consul 1.7+ shape)", async () => {
      const r = await curl(url('/v1/catalog/node-services/test-node'));
      assert.equal(r.status, 200, r.text);
      assert.match(r.headers['x-consul-index'] ?? '', /^[1-9]\d*$/);
      const body = json<{ Node: Record<string, unknown>; Services: Record<string, unknown>[] }>(
        r.text,
      );
      assert.equal(body.Node.Node, 'test-node');
      assert.equal(body.Node.Datacenter, 'dc1');
      assert.deepEqual(body.Services.map((s) => [s.ID, s.Service, s.Port, s.Tags]).sort(), [
        ['tool-api-1', 'tool-api', 9090, ['t']],
        ['tool-web-1', 'tool-web', 8080, ['t']],
      ]);
    });

    it('applies ?filter= to the services', async () => {
      const r = await curl(url('/v1/catalog/node-services/test-node?filter=Port%20%3D%3D%209090'));
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(
        json<{ Services: { ID: string }[] }>(r.text).Services.map((s) => s.ID),
        ['tool-api-1'],
      );
    });

    it('answers an unknown node 200 with Node and Services null, as Consul does', async () => {
      const r = await curl(url('/v1/catalog/node-services/no-such-node'));
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(json(r.text), { Node: null, Services: null });
      assert.match(r.headers['x-consul-index'] ?? '', /^[1-9]\d*$/);
    });

    it('blocks on ?index= until the node changes', async () => {
      const first = await curl(url('/v1/catalog/node-services/test-node'));
      const index = first.headers['x-consul-index'] ?? '';
      const blocked = curl(url(`/v1/catalog/node-services/test-node?index=${index}&wait=15s`));
      const reg = await http(agent.url, 'PUT', '/v1/agent/service/register', {
        Name: 'tool-late',
        ID: 'tool-late-1',
        Port: 7070,
      });
      assert.equal(reg.status, 200, reg.text);
      const r = await blocked;
      assert.equal(r.status, 200, r.text);
      assert.ok(Number(r.headers['x-consul-index']) > Number(index), 'the index moved');
      assert.ok(
        json<{ Services: { ID: string }[] }>(r.text).Services.some((s) => s.ID === 'tool-late-1'),
      );
      await http(agent.url, 'PUT', '/v1/agent/service/deregister/tool-late-1');
    });
  });

  describe('agent/version', () => {
    it("answers Consul's four fields, with Meshwork's own version in HumanVersion", async () => {
      const r = await curl(url('/v1/agent/version'));
      assert.equal(r.status, 200, r.text);
      assert.match(r.headers['content-type'] ?? '', /^application\/json/);
      const body = json(r.text);
      assert.deepEqual(Object.keys(body).sort(), ['BuildDate', 'FIPS', 'HumanVersion', 'SHA']);
      const self = json<{ Config: { Version: string } }>((await curl(url('/v1/agent/self'))).text);
      assert.equal(body.HumanVersion, `${self.Config.Version}+meshwork.${PACKAGE_VERSION}`);
      assert.equal(body.FIPS, '');
    });
  });

  describe('agent/host', () => {
    it("describes this host from the OS, in Consul's shape", async () => {
      const before = Date.now();
      const r = await curl(url('/v1/agent/host'));
      const afterMs = Date.now();
      assert.equal(r.status, 200, r.text);
      const body = json<{
        Memory: Record<string, number>;
        CPU: Record<string, unknown>[];
        Host: Record<string, unknown>;
        Disk: Record<string, number | string>;
        CollectionTime: number;
        Errors: unknown;
      }>(r.text);
      assert.deepEqual(Object.keys(body).sort(), [
        'CPU',
        'CollectionTime',
        'Disk',
        'Errors',
        'Host',
        'Memory',
      ]);
      assert.equal(body.Errors, null);
      assert.equal(body.Memory.total, os.totalmem());
      assert.ok(body.Memory.used! + body.Memory.available! === body.Memory.total);
      assert.equal(body.CPU.length, os.cpus().length);
      assert.equal(body.Host.hostname, os.hostname());
      assert.equal(body.Host.os, process.platform);
      assert.equal(body.Disk.path, '/');
      assert.ok(Number(body.Disk.total) > 0);
      assert.ok(Number(body.Disk.used) + Number(body.Disk.free) <= Number(body.Disk.total));
      // Nanoseconds since the epoch.
      assert.ok(body.CollectionTime >= before * 1e6 && body.CollectionTime <= afterMs * 1e6);
      assert.match(r.text, /"CollectionTime":\d{19},/, 'written as an integer, as Go writes it');
    });
  });

  describe('agent/metrics', () => {
    it("maps the agent's Prometheus registry to Consul's JSON", async () => {
      const r = await curl(url('/v1/agent/metrics'));
      assert.equal(r.status, 200, r.text);
      const body = json<{
        Timestamp: string;
        Gauges: { Name: string; Value: number; Labels: Record<string, string> }[];
        Points: unknown[];
        Counters: { Name: string; Sum: number; Labels: Record<string, string> }[];
        Samples: { Name: string; Count: number; Sum: number; Mean: number }[];
      }>(r.text);
      assert.match(body.Timestamp, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000 UTC$/);
      assert.deepEqual(body.Points, []);
      const instances = body.Gauges.filter((g) => g.Name === 'meshwork_registry_instances');
      assert.equal(
        instances.reduce((n, g) => n + g.Value, 0),
        2,
        'the instance gauge, by status, counts the two services',
      );
      const text = (await curl(url('/v1/agent/metrics?format=prometheus'))).text;
      for (const g of instances)
        assert.ok(
          text.includes(`meshwork_registry_instances{status="${g.Labels.status}"} ${g.Value}\n`),
          `the Prometheus text has ${g.Labels.status} = ${g.Value}`,
        );
      const registrations = body.Counters.find(
        (c) => c.Name === 'meshwork_registry_registrations_total',
      );
      assert.ok(registrations);
      assert.ok(registrations.Sum >= 2);
      assert.ok(body.Samples.length > 0, 'histograms become samples');
      for (const s of body.Samples)
        assert.ok(s.Count === 0 ? s.Mean === 0 : Math.abs(s.Mean * s.Count - s.Sum) < 1e-6);
    });

    it('serves the Prometheus text with ?format=prometheus and to a Prometheus Accept', async () => {
      const byFormat = await curl(url('/v1/agent/metrics?format=prometheus'));
      assert.equal(byFormat.status, 200);
      assert.match(byFormat.headers['content-type'] ?? '', /^text\/plain; version=0\.0\.4/);
      assert.match(byFormat.text, /^# TYPE meshwork_registry_instances gauge$/m);
      const native = await curl(url('/metrics'));
      assert.deepEqual(
        [...byFormat.text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]),
        [...native.text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]),
        'the same metrics as /metrics',
      );
      const byAccept = await curl(url('/v1/agent/metrics'), [
        '-H',
        'Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5',
      ]);
      assert.match(byAccept.text, /^# TYPE meshwork_registry_instances gauge$/m);
    });
  });

  describe('coordinate/node/:node', () => {
    it("answers this node's origin coordinate, and 404 with the query meta for another", async () => {
      const r = await curl(url('/v1/coordinate/node/test-node'));
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(json(r.text), [
        {
          Node: 'test-node',
          Segment: '',
          Coord: { Vec: [0, 0, 0, 0, 0, 0, 0, 0], Error: 1.5, Adjustment: 0, Height: 1e-5 },
        },
      ]);
      const missing = await curl(url('/v1/coordinate/node/nope'));
      assert.equal(missing.status, 404);
      assert.equal(missing.text, '');
      assert.match(missing.headers['x-consul-index'] ?? '', /^[1-9]\d*$/);
      assert.equal(missing.headers['x-consul-knownleader'], 'true');
      assert.equal(missing.headers['x-consul-lastcontact'], '0');
    });
  });

  describe('404 answers carry X-Consul-Index (python-consul 0.7.1 reads it)', () => {
    for (const [what, path] of [
      ['an unknown path', '/v1/no/such/endpoint'],
      ['an unknown path under a known prefix', '/v1/catalog/nope/x'],
      ['an unknown agent service', '/v1/agent/service/nope'],
      ['an unknown service health, as text', '/v1/agent/health/service/id/nope?format=text'],
      ['an unknown service health, as JSON', '/v1/agent/health/service/name/nope'],
      ['a missing KV key', '/v1/kv/no/such/key'],
    ] as const) {
      it(`${what}: ${path}`, async () => {
        const r = await curl(url(path));
        assert.equal(r.status, 404, r.text);
        assert.match(r.headers['x-consul-index'] ?? '', /^[1-9]\d*$/);
      });
    }

    it('keeps the body Consul sends for an unknown path', async () => {
      const r = await curl(url('/v1/no/such/endpoint'));
      assert.equal(r.text, 'Invalid URL path: not a recognized HTTP API endpoint\n');
    });
  });
});

describe('Consul tooling endpoints under ACLs (curl)', () => {
  let agent: TestAgent;
  let management = '';
  const tokens: Record<string, string> = {};

  before(async () => {
    agent = await startTestAgent({ flags: { acl: { enabled: true, defaultPolicy: 'deny' } } });
    const boot = await http(agent.url, 'PUT', '/v1/acl/bootstrap');
    assert.equal(boot.status, 200, boot.text);
    management = boot.body.SecretID as string;
    const admin = { 'x-consul-token': management };
    for (const [name, rules] of [
      ['operator-read', 'operator = "read"'],
      ['agent-read', 'agent_prefix "" { policy = "read" }\nnode_prefix "" { policy = "read" }'],
    ] as const) {
      const p = await http(agent.url, 'PUT', '/v1/acl/policy', { Name: name, Rules: rules }, admin);
      assert.equal(p.status, 200, p.text);
      const t = await http(
        agent.url,
        'PUT',
        '/v1/acl/token',
        { Description: name, Policies: [{ Name: name }] },
        admin,
      );
      assert.equal(t.status, 200, t.text);
      tokens[name] = t.body.SecretID as string;
    }
  });
  after(async () => {
    await agent.stop();
  });

  const status = async (path: string, token?: string): Promise<number> =>
    (await curl(agent.url + path, token === undefined ? [] : ['-H', `X-Consul-Token: ${token}`]))
      .status;

  it('agent/host and operator/raft/configuration need operator:read, as in Consul', async () => {
    for (const path of ['/v1/agent/host', '/v1/operator/raft/configuration']) {
      assert.equal(await status(path), 403, `${path} anonymous`);
      assert.equal(await status(path, tokens['agent-read']), 403, `${path} agent read`);
      assert.equal(await status(path, tokens['operator-read']), 200, `${path} operator read`);
    }
  });

  it('agent/metrics needs agent:read; agent/version and coordinate/datacenters need nothing', async () => {
    assert.equal(await status('/v1/agent/metrics'), 403);
    assert.equal(await status('/v1/agent/metrics', tokens['operator-read']), 403);
    assert.equal(await status('/v1/agent/metrics', tokens['agent-read']), 200);
    assert.equal(await status('/v1/agent/version'), 200);
    assert.equal(await status('/v1/coordinate/datacenters'), 200);
  });

  it('coordinate/nodes leaves out the node a token may not read; node-services refuses it', async () => {
    const anon = await curl(agent.url + '/v1/coordinate/nodes');
    assert.equal(anon.status, 200);
    assert.deepEqual(json(anon.text), []);
    const reader = await curl(agent.url + '/v1/coordinate/nodes', [
      '-H',
      `X-Consul-Token: ${tokens['agent-read']}`,
    ]);
    assert.deepEqual(
      json<{ Node: string }[]>(reader.text).map((c) => c.Node),
      ['test-node'],
    );
    assert.equal(await status('/v1/catalog/node-services/test-node'), 403);
    assert.equal(await status('/v1/catalog/node-services/test-node', tokens['agent-read']), 200);
  });
});
