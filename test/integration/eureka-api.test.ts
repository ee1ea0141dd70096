/**
 * The Eureka REST API (issue 23) over HTTP with undici and curl: JSON and XML answers, every
 * refusal naming its field, 404s, vips, metadata, status overrides seen through the Consul API,
 * a Eureka registration read through /v1/health and DNS (dig), a Consul one read through Eureka,
 * and lease expiry with an injected clock.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { AddressInfo } from 'node:net';
import { Registry as PromRegistry } from 'prom-client';
import { request } from 'undici';
import { gunzipSync } from 'node:zlib';
import {
  EUREKA_LEASE_CHECK_ID,
  type EurekaLeaseKeeper,
} from '../../src/registry-api/eureka/eureka-lease-contract.js';
import { createApiServer } from '../../src/registry-api/server.js';
import { FakeClock } from '../../src/testing/fake-clock.js';
import { http, startTestAgent, useTestAgent } from '../helpers/agent.js';
import { curl } from '../helpers/curl.js';
import { startMemoryRegistry } from '../helpers/registry.js';
import { until } from '../helpers/until.js';

const run = promisify(execFile);

const JSON_ACCEPT = { accept: 'application/json' };
const XML_ACCEPT = { accept: 'application/xml' };

/** A registration body as eureka-js-client sends it. */
function instanceBody(over: Record<string, unknown> = {}): { instance: Record<string, unknown> } {
  return {
    instance: {
      instanceId: 'host-1:orders:8080',
      app: 'ORDERS',
      hostName: 'host-1',
      ipAddr: '10.0.0.7',
      status: 'UP',
      port: { $: 8080, '@enabled': 'true' },
      securePort: { $: 8443, '@enabled': 'false' },
      vipAddress: 'orders,orders-v2',
      secureVipAddress: 'orders-secure',
      dataCenterInfo: {
        '@class': 'com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo',
        name: 'MyOwn',
      },
      leaseInfo: { renewalIntervalInSecs: 30, durationInSecs: 90 },
      metadata: { zone: 'a', 'management.port': '9090' },
      ...over,
    },
  };
}

/** The `error` of a JSON refusal. */
const errorOf = (body: unknown): { field?: string; reason: string } =>
  (body as { error: { field?: string; reason: string } }).error;

