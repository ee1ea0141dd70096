/** Integration tests of the native API (/api/v1) over real HTTP on port 0. */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { FAST_CHECKS, http, startTestAgent, type TestAgent } from '../helpers/agent.js';
import { request } from 'undici';
import { arrivals } from '../helpers/arrivals.js';
import { collectSse } from '../helpers/sse.js';

const reg = (over: Record<string, unknown> = {}) => ({
  service: 'payments',
  id: 'payments-1',
  address: '10.0.0.5',
  port: 8080,
  ...over,
});

describe('native API', () => {
  let agent: TestAgent;
  let base: string;
  before(async () => {
    // The health tests probe every 100 ms, below the default 1 s floor.
    agent = await startTestAgent({ flags: FAST_CHECKS });
    base = agent.url;
  });
  after(async () => {
    await agent.stop();
  });

  describe('registration', () => {
    it('registers an instance and answers the stored instance with the index', async () => {
      const r = await http(
        base,
        'PUT',
        '/api/v1/instances',
        reg({
          ports: { http: 8080, grpc: 9090, admin: 9901 },
          tags: ['v2', 'primary'],
          meta: { version: '2.1.0', zone: 'eu-1a', region: 'eu-1', environment: 'prod' },
          weights: { passing: 10, warning: 1 },
          priority: 1,
          capacity: 100,
          protocols: ['http', 'grpc'],
        }),
      );
      assert.equal(r.status, 200, r.text);
      assert.ok(r.body.index > 0);
      assert.equal(r.headers['x-meshwork-index'], String(r.body.index));
      assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
      const i = r.body.instance;
      assert.equal(i.id, 'payments-1');
      assert.deepEqual(i.ports, { http: 8080, grpc: 9090, admin: 9901 });
      assert.deepEqual(i.weights, { passing: 10, warning: 1 });
      assert.equal(i.source, 'self');
      assert.equal(i.status, 'passing');
      assert.equal(typeof i.createdAt, 'number');
      const got = await http(base, 'GET', '/api/v1/instances/payments-1');
      assert.equal(got.status, 200);
      assert.deepEqual(got.body.instance, i);
    });

    it('is idempotent: the same registration again writes nothing and keeps the index', async () => {
      const a = await http(
        base,
        'PUT',
        '/api/v1/instances',
        reg({ id: 'idem-1', service: 'idem' }),
      );
      const b = await http(
        base,
        'PUT',
        '/api/v1/instances',
        reg({ id: 'idem-1', service: 'idem' }),
      );
      assert.equal(a.status, 200);
      assert.equal(b.body.instance.modifyIndex, a.body.instance.modifyIndex);
      assert.equal(b.body.instance.createdAt, a.body.instance.createdAt);
    });

    it('generates an id when none is given', async () => {
      const r = await http(base, 'PUT', '/api/v1/instances', {
        service: 'gen',
        address: 'gen.internal',
        port: 80,
      });
      assert.equal(r.status, 200);
      assert.match(r.body.instance.id, /^gen-[0-9a-f]{12}$/);
    });

    it('accepts IPv6 addresses and hostnames', async () => {
      for (const address of ['::1', 'fe80::1', 'db-1.eu.internal', '192.168.1.10']) {
        const r = await http(base, 'PUT', '/api/v1/instances', {
          service: 'addr',
          address,
          port: 1,
        });
        assert.equal(r.status, 200, `${address}: ${r.text}`);
      }
    });

    it('refuses with 409 an id that belongs to another service', async () => {
      await http(base, 'PUT', '/api/v1/instances', reg({ id: 'shared-id', service: 'one' }));
      const r = await http(
        base,
        'PUT',
        '/api/v1/instances',
        reg({ id: 'shared-id', service: 'two' }),
      );
      assert.equal(r.status, 409);
      assert.equal(r.body.error.code, 'MESHWORK_ERR_REGISTRY_INSTANCE_ID_CONFLICT');
      assert.equal(r.body.error.field, 'id');
    });

    it('deregisters, and answers 404 for an unknown instance', async () => {
      await http(base, 'PUT', '/api/v1/instances', reg({ id: 'gone-1', service: 'gone' }));
      const d = await http(base, 'DELETE', '/api/v1/instances/gone-1');
      assert.equal(d.status, 200);
      assert.equal(d.body.deleted, true);
      const g = await http(base, 'GET', '/api/v1/instances/gone-1');
      assert.equal(g.status, 404);
      assert.equal(g.body.error.code, 'MESHWORK_ERR_REGISTRY_INSTANCE_NOT_FOUND');
      const d2 = await http(base, 'DELETE', '/api/v1/instances/gone-1');
      assert.equal(d2.status, 404);
    });
  });

  describe('bad input', () => {
    const cases: [string, unknown, string][] = [
      ['service name with upper case', reg({ service: 'Payments' }), 'service'],
      ['service name too long', reg({ service: 'a'.repeat(64) }), 'service'],
      ['port out of range', reg({ port: 70000 }), 'port'],
      ['port as a string', reg({ port: '8080' }), 'port'],
      ['bad address', reg({ address: 'not an address!' }), 'address'],
      ['unknown field', reg({ prot: 1 }), 'prot'],
      ['too many tags', reg({ tags: Array.from({ length: 65 }, (_, i) => `t${i}`) }), 'tags'],
      ['meta value too long', reg({ meta: { version: 'x'.repeat(513) } }), 'meta.version'],
      ['check without a kind', reg({ checks: [{ interval: '5s' }] }), 'checks[0].kind'],
      ['check with a bad interval', reg({ checks: [{ ttl: 'soon' }] }), 'checks[0].ttl'],
      ['http check with a bad url', reg({ checks: [{ http: 'ftp//x' }] }), 'checks[0].http'],
    ];
    for (const [name, body, field] of cases) {
      it(`answers 400 naming the field: ${name}`, async () => {
        const r = await http(base, 'PUT', '/api/v1/instances', body);
        assert.equal(r.status, 400, r.text);
        assert.equal(r.body.error.code, 'MESHWORK_ERR_API_VALIDATION');
        assert.equal(r.body.error.field, field);
        assert.ok(r.body.error.message.length > field.length + 2, r.body.error.message);
      });
    }

    it('answers 400 for malformed JSON', async () => {
      const r = await http(base, 'PUT', '/api/v1/instances', '{"service": "a",', {
        'content-type': 'application/json',
      });
      assert.equal(r.status, 400);
      assert.equal(r.body.error.code, 'MESHWORK_ERR_API_MALFORMED_BODY');
    });

    it('accepts a body without a Content-Type', async () => {
      const r = await http(
        base,
        'PUT',
        '/api/v1/instances',
        JSON.stringify(reg({ id: 'noct-1', service: 'noct' })),
      );
      assert.equal(r.status, 200, r.text);
    });

    it('answers 415 for a non-JSON content type', async () => {
      const r = await http(base, 'PUT', '/api/v1/instances', '<xml/>', {
        'content-type': 'application/xml',
      });
      assert.equal(r.status, 415);
      assert.equal(r.body.error.code, 'MESHWORK_ERR_API_UNSUPPORTED_MEDIA_TYPE');
    });

    it('answers 413 for a body over 1 MiB and keeps serving', async () => {
      const big = JSON.stringify(reg({ meta: { description: 'x'.repeat(1024 * 1024) } }));
      const r = await http(base, 'PUT', '/api/v1/instances', big, {
        'content-type': 'application/json',
      });
      assert.equal(r.status, 413);
      assert.equal(r.body.error.code, 'MESHWORK_ERR_API_BODY_TOO_LARGE');
      const live = await http(base, 'GET', '/health/live');
      assert.equal(live.status, 200);
    });

    it('answers 400 for a bad query parameter', async () => {
      const r = await http(base, 'GET', '/api/v1/services/payments/instances?status=sleeping');
      assert.equal(r.status, 400);
      assert.equal(r.body.error.field, 'status');
      const w = await http(base, 'GET', '/api/v1/services/payments/instances?index=1&wait=forever');
      assert.equal(w.status, 400);
      assert.equal(w.body.error.field, 'wait');
    });

    it('answers 404 with a JSON body for an unknown route', async () => {
      const r = await http(base, 'GET', '/api/v1/nothing-here');
      assert.equal(r.status, 404);
      assert.equal(r.body.error.code, 'MESHWORK_ERR_API_ROUTE_NOT_FOUND');
    });
  });

  describe('queries', () => {
    before(async () => {
      const mk = (id: string, zone: string, tags: string[], version: string) =>
        http(base, 'PUT', '/api/v1/instances', {
          service: 'orders',
          id,
          address: '10.1.0.1',
          port: 9000,
          tags,
          meta: { zone, version },
        });
      await mk('orders-1', 'a', ['v1'], '1');
      await mk('orders-2', 'b', ['v2', 'canary'], '2');
      await mk('orders-3', 'a', ['v2'], '2');
    });

    it('filters by tag, meta, zone and status', async () => {
      const ids = async (qs: string) =>
        (await http(base, 'GET', `/api/v1/services/orders/instances${qs}`)).body.instances.map(
          (i: { id: string }) => i.id,
        );
      assert.deepEqual(await ids(''), ['orders-1', 'orders-2', 'orders-3']);
      assert.deepEqual(await ids('?tag=v2'), ['orders-2', 'orders-3']);
      assert.deepEqual(await ids('?tag=v2&tag=canary'), ['orders-2']);
      assert.deepEqual(await ids('?meta.version=2&zone=a'), ['orders-3']);
      assert.deepEqual(await ids('?status=passing'), ['orders-1', 'orders-2', 'orders-3']);
      assert.deepEqual(await ids('?status=critical'), []);
    });

    it('lists services with counts by status and tags', async () => {
      const r = await http(base, 'GET', '/api/v1/services');
      const orders = r.body.services.find((s: { name: string }) => s.name === 'orders');
      assert.equal(orders.instances, 3);
      assert.equal(orders.byStatus.passing, 3);
      assert.deepEqual(orders.tags, ['canary', 'v1', 'v2']);
      assert.equal(r.headers['x-meshwork-index'], String(r.body.index));
    });

    it('answers an empty list with an index for an unknown service', async () => {
      const r = await http(base, 'GET', '/api/v1/services/nobody/instances');
      assert.equal(r.status, 200);
      assert.deepEqual(r.body.instances, []);
      assert.ok(Number(r.headers['x-meshwork-index']) > 0);
    });
  });

  describe('blocking queries', () => {
    it('returns at once when the index is already past', async () => {
      const r = await http(base, 'GET', '/api/v1/services/orders/instances?index=1&wait=30s');
      assert.equal(r.status, 200);
      assert.ok(r.body.index > 1);
    });

    it('returns when the service changes', async () => {
      const first = await http(base, 'PUT', '/api/v1/instances', {
        service: 'blocky',
        id: 'blocky-1',
        address: '10.0.0.1',
        port: 1,
      });
      const idx = first.body.index;
      const pending = http(base, 'GET', `/api/v1/services/blocky/instances?index=${idx}&wait=30s`);
      // The change: registered after the query is parked (the hub counts it).
      while (agent.registry.watchers().blocking === 0) await new Promise((r) => setImmediate(r));
      const second = await http(base, 'PUT', '/api/v1/instances', {
        service: 'blocky',
        id: 'blocky-2',
        address: '10.0.0.2',
        port: 1,
      });
      const r = await pending;
      assert.equal(r.body.index, second.body.index);
      assert.equal(r.body.instances.length, 2);
    });

    it('returns the same index after wait when nothing changed', async () => {
      const now = await http(base, 'GET', '/api/v1/services/orders/instances');
      const r = await http(
        base,
        'GET',
        `/api/v1/services/orders/instances?index=${now.body.index}&wait=50ms`,
      );
      assert.equal(r.body.index, now.body.index);
    });
  });

  describe('watch stream', () => {
    it('sends a snapshot, then deltas for its service only', async () => {
      await http(base, 'PUT', '/api/v1/instances', {
        service: 'streamed',
        id: 'streamed-1',
        address: '10.0.0.1',
        port: 1,
      });
      // eslint-disable-next-line @typescript-eslint/no-explicit-any -- events are read as loose JSON
      const stream = await collectSse<{ type: string; [k: string]: any }>(
        `${base}/api/v1/watch?service=streamed`,
      );
      assert.equal(stream.status, 200);
      assert.match(stream.contentType, /text\/event-stream/);
      const { events, until } = stream;
      await until(1);
      assert.equal(events[0]?.type, 'snapshot');
      assert.deepEqual(
        events[0]?.instances.map((i: { id: string }) => i.id),
        ['streamed-1'],
      );
      await http(base, 'PUT', '/api/v1/instances', {
        service: 'other',
        id: 'other-1',
        address: '10.0.0.1',
        port: 1,
      });
      await http(base, 'PUT', '/api/v1/instances', {
        service: 'streamed',
        id: 'streamed-2',
        address: '10.0.0.2',
        port: 1,
      });
      await http(base, 'DELETE', '/api/v1/instances/streamed-1');
      await until(3);
      assert.equal(events[1]?.type, 'upsert');
      assert.equal(events[1]?.instance.id, 'streamed-2');
      assert.equal(events[2]?.type, 'delete');
      assert.equal(events[2]?.id, 'streamed-1');
      assert.ok(
        events.every(
          (e) =>
            e.type === 'snapshot' || e.instance?.service === 'streamed' || e.service === 'streamed',
        ),
      );
      await stream.close();
    });

    it('with ?interval= sends changes that come close together in one write', async () => {
      const ac = new AbortController();
      const res = await request(`${base}/api/v1/watch?service=grouped&interval=2s`, {
        signal: ac.signal,
      });
      assert.equal(res.statusCode, 200);
      const chunks: string[] = [];
      const arrived = arrivals<string>();
      const reading = (async () => {
        for await (const c of res.body) arrived.push((c as Buffer).toString());
      })().catch(() => undefined);
      await arrived.until(1); // the snapshot, written at once
      assert.match(arrived.items[0] ?? '', /^event: snapshot/);
      for (const n of [1, 2, 3])
        await http(base, 'PUT', '/api/v1/instances', {
          service: 'grouped',
          id: `grouped-${n}`,
          address: '10.0.0.1',
          port: n,
        });
      await arrived.until(2);
      chunks.push(...arrived.items.slice(1));
      ac.abort();
      await reading;
      // The three upserts came within 2 s of the snapshot's write: held, then one write.
      assert.equal(chunks.length, 1, JSON.stringify(chunks));
      assert.equal((chunks[0]?.match(/^event: upsert$/gm) ?? []).length, 3);
    });

    it('refuses an interval that is not a duration from 0 to 10s', async () => {
      for (const bad of ['11s', 'soon', '-1']) {
        const r = await http(base, 'GET', `/api/v1/watch?interval=${bad}`);
        assert.equal(r.status, 400, bad);
        assert.match(JSON.stringify(r.body), /interval/);
      }
    });
  });

  describe('health', () => {
    let target: Server;
    let targetStatus = 200;
    let targetUrl: string;
    before(async () => {
      target = createServer((_req, res) => {
        res.statusCode = targetStatus;
        res.end('ok');
      });
      await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
      targetUrl = `http://127.0.0.1:${(target.address() as AddressInfo).port}/health`;
    });
    after(() => new Promise<void>((r) => target.close(() => r())));

    const waitForStatus = async (id: string, status: string) => {
      let idx = 0;
      for (;;) {
        const r = await http(base, 'GET', `/api/v1/instances/${id}?index=${idx}&wait=10s`);
        if (r.body.instance.status === status) return r.body.instance;
        idx = r.body.index;
      }
    };

    it('runs an HTTP check against a real target and follows its status', async () => {
      targetStatus = 200;
      await http(base, 'PUT', '/api/v1/instances', {
        service: 'checked',
        id: 'checked-1',
        address: '127.0.0.1',
        port: 1,
        checks: [{ http: targetUrl, interval: '100ms', timeout: '1s' }],
      });
      await waitForStatus('checked-1', 'passing');
      targetStatus = 500;
      const inst = await waitForStatus('checked-1', 'critical');
      assert.match(inst.statusReason, /500/);
      targetStatus = 429;
      await waitForStatus('checked-1', 'warning');
    });

    it('runs a TCP check against a real listener and turns critical when it closes', async () => {
      const listener = createNetServer((socket) => socket.end());
      await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
      const port = (listener.address() as AddressInfo).port;
      await http(base, 'PUT', '/api/v1/instances', {
        service: 'tcpchecked',
        id: 'tcpchecked-1',
        address: '127.0.0.1',
        port,
        checks: [{ tcp: `127.0.0.1:${port}`, interval: '100ms', timeout: '1s' }],
      });
      await waitForStatus('tcpchecked-1', 'passing');
      await new Promise<void>((r) => listener.close(() => r()));
      const inst = await waitForStatus('tcpchecked-1', 'critical');
      assert.match(inst.statusReason, /ECONNREFUSED|refused/i);
    });

    it('turns a TTL instance passing on heartbeat; heartbeats that keep the status write nothing', async () => {
      const r = await http(base, 'PUT', '/api/v1/instances', {
        service: 'beats',
        id: 'beats-1',
        address: '127.0.0.1',
        port: 1,
        checks: [{ ttl: '30s' }],
      });
      assert.equal(r.body.instance.status, 'critical');
      const hb = await http(base, 'PUT', '/api/v1/instances/beats-1/heartbeat');
      assert.equal(hb.status, 200, hb.text);
      assert.equal(hb.body.status, 'passing');
      const before = agent.registry.index;
      for (let i = 0; i < 5; i++)
        assert.equal(
          (await http(base, 'PUT', '/api/v1/instances/beats-1/heartbeat', {})).status,
          200,
        );
      assert.equal(agent.registry.index, before);
      const warn = await http(base, 'PUT', '/api/v1/instances/beats-1/heartbeat', {
        status: 'warning',
        output: 'slow disk',
      });
      assert.equal(warn.status, 200);
      assert.equal(warn.body.status, 'warning');
      const inst = (await http(base, 'GET', '/api/v1/instances/beats-1')).body.instance;
      assert.match(inst.statusReason, /slow disk/);
    });

    it('answers 404 for a heartbeat to an unknown instance and 409 without a TTL check', async () => {
      assert.equal((await http(base, 'PUT', '/api/v1/instances/nope/heartbeat')).status, 404);
      await http(base, 'PUT', '/api/v1/instances', {
        service: 'nottl',
        id: 'nottl-1',
        address: '127.0.0.1',
        port: 1,
      });
      const r = await http(base, 'PUT', '/api/v1/instances/nottl-1/heartbeat');
      assert.equal(r.status, 409);
      assert.equal(r.body.error.code, 'MESHWORK_ERR_REGISTRY_NO_TTL_CHECK');
    });

    it('puts an instance, then the whole agent, in maintenance with a reason', async () => {
      await http(base, 'PUT', '/api/v1/instances', {
        service: 'maint',
        id: 'maint-1',
        address: '127.0.0.1',
        port: 1,
      });
      await http(base, 'PUT', '/api/v1/instances', {
        service: 'maint',
        id: 'maint-2',
        address: '127.0.0.1',
        port: 2,
      });
      const m = await http(base, 'PUT', '/api/v1/instances/maint-1/maintenance', {
        enabled: true,
        reason: 'kernel upgrade',
      });
      assert.equal(m.status, 200, m.text);
      assert.equal(m.body.instance.status, 'maintenance');
      assert.match(m.body.instance.statusReason, /kernel upgrade/);
      const a = await http(base, 'PUT', '/api/v1/agent/maintenance', {
        enabled: true,
        reason: 'rack move',
      });
      assert.equal(a.status, 200);
      const list = await http(base, 'GET', '/api/v1/services/maint/instances');
      assert.deepEqual(
        list.body.instances.map((i: { status: string }) => i.status),
        ['maintenance', 'maintenance'],
      );
      assert.match(list.body.instances[1].statusReason, /rack move/);
      await http(base, 'PUT', '/api/v1/agent/maintenance', { enabled: false });
      await http(base, 'PUT', '/api/v1/instances/maint-1/maintenance', { enabled: false });
      const back = await http(base, 'GET', '/api/v1/services/maint/instances');
      assert.deepEqual(
        back.body.instances.map((i: { status: string }) => i.status),
        ['passing', 'passing'],
      );
    });
  });

  describe('apply', () => {
    it('creates, updates and removes only what the set declared', async () => {
      await http(base, 'PUT', '/api/v1/instances', {
        service: 'static',
        id: 'static-manual',
        address: '10.0.0.9',
        port: 1,
      });
      const one = await http(base, 'PUT', '/api/v1/apply', {
        set: 'file-a',
        instances: [
          { service: 'static', id: 'static-1', address: '10.0.0.1', port: 1 },
          { service: 'static', id: 'static-2', address: '10.0.0.2', port: 1 },
        ],
      });
      assert.equal(one.status, 200, one.text);
      assert.deepEqual(one.body.created, ['static-1', 'static-2']);
      const two = await http(base, 'PUT', '/api/v1/apply', {
        set: 'file-a',
        instances: [{ service: 'static', id: 'static-1', address: '10.0.0.11', port: 1 }],
      });
      assert.deepEqual(two.body.updated, ['static-1']);
      assert.deepEqual(two.body.deleted, ['static-2']);
      const list = await http(base, 'GET', '/api/v1/services/static/instances');
      assert.deepEqual(
        list.body.instances.map((i: { id: string }) => i.id),
        ['static-1', 'static-manual'],
      );
      assert.equal(list.body.instances[0].source, 'config');
      const three = await http(base, 'PUT', '/api/v1/apply', {
        set: 'file-a',
        instances: [{ service: 'static', id: 'static-1', address: '10.0.0.11', port: 1 }],
      });
      assert.deepEqual(three.body.unchanged, ['static-1']);
      // Nothing was written: the instance keeps the modify index of the second apply. (The
      // answer's index is the agent's current one, which other background writes may move.)
      const after3 = await http(base, 'GET', '/api/v1/instances/static-1');
      assert.equal(after3.body.instance.modifyIndex, two.body.index);
    });

    it('refuses a bad entry naming its position, and applies nothing', async () => {
      const r = await http(base, 'PUT', '/api/v1/apply', {
        set: 'file-b',
        instances: [
          { service: 'bset', id: 'bset-1', address: '10.0.0.1', port: 1 },
          { service: 'bset', id: 'bset-2', address: '10.0.0.1', port: 0 },
        ],
      });
      assert.equal(r.status, 400);
      assert.equal(r.body.error.field, 'instances[1].port');
      assert.equal((await http(base, 'GET', '/api/v1/instances/bset-1')).status, 404);
    });
  });

  describe('kv', () => {
    it('puts, gets, lists recursively, check-and-sets and deletes', async () => {
      const p = await http(base, 'PUT', '/api/v1/kv/app/db/url', 'postgres://db', {
        'content-type': 'text/plain',
      });
      assert.deepEqual(p.body.ok, true);
      const g = await http(base, 'GET', '/api/v1/kv/app/db/url');
      assert.equal(Buffer.from(g.body.entry.value, 'base64').toString(), 'postgres://db');
      const mi = g.body.entry.modifyIndex;
      assert.equal(
        (await http(base, 'PUT', `/api/v1/kv/app/db/url?cas=${mi + 100}`, 'x')).body.ok,
        false,
      );
      assert.equal((await http(base, 'PUT', `/api/v1/kv/app/db/url?cas=${mi}`, 'y')).body.ok, true);
      assert.equal((await http(base, 'PUT', '/api/v1/kv/app/db/url?cas=0', 'z')).body.ok, false);
      await http(base, 'PUT', '/api/v1/kv/app/cache', 'redis');
      const list = await http(base, 'GET', '/api/v1/kv/app/?recurse');
      assert.deepEqual(
        list.body.entries.map((e: { key: string }) => e.key),
        ['app/cache', 'app/db/url'],
      );
      await http(base, 'DELETE', '/api/v1/kv/app/?recurse');
      assert.equal((await http(base, 'GET', '/api/v1/kv/app/cache')).status, 404);
    });
  });

  describe('agent endpoints', () => {
    it('serves /health/live, /health/ready and Prometheus /metrics', async () => {
      assert.equal((await http(base, 'GET', '/health/live')).status, 200);
      assert.equal((await http(base, 'GET', '/health/ready')).status, 200);
      const m = await http(base, 'GET', '/metrics');
      assert.equal(m.status, 200);
      for (const name of [
        'meshwork_registry_instances{status="passing"}',
        'meshwork_registry_registrations_total',
        'meshwork_registry_check_runs_total',
        'meshwork_registry_check_duration_seconds',
        'meshwork_registry_watchers{kind="stream"}',
        'meshwork_registry_index',
      ]) {
        assert.ok(m.text.includes(name), `missing ${name}`);
      }
    });
  });
});