describe('Eureka API', () => {
  const agent = useTestAgent();
  const base = () => agent().url;
  const V2 = '/eureka/v2';

  it('registers through JSON and answers the app, the instance and the registry in JSON and XML', async () => {
    const r = await http(base(), 'POST', `${V2}/apps/ORDERS`, instanceBody());
    assert.equal(r.status, 204, r.text);
    const app = await http(base(), 'GET', `${V2}/apps/ORDERS`, undefined, JSON_ACCEPT);
    assert.equal(app.status, 200, app.text);
    assert.match(String(app.headers['content-type']), /json/);
    assert.equal(app.body.application.name, 'ORDERS');
    const instances = [app.body.application.instance].flat();
    assert.equal(instances.length, 1);
    assert.equal(instances[0].instanceId, 'host-1:orders:8080');
    assert.equal(instances[0].status, 'UP');
    assert.equal(instances[0].ipAddr, '10.0.0.7');
    const xml = await curl(`${base()}${V2}/apps/ORDERS/host-1:orders:8080`, [
      '-H',
      'Accept: application/xml',
    ]);
    assert.equal(xml.status, 200, xml.text);
    assert.match(xml.headers['content-type'] ?? '', /xml/);
    assert.match(xml.text, /<instanceId>host-1:orders:8080<\/instanceId>/);
    assert.match(xml.text, /<status>UP<\/status>/);
    assert.match(xml.text, /<app>ORDERS<\/app>/);
    // eureka-js-client's full fetch: GET <servicePath> with its trailing slash.
    const all = await http(base(), 'GET', `${V2}/apps/?regions=us-east-1`, undefined, JSON_ACCEPT);
    assert.equal(all.status, 200, all.text);
    assert.match(String(all.body.applications.apps__hashcode), /UP_\d+_/);
    const spring = await http(base(), 'GET', '/eureka/apps/ORDERS', undefined, JSON_ACCEPT);
    assert.equal(spring.status, 200, spring.text);
  });

  it('registers through XML', async () => {
    const body =
      '<instance><instanceId>x1</instanceId><app>XMLAPP</app><hostName>h</hostName>' +
      '<ipAddr>10.0.0.8</ipAddr><status>UP</status><port enabled="true">7001</port>' +
      '<dataCenterInfo class="com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo">' +
      '<name>MyOwn</name></dataCenterInfo></instance>';
    const r = await http(base(), 'POST', `${V2}/apps/XMLAPP`, body, {
      'content-type': 'application/xml',
    });
    assert.equal(r.status, 204, r.text);
    const got = await http(base(), 'GET', `${V2}/apps/XMLAPP/x1`, undefined, JSON_ACCEPT);
    assert.equal(got.status, 200, got.text);
    assert.equal(got.body.instance.port.$, 7001);
  });

  it('refuses bad input with 400 naming the field, and keeps serving', async () => {
    const cases: [
      string,
      string,
      string | Record<string, unknown>,
      Record<string, string>,
      RegExp,
    ][] = [
      [
        'POST',
        `${V2}/apps/ORDERS`,
        '{"instance": ',
        { 'content-type': 'application/json' },
        /^body/,
      ],
      [
        'POST',
        `${V2}/apps/ORDERS`,
        instanceBody({ hostName: undefined, ipAddr: undefined }),
        {},
        /^instance\.(hostName|ipAddr)$/,
      ],
      ['POST', `${V2}/apps/ORDERS`, instanceBody({ status: 'SLEEPY' }), {}, /^instance\.status$/],
      ['POST', `${V2}/apps/ORDERS`, instanceBody({ app: 'PAYMENTS' }), {}, /^instance\.app$/],
      ['POST', `${V2}/apps/BAD_APP`, instanceBody({ app: 'BAD_APP' }), {}, /^instance\.app$/],
      [
        'POST',
        `${V2}/apps/ORDERS`,
        instanceBody({ instanceId: 'a b' }),
        {},
        /^instance\.instanceId$/,
      ],
      ['PUT', `${V2}/apps/ORDERS/host-1:orders:8080?status=SLEEPY`, '', {}, /^status$/],
      ['PUT', `${V2}/apps/ORDERS/host-1:orders:8080/status?value=SLEEPY`, '', {}, /^value$/],
      ['PUT', `${V2}/apps/ORDERS/host-1:orders:8080/status`, '', {}, /^value$/],
      [
        'POST',
        `${V2}/apps/ORDERS`,
        '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><instance><app>&b;</app></instance>',
        { 'content-type': 'application/xml' },
        /^(body|instance)/,
      ],
    ];
    for (const [method, path, body, headers, field] of cases) {
      const r = await http(base(), method, path, body, { ...JSON_ACCEPT, ...headers });
      assert.equal(r.status, 400, `${method} ${path}: ${r.text}`);
      const e = errorOf(r.body);
      assert.match(e.field ?? '', field, `${method} ${path}: ${r.text}`);
      assert.ok(e.reason.length > 0);
    }
    const xml = await http(
      base(),
      'PUT',
      `${V2}/apps/ORDERS/host-1:orders:8080?status=NOPE`,
      '',
      XML_ACCEPT,
    );
    assert.equal(xml.status, 400);
    assert.match(xml.text, /<field>status<\/field>/);
    const live = await http(base(), 'GET', '/health/live');
    assert.equal(live.status, 200);
  });

  it('answers 200 for a renewal with a known status, 400 naming status for any other (fast-check)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.constantFrom('UP', 'DOWN', 'STARTING', 'UNKNOWN', 'up', 'Up '),
          fc.string({ maxLength: 12 }),
        ),
        async (status) => {
          const r = await http(
            base(),
            'PUT',
            `${V2}/apps/ORDERS/host-1:orders:8080?status=${encodeURIComponent(status)}`,
            undefined,
            JSON_ACCEPT,
          );
          const known =
            status === '' ||
            ['UP', 'DOWN', 'STARTING', 'OUT_OF_SERVICE', 'UNKNOWN'].includes(status);
          assert.equal(r.status, known ? 200 : 400, `${JSON.stringify(status)}: ${r.text}`);
          if (!known) assert.equal(errorOf(r.body).field, 'status');
        },
      ),
      { seed: 23, numRuns: 60 },
    );
    const up = await http(base(), 'PUT', `${V2}/apps/ORDERS/host-1:orders:8080?status=UP`);
    assert.equal(up.status, 200);
    const reserved = await http(
      base(),
      'PUT',
      `${V2}/apps/ORDERS/host-1:orders:8080/metadata?eureka-status=UP`,
      undefined,
      JSON_ACCEPT,
    );
    assert.equal(reserved.status, 400, reserved.text);
    assert.equal(errorOf(reserved.body).field, 'eureka-status');
  });

  it('answers 404 for unknown apps and instances (renew too, so clients re-register)', async () => {
    for (const [method, path] of [
      ['PUT', `${V2}/apps/ORDERS/nope`],
      ['DELETE', `${V2}/apps/ORDERS/nope`],
      ['GET', `${V2}/apps/ORDERS/nope`],
      ['GET', `${V2}/apps/NOPE`],
      ['GET', `${V2}/instances/nope`],
      ['GET', `${V2}/vips/nope`],
      ['GET', `${V2}/svips/nope`],
      ['PUT', `${V2}/apps/NOPE/x/status?value=UP`],
    ] as const) {
      const r = await http(base(), method, path, undefined, JSON_ACCEPT);
      assert.equal(r.status, 404, `${method} ${path}: ${r.text}`);
    }
  });

  it('renews, and answers vips, svips and instances by id', async () => {
    const renew = await http(
      base(),
      'PUT',
      `${V2}/apps/ORDERS/host-1:orders:8080?status=UP&lastDirtyTimestamp=1`,
    );
    assert.equal(renew.status, 200, renew.text);
    const lease = async (): Promise<{ status: string; output: string }> => {
      const native = await http(base(), 'GET', '/api/v1/instances/orders:host-1:orders:8080');
      return native.body.instance.checks.find(
        (c: { id: string }) => c.id === EUREKA_LEASE_CHECK_ID,
      );
    };
    assert.equal((await lease()).status, 'passing');
    // A renewal reporting DOWN turns the lease critical; the next UP one passing again.
    const down = await http(base(), 'PUT', `${V2}/apps/ORDERS/host-1:orders:8080?status=DOWN`);
    assert.equal(down.status, 200, down.text);
    assert.deepEqual(await lease(), {
      ...(await lease()),
      status: 'critical',
      output: 'Eureka status DOWN',
    });
    const downView = await http(
      base(),
      'GET',
      `${V2}/apps/ORDERS/host-1:orders:8080`,
      undefined,
      JSON_ACCEPT,
    );
    assert.equal(downView.body.instance.status, 'DOWN');
    const up = await http(base(), 'PUT', `${V2}/apps/ORDERS/host-1:orders:8080?status=UP`);
    assert.equal(up.status, 200, up.text);
    assert.deepEqual(await lease(), {
      ...(await lease()),
      status: 'passing',
      output: 'Eureka status UP',
    });
    for (const path of [
      `${V2}/vips/orders-v2`,
      `${V2}/svips/orders-secure`,
      '/eureka/vips/orders',
    ]) {
      const r = await http(base(), 'GET', path, undefined, JSON_ACCEPT);
      assert.equal(r.status, 200, `${path}: ${r.text}`);
      const apps = [r.body.applications.application].flat();
      assert.deepEqual(
        apps.map((a: { name: string }) => a.name),
        ['ORDERS'],
      );
    }
    const byId = await http(
      base(),
      'GET',
      `${V2}/instances/host-1:orders:8080`,
      undefined,
      JSON_ACCEPT,
    );
    assert.equal(byId.status, 200, byId.text);
    assert.equal(byId.body.instance.app, 'ORDERS');
  });

  it('updates metadata', async () => {
    const r = await http(
      base(),
      'PUT',
      `${V2}/apps/ORDERS/host-1:orders:8080/metadata?color=blue&spring.key=v`,
    );
    assert.equal(r.status, 200, r.text);
    const got = await http(
      base(),
      'GET',
      `${V2}/apps/ORDERS/host-1:orders:8080`,
      undefined,
      JSON_ACCEPT,
    );
    assert.equal(got.body.instance.metadata.color, 'blue');
    assert.equal(got.body.instance.metadata['spring.key'], 'v');
    assert.equal(got.body.instance.metadata.zone, 'a');
    assert.equal(got.body.instance.metadata['management.port'], '9090');
    const health = await http(base(), 'GET', '/v1/health/service/orders');
    assert.equal(health.body[0].Service.Meta.color, 'blue');
  });

  it('puts an OUT_OF_SERVICE override into maintenance, seen through /v1/health, and back', async () => {
    const id = 'orders:host-1:orders:8080';
    const out = await http(
      base(),
      'PUT',
      `${V2}/apps/ORDERS/host-1:orders:8080/status?value=OUT_OF_SERVICE`,
    );
    assert.equal(out.status, 200, out.text);
    const passing = await http(base(), 'GET', '/v1/health/service/orders?passing');
    assert.deepEqual(passing.body, []);
    const all = await http(base(), 'GET', '/v1/health/service/orders');
    const checks = all.body[0].Checks.map((c: { CheckID: string; Status: string }) => [
      c.CheckID,
      c.Status,
    ]);
    assert.ok(
      checks.some(
        ([cid, s]: [string, string]) => cid.startsWith('_service_maintenance') && s === 'critical',
      ),
      JSON.stringify(checks),
    );
    const view = await http(
      base(),
      'GET',
      `${V2}/apps/ORDERS/host-1:orders:8080`,
      undefined,
      JSON_ACCEPT,
    );
    assert.equal(view.body.instance.status, 'OUT_OF_SERVICE');
    assert.equal(
      view.body.instance.overriddenStatus ?? view.body.instance.overriddenstatus,
      'OUT_OF_SERVICE',
    );
    // The client's re-registration does not lift the override.
    const reRegistered = await http(base(), 'POST', `${V2}/apps/ORDERS`, instanceBody());
    assert.equal(reRegistered.status, 204, reRegistered.text);
    const still = await http(base(), 'GET', '/v1/health/service/orders?passing');
    assert.deepEqual(still.body, []);
    const back = await http(base(), 'DELETE', `${V2}/apps/ORDERS/host-1:orders:8080/status`);
    assert.equal(back.status, 200, back.text);
    const native = await http(base(), 'GET', `/api/v1/instances/${id}`);
    assert.equal(native.body.instance.maintenance.enabled, false);
    const again = await http(base(), 'GET', '/v1/health/service/orders?passing');
    assert.equal(again.body.length, 1);
  });

  it('shows a Eureka registration through /v1/health/service and DNS', async () => {
    const health = await http(base(), 'GET', '/v1/health/service/orders');
    assert.equal(health.status, 200);
    assert.equal(health.body.length, 1);
    assert.equal(health.body[0].Service.ID, 'orders:host-1:orders:8080');
    assert.equal(health.body[0].Service.Address, '10.0.0.7');
    assert.equal(health.body[0].Service.Port, 8080);
    const dns = agent().dns;
    assert.ok(dns !== undefined);
    const { stdout } = await run('dig', [
      '@127.0.0.1',
      '-p',
      String(dns.port),
      '+time=3',
      '+tries=1',
      '+short',
      'orders.service.consul',
      'A',
    ]);
    assert.deepEqual(stdout.trim().split('\n'), ['10.0.0.7']);
  });

  it('shows a Consul registration through Eureka', async () => {
    const r = await http(base(), 'PUT', '/v1/agent/service/register', {
      Name: 'billing',
      ID: 'billing-1',
      Address: '10.0.0.9',
      Port: 9000,
      Meta: { team: 'money' },
    });
    assert.equal(r.status, 200, r.text);
    const app = await http(base(), 'GET', '/eureka/apps/BILLING', undefined, JSON_ACCEPT);
    assert.equal(app.status, 200, app.text);
    const [inst] = [app.body.application.instance].flat();
    assert.equal(inst.instanceId, 'billing-1');
    assert.equal(inst.hostName, '10.0.0.9');
    assert.equal(inst.port.$, 9000);
    assert.equal(inst.vipAddress, 'billing');
    assert.equal(inst.status, 'UP');
    assert.equal(inst.metadata.team, 'money');
    const byId = await http(
      base(),
      'GET',
      '/eureka/apps/BILLING/billing-1',
      undefined,
      JSON_ACCEPT,
    );
    assert.equal(byId.status, 200);
  });

  it('cancels, and counts requests in meshwork_eureka_requests_total', async () => {
    const r = await http(base(), 'DELETE', `${V2}/apps/ORDERS/host-1:orders:8080`);
    assert.equal(r.status, 200, r.text);
    const gone = await http(base(), 'GET', '/v1/health/service/orders');
    assert.deepEqual(gone.body, []);
    const metrics = await http(base(), 'GET', '/metrics');
    assert.match(metrics.text, /meshwork_eureka_requests_total\{operation="cancel",code="200"\} 1/);
    assert.match(metrics.text, /meshwork_eureka_requests_total\{operation="renew",code="404"\} 1/);
  });
});

describe('Eureka leases with an injected clock', () => {
  it('turns an instance DOWN once its lease lapses unrenewed, and UP on the next renewal', async () => {
    const clock = new FakeClock();
    const agent = await startTestAgent({ deps: { registryClock: clock } });
    try {
      const base = agent.url;
      const body = instanceBody({ leaseInfo: { renewalIntervalInSecs: 1, durationInSecs: 3 } });
      assert.equal((await http(base, 'POST', '/eureka/v2/apps/ORDERS', body)).status, 204);
      const status = async (): Promise<string> =>
        (
          await http(
            base,
            'GET',
            '/eureka/v2/apps/ORDERS/host-1:orders:8080',
            undefined,
            JSON_ACCEPT,
          )
        ).body.instance.status;
      clock.advance(2_000);
      assert.equal(await status(), 'UP');
      clock.advance(1_500);
      await new Promise((r) => setImmediate(r));
      assert.equal(await status(), 'DOWN');
      const health = await http(base, 'GET', '/v1/health/service/orders?passing');
      assert.deepEqual(health.body, []);
      assert.equal(
        (await http(base, 'PUT', '/eureka/v2/apps/ORDERS/host-1:orders:8080')).status,
        200,
      );
      assert.equal(await status(), 'UP');
    } finally {
      await agent.stop();
    }
  });
});

describe('Eureka whole-registry answers and the response cache', () => {
  it('reuses /apps and /apps/delta while the index holds, for at most 30 s; a change shows at once', async () => {
    const clock = new FakeClock();
    const agent = await startTestAgent({ deps: { registryClock: clock } });
    try {
      const base = agent.url;
      const apps = async (path = '/eureka/v2/apps/'): Promise<string> =>
        JSON.stringify((await http(base, 'GET', path, undefined, JSON_ACCEPT)).body);
      const renewal = (text: string): number =>
        (
          JSON.parse(text) as {
            applications: {
              application: { instance: { leaseInfo: { lastRenewalTimestamp: number } }[] }[];
            };
          }
        ).applications.application[0]?.instance[0]?.leaseInfo.lastRenewalTimestamp ?? -1;
      assert.equal(
        (await http(base, 'POST', '/eureka/v2/apps/ORDERS', instanceBody())).status,
        204,
      );
      const first = await apps();
      const firstDelta = await apps('/eureka/v2/apps/delta');
      clock.advance(10_000);
      assert.equal(
        (await http(base, 'PUT', '/eureka/v2/apps/ORDERS/host-1:orders:8080')).status,
        200,
      );
      // A renewal changes no index: the cached answers, their lease timestamps as they were.
      assert.equal(await apps(), first);
      assert.equal(await apps('/eureka/v2/apps/delta'), firstDelta);
      // Past the cache's 30 s, the same index renders afresh, with the renewal's time.
      clock.advance(25_000);
      const later = await apps();
      assert.ok(renewal(later) > renewal(first), `${renewal(later)} > ${renewal(first)}`);
      // A change of the catalog is seen at once, in the registry and in the delta.
      const second = instanceBody({ instanceId: 'host-2:orders:8080', hostName: 'host-2' });
      assert.equal((await http(base, 'POST', '/eureka/v2/apps/ORDERS', second)).status, 204);
      assert.match(await apps(), /host-2:orders:8080/);
      assert.match(await apps('/eureka/v2/apps/delta'), /host-2:orders:8080/);
    } finally {
      await agent.stop();
    }
  });
});

describe('Eureka API compression', () => {
  const agent = useTestAgent();
  const V2 = '/eureka/v2';

  /** The raw answer of GET `path` (undici does not decompress). */
  async function raw(path: string, headers: Record<string, string>) {
    const r = await request(`${agent().url}${path}`, { headers: { ...JSON_ACCEPT, ...headers } });
    return {
      status: r.statusCode,
      headers: r.headers,
      body: Buffer.from(await r.body.arrayBuffer()),
    };
  }

  it('gzips /apps and /apps/delta for a client that accepts it, as Eureka does, once per answer', async () => {
    for (let i = 0; i < 30; i++) {
      const body = instanceBody({ instanceId: `host-${i}:orders:8080`, hostName: `host-${i}` });
      assert.equal((await http(agent().url, 'POST', `${V2}/apps/ORDERS`, body)).status, 204);
    }
    for (const path of [`${V2}/apps/`, `${V2}/apps/delta`, '/eureka/apps/']) {
      const plain = await raw(path, {});
      assert.equal(plain.status, 200);
      assert.equal(plain.headers['content-encoding'], undefined);
      assert.equal(plain.headers.vary, 'accept-encoding');
      const zipped = await raw(path, { 'accept-encoding': 'gzip, deflate' });
      assert.equal(zipped.headers['content-encoding'], 'gzip', path);
      assert.equal(zipped.headers.vary, 'accept-encoding');
      assert.match(String(zipped.headers['content-type']), /json/);
      assert.equal(gunzipSync(zipped.body).toString(), plain.body.toString(), path);
      assert.ok(zipped.body.length < plain.body.length / 4, `${zipped.body.length} bytes`);
      // The cached answer's gzip is made once: the same bytes again.
      assert.deepEqual((await raw(path, { 'accept-encoding': 'gzip' })).body, zipped.body);
      // Refused or not offered: as it is.
      for (const refusal of ['gzip;q=0', 'identity', 'br'])
        assert.equal(
          (await raw(path, { 'accept-encoding': refusal })).headers['content-encoding'],
          undefined,
          refusal,
        );
    }
    // A real client that asks for gzip: curl --compressed, in XML too.
    const xml = await curl(`${agent().url}${V2}/apps/`, [
      '--compressed',
      '-H',
      'Accept: application/xml',
    ]);
    assert.equal(xml.headers['content-encoding'], 'gzip');
    assert.match(xml.text, /<instanceId>host-29:orders:8080<\/instanceId>/);
    // Any Accept-Encoding (fast-check): the answer, gzipped or as it is, never an error.
    const plain = (await raw(`${V2}/apps/`, {})).body.toString();
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ unit: fc.constantFrom(...'gzip,;q=0.1 *identitybr-x') }),
          fc.stringMatching(/^[\x20-\x7e]{0,40}$/),
        ),
        async (acceptEncoding) => {
          const r = await raw(`${V2}/apps/`, { 'accept-encoding': acceptEncoding });
          assert.equal(r.status, 200);
          const body = r.headers['content-encoding'] === 'gzip' ? gunzipSync(r.body) : r.body;
          assert.equal(body.toString(), plain);
        },
      ),
      { numRuns: 60 },
    );
    // Answers of one app or instance are small and stay as they are.
    const one = await raw(`${V2}/apps/ORDERS`, { 'accept-encoding': 'gzip' });
    assert.equal(one.status, 200);
    assert.equal(one.headers['content-encoding'], undefined);
  });
});

describe('Eureka API with ACLs', () => {
  const agent = useTestAgent({ flags: { acl: { enabled: true, defaultPolicy: 'deny' } } });

  it('takes service write for writes and service read for reads, under both prefixes', async () => {
    const base = agent().url;
    const boot = await http(base, 'PUT', '/v1/acl/bootstrap');
    assert.equal(boot.status, 200, boot.text);
    const admin = { 'x-consul-token': boot.body.SecretID as string };
    const token = async (name: string, rules: string): Promise<Record<string, string>> => {
      const p = await http(base, 'PUT', '/v1/acl/policy', { Name: name, Rules: rules }, admin);
      assert.equal(p.status, 200, p.text);
      const t = await http(base, 'PUT', '/v1/acl/token', { Policies: [{ Name: name }] }, admin);
      return { 'x-consul-token': t.body.SecretID as string };
    };
    const orders = await token('orders', 'service "orders" { policy = "write" }');
    const users = await token('users', 'service "users" { policy = "write" }');
    for (const prefix of ['/eureka/v2', '/eureka']) {
      const register = (headers: Record<string, string>) =>
        http(base, 'POST', `${prefix}/apps/ORDERS`, instanceBody(), headers);
      assert.equal((await register({})).status, 403);
      assert.equal((await register(users)).status, 403);
      assert.equal((await register(orders)).status, 204);
      const renew = (headers: Record<string, string>) =>
        http(base, 'PUT', `${prefix}/apps/ORDERS/host-1:orders:8080`, undefined, headers);
      assert.equal((await renew(users)).status, 403);
      assert.equal((await renew(orders)).status, 200);
      const read = (headers: Record<string, string>) =>
        http(base, 'GET', `${prefix}/apps/ORDERS`, undefined, { ...JSON_ACCEPT, ...headers });
      assert.equal((await read(users)).status, 403);
      assert.equal((await read(orders)).status, 200);
      // The whole registry takes read on every service.
      const all = await http(base, 'GET', `${prefix}/apps/`, undefined, {
        ...JSON_ACCEPT,
        ...orders,
      });
      assert.equal(all.status, 403);
      const mgmt = await http(base, 'GET', `${prefix}/apps/`, undefined, {
        ...JSON_ACCEPT,
        ...admin,
      });
      assert.equal(mgmt.status, 200, mgmt.text);
    }
  });
});

describe('Eureka API and the lease keeper', () => {
  it('tells the keeper of registrations, renewals and cancellations, and reads its last renewal', async () => {
    const calls: string[] = [];
    const leases: EurekaLeaseKeeper = {
      registered: (service, id, lease) =>
        calls.push(
          `registered ${service} ${id} ${lease.renewalIntervalInSecs}/${lease.durationInSecs}`,
        ),
      renewed: (service, id) => calls.push(`renewed ${service} ${id}`),
      cancelled: (service, id) => calls.push(`cancelled ${service} ${id}`),
      lastRenewal: (id) => (id === 'orders:host-1:orders:8080' ? 1_234_567 : undefined),
      states: () => [],
      reset: async () => ({ evicted: [] }),
      evict: async () => ({ evicted: [] }),
      close: () => undefined,
    };
    const { registry } = await startMemoryRegistry();
    const app = createApiServer({
      registry,
      metrics: new PromRegistry(),
      members: async () => [],
      eureka: { deltaRetentionMs: 180_000, leases },
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    try {
      assert.equal(
        (await http(base, 'POST', '/eureka/v2/apps/ORDERS', instanceBody())).status,
        204,
      );
      const other = instanceBody({ instanceId: 'o2', hostName: 'host-2' });
      assert.equal((await http(base, 'POST', '/eureka/apps/ORDERS', other)).status, 204);
      assert.equal(
        (await http(base, 'PUT', '/eureka/v2/apps/ORDERS/host-1:orders:8080')).status,
        200,
      );
      const view = await http(
        base,
        'GET',
        '/eureka/v2/apps/ORDERS/host-1:orders:8080',
        undefined,
        JSON_ACCEPT,
      );
      assert.equal(view.body.instance.leaseInfo.lastRenewalTimestamp, 1_234_567);
      assert.equal(
        (await http(base, 'DELETE', '/eureka/v2/apps/ORDERS/host-1:orders:8080')).status,
        200,
      );
      // Gone another way (the native API): the keeper hears of it from the change feed.
      assert.equal((await http(base, 'DELETE', '/api/v1/instances/orders:o2')).status, 200);
      await until(() => calls.includes('cancelled orders orders:o2'), 5_000, 'the keeper told');
      assert.deepEqual(calls, [
        'registered orders orders:host-1:orders:8080 30/90',
        'registered orders orders:o2 30/90',
        'renewed orders orders:host-1:orders:8080',
        'cancelled orders orders:host-1:orders:8080',
        'cancelled orders orders:o2',
      ]);
    } finally {
      await app.close();
      await registry.close();
    }
  });
});
