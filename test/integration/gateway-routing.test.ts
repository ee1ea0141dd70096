/**
 * The gateway against a real agent and real upstreams on loopback (issue 7): host routing,
 * route rules (prefix/exact/regex path, method, header, query), subsets with a weighted split,
 * prefix rewrite and header edits, hop-by-hop stripping, forwarded headers, JSON 404s.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, it } from 'node:test';
import { createRegistryClient, type RegistryClient } from '../../src/client/registry-client.js';
import type { RunningGateway } from '../../src/gateway/gateway.js';
import { resolveGatewayOptions, type GatewayOptions } from '../../src/gateway/options.js';
import { startTestAgent, type TestAgent } from '../helpers/agent.js';
import {
  call,
  describeOnEachHttp1,
  startTestGateway,
  startUpstream,
  until,
  type Upstream,
} from '../helpers/gateway.js';

/** Sends raw bytes and answers everything the server wrote until it closed. */
async function raw(url: string, text: string): Promise<string> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  let out = '';
  socket.on('data', (d: Buffer) => (out += d.toString('latin1')));
  socket.write(text);
  await new Promise((resolve) => socket.once('close', resolve));
  return out;
}

// Each test runs on the gateway's own HTTP/1 server and client, and on its fallback.
describeOnEachHttp1('gateway routing', (http1) => {
  let agent: TestAgent;
  let registry: RegistryClient;
  let gateway: RunningGateway;
  const ups: Record<string, Upstream> = {};

  before(async () => {
    agent = await startTestAgent();
    registry = createRegistryClient({ addresses: [agent.url] });
    for (const id of ['users-1', 'orders-v1', 'orders-v2', 'search-1', 'admin-1']) {
      ups[id] = await startUpstream(id);
    }
    const reg = async (service: string, id: string, meta: Record<string, string> = {}) =>
      registry.register({
        service,
        id,
        address: '127.0.0.1',
        port: (ups[id] as Upstream).port,
        meta,
      });
    await reg('users', 'users-1');
    await reg('orders', 'orders-v1', { version: 'v1' });
    await reg('orders', 'orders-v2', { version: 'v2' });
    await reg('search', 'search-1');
    await reg('admin', 'admin-1');
    gateway = await startTestGateway(
      agent.url,
      {
        routes: [
          {
            name: 'orders-split',
            match: { path: { prefix: '/api/orders' } },
            backends: [
              { service: 'orders', subset: { meta: { version: 'v1' } }, weight: 80 },
              { service: 'orders', subset: { meta: { version: 'v2' } }, weight: 20 },
            ],
            prefixRewrite: '/orders',
            requestHeaders: { set: { 'x-route': 'orders' }, remove: ['x-secret'] },
            responseHeaders: { set: { 'x-served-by': 'gateway' }, remove: ['x-upstream'] },
          },
          {
            name: 'canary',
            match: { path: { exact: '/canary' }, headers: [{ name: 'x-canary', exact: '1' }] },
            service: 'orders',
            subset: { meta: { version: 'v2' } },
          },
          {
            name: 'search',
            match: {
              path: { regex: '/search/[a-z]+' },
              methods: ['GET'],
              query: [{ name: 'q', present: true }],
            },
            service: 'search',
          },
          { name: 'admin', match: { host: 'admin.example.com' }, service: 'admin' },
        ],
      },
      http1.deps,
    );
  });
  after(async () => {
    await gateway.close();
    for (const u of Object.values(ups)) await u.close();
    await agent.stop();
  });

  it('routes by Host <service>.<domain> to the service', async () => {
    const r = await call(gateway.url, '/hello?x=1', { headers: { host: 'users.mesh.local' } });
    assert.equal(r.status, 200);
    assert.equal(r.text, 'users-1');
    assert.equal(ups['users-1']?.seen.at(-1)?.url, '/hello?x=1');
  });

  it('answers 404 with a JSON body naming what was asked when no route matches', async () => {
    const r = await call(gateway.url, '/nothing/here', { headers: { host: 'nowhere.example' } });
    assert.equal(r.status, 404);
    assert.match(String(r.headers['content-type']), /application\/json/);
    const body = JSON.parse(r.text);
    assert.equal(body.error.code, 'MESHWORK_ERR_PROXY_ROUTE_NOT_FOUND');
    assert.equal(body.error.path, '/nothing/here');
    assert.equal(body.error.host, 'nowhere.example');
    assert.equal(body.error.method, 'GET');
  });

  it('answers 404 for a Host naming a service the registry does not know, and keeps nothing of it', async () => {
    const r = await call(gateway.url, '/x', { headers: { host: 'ghost.mesh.local' } });
    assert.equal(r.status, 404);
    const body = JSON.parse(r.text);
    assert.equal(body.error.code, 'MESHWORK_ERR_PROXY_ROUTE_NOT_FOUND');
    assert.equal(body.error.host, 'ghost.mesh.local');
    assert.equal(body.error.path, '/x');
    // No cluster, and no watch, are left for the name.
    assert.ok(![...gateway.clusters()].some((c) => c.service === 'ghost'));
    assert.doesNotMatch((await call(gateway.adminUrl, '/metrics')).text, /service="ghost"/);
    // Once the service exists, the same Host reaches it.
    const u = await startUpstream('ghost-1');
    ups['ghost-1'] = u;
    await registry.register({
      service: 'ghost',
      id: 'ghost-1',
      address: '127.0.0.1',
      port: u.port,
    });
    const again = await call(gateway.url, '/', { headers: { host: 'ghost.mesh.local' } });
    assert.equal(again.status, 200);
    assert.equal(again.text, 'ghost-1');
  });

  it('keeps no cluster or watch for made-up Hosts, however many come at once', async () => {
    const before = [...gateway.clusters()].length;
    // More at once than the registry client's pool for short requests (16 connections).
    const rs = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        call(gateway.url, '/', { headers: { host: `made-up-${i % 20}.mesh.local` } }),
      ),
    );
    assert.deepEqual(new Set(rs.map((r) => r.status)), new Set([404]));
    assert.equal([...gateway.clusters()].length, before);
    assert.doesNotMatch((await call(gateway.adminUrl, '/metrics')).text, /made-up/);
    const r = await call(gateway.url, '/', { headers: { host: 'users.mesh.local' } });
    assert.equal(r.text, 'users-1');
  });

  it('matches exact path plus header, regex path plus method plus query, and host rules', async () => {
    assert.equal(
      (await call(gateway.url, '/canary', { headers: { 'x-canary': '1' } })).text,
      'orders-v2',
    );
    assert.equal((await call(gateway.url, '/canary')).status, 404);
    assert.equal((await call(gateway.url, '/search/books?q=x')).text, 'search-1');
    assert.equal((await call(gateway.url, '/search/books')).status, 404);
    assert.equal((await call(gateway.url, '/search/Books?q=x')).status, 404);
    assert.equal((await call(gateway.url, '/search/books?q=x', { method: 'DELETE' })).status, 404);
    assert.equal(
      (await call(gateway.url, '/x', { headers: { host: 'admin.example.com:8080' } })).text,
      'admin-1',
    );
  });

  it('rewrites the prefix and edits request and response headers', async () => {
    const r = await call(gateway.url, '/api/orders/42?full=1', {
      headers: { 'x-secret': 'no', 'x-route': 'caller' },
    });
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-served-by'], 'gateway');
    assert.equal(r.headers['x-upstream'], undefined);
    const seen = [ups['orders-v1'], ups['orders-v2']]
      .flatMap((u) => u?.seen ?? [])
      .find((s) => s.url === '/orders/42?full=1');
    assert.ok(seen, 'the upstream saw the rewritten path');
    assert.equal(seen.headers['x-secret'], undefined);
    assert.equal(seen.headers['x-route'], 'orders');
  });

  it('splits by weight across subsets within 3% over 2,000 requests', async () => {
    const v1 = ups['orders-v1'] as Upstream;
    const v2 = ups['orders-v2'] as Upstream;
    v1.hits = 0;
    v2.hits = 0;
    for (let i = 0; i < 2000; i += 50) {
      await Promise.all(Array.from({ length: 50 }, () => call(gateway.url, '/api/orders/x')));
    }
    assert.equal(v1.hits + v2.hits, 2000);
    assert.ok(Math.abs(v2.hits / 2000 - 0.2) <= 0.03, `v2 got ${v2.hits} of 2000`);
  });

  it('strips hop-by-hop headers both ways and adds the forwarding headers', async () => {
    const u = ups['users-1'] as Upstream;
    u.handler = (req, res) => {
      req.resume();
      res.writeHead(200, {
        connection: 'x-hop, keep-alive',
        'x-hop': 'secret',
        'keep-alive': 'timeout=5',
        'x-end': 'kept',
      });
      res.end('ok');
    };
    try {
      const text = await raw(
        gateway.url,
        'GET /hop HTTP/1.1\r\nHost: users.mesh.local\r\nConnection: x-custom, close\r\n' +
          'X-Custom: drop-me\r\nKeep-Alive: timeout=1\r\nTE: trailers\r\nProxy-Authorization: x\r\n' +
          'X-Forwarded-For: 10.0.0.1\r\nX-Kept: yes\r\n\r\n',
      );
      assert.match(text, /^HTTP\/1\.1 200/);
      assert.doesNotMatch(text, /x-hop/i);
      assert.doesNotMatch(text, /timeout=5/);
      assert.match(text, /x-end: kept/i);
      const seen = u.seen.at(-1)?.headers ?? {};
      assert.equal(seen['x-custom'], undefined);
      assert.equal(seen['keep-alive'], undefined);
      assert.equal(seen.te, undefined);
      assert.equal(seen['proxy-authorization'], undefined);
      assert.equal(seen['x-kept'], 'yes');
      assert.equal(seen.host, 'users.mesh.local');
      assert.equal(seen['x-forwarded-for'], '10.0.0.1, 127.0.0.1');
      assert.equal(seen['x-forwarded-proto'], 'http');
      assert.equal(seen['x-forwarded-host'], 'users.mesh.local');
      assert.equal(seen.forwarded, 'for=127.0.0.1;host=users.mesh.local;proto=http');
      assert.equal(seen['x-meshwork-attempt'], '1');
    } finally {
      u.handler = undefined;
    }
  });

  it('follows registry changes without a registry call per request', async () => {
    const extra = await startUpstream('users-2');
    try {
      await registry.register({
        service: 'users',
        id: 'users-2',
        address: '127.0.0.1',
        port: extra.port,
      });
      await until(
        async () => {
          const r = await call(gateway.url, '/', { headers: { host: 'users.mesh.local' } });
          return r.text === 'users-2';
        },
        5_000,
        'the new instance to take traffic',
      );
      await registry.deregister('users-2');
      await until(() =>
        [...gateway.clusters()].some((c) => c.service === 'users' && c.total === 1),
      );
    } finally {
      await extra.close();
    }
  });

  it('answers 400 to a malformed request and keeps serving', async () => {
    const text = await raw(gateway.url, 'NOT A REQUEST\r\n\r\n');
    assert.match(text, /^HTTP\/1\.1 400/);
    assert.match(text, /MESHWORK_ERR_PROXY_BAD_REQUEST/);
    const big = await raw(
      gateway.url,
      `GET / HTTP/1.1\r\nHost: users.mesh.local\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
    );
    assert.match(big, /^HTTP\/1\.1 431/);
    const r = await call(gateway.url, '/', { headers: { host: 'users.mesh.local' } });
    assert.equal(r.status, 200);
  });

  it('drops connections unanswered past maxMalformedPerSecond, and still serves good requests', async () => {
    let answered = 0;
    const tries = 60;
    for (let i = 0; i < tries; i++) {
      if (/^HTTP\/1\.1 400/.test(await raw(gateway.url, 'BAD\r\n\r\n'))) answered++;
    }
    // 20 per second per address: 60 tries span at most a few windows on a busy machine.
    assert.ok(answered < tries, `answered ${answered} of ${tries}`);
    assert.ok(answered >= 1);
    const r = await call(gateway.url, '/', { headers: { host: 'users.mesh.local' } });
    assert.equal(r.status, 200);
  });

  it('serves /metrics and /health/ready on the admin port', async () => {
    const ready = await call(gateway.adminUrl, '/health/ready');
    assert.equal(ready.status, 200);
    const m = await call(gateway.adminUrl, '/metrics');
    assert.equal(m.status, 200);
    assert.match(
      m.text,
      /meshwork_gateway_requests_total\{route="orders-split",service="orders\{version=v1\}",class="2xx"\} \d+/,
    );
    assert.match(m.text, /meshwork_gateway_upstream_latency_seconds_bucket/);
    assert.match(m.text, /meshwork_gateway_panic\{service="users"\} 0/);
    assert.match(m.text, /meshwork_gateway_active_connections/);
  });

  // Issue 17: a gateway that cannot run its own HTTP/1 server and client says so.
  it('reports on /metrics whether it runs on the HTTP/1 fallback', async () => {
    const m = await call(gateway.adminUrl, '/metrics');
    const fallback = http1.deps.nativeHttp1 === undefined ? 0 : 1;
    for (const side of ['upstream', 'downstream'])
      assert.match(
        m.text,
        new RegExp(`meshwork_gateway_http1_fallback\\{side="${side}"\\} ${fallback}`),
      );
  });

  // Issue 16: with RegExp, `/r/(a+)+` against /r/ and 28 a's then "!" took seconds per request,
  // and the gateway served nothing else meanwhile. RE2 matches in time linear in the path.
  it('answers at once for catastrophic path and header regexes and long paths', async () => {
    const gw = await startTestGateway(
      agent.url,
      {
        routes: [
          { name: 'redos-path', match: { path: { regex: '/r/(a+)+' } }, service: 'search' },
          {
            name: 'redos-header',
            match: { headers: [{ name: 'x-v', regex: '(a|aa)+' }] },
            service: 'users',
          },
        ],
      },
      http1.deps,
    );
    const timed = async (path: string, headers: Record<string, string> = {}) => {
      const t0 = performance.now();
      const r = await call(gw.url, path, { headers });
      const ms = performance.now() - t0;
      assert.ok(ms < 1000, `${path.slice(0, 20)}... took ${ms.toFixed(0)} ms`);
      return r;
    };
    try {
      const bad = `${'a'.repeat(28)}!`;
      assert.equal((await timed(`/r/${bad}`)).status, 404);
      assert.equal((await timed('/x', { 'x-v': bad })).status, 404);
      assert.equal((await timed(`/r/${'a'.repeat(8000)}!`)).status, 404);
      assert.equal((await timed('/x', { 'x-v': `${'a'.repeat(8000)}!` })).status, 404);
      assert.equal((await timed('/r/aaa')).text, 'search-1');
      assert.equal((await timed('/x', { 'x-v': 'aaa' })).text, 'users-1');
    } finally {
      await gw.close();
    }
  });

  it('swaps in a reloaded config whole, keeping clusters whose settings did not change', async () => {
    const gw = await startTestGateway(
      agent.url,
      {
        domain: 'mesh.local',
        routes: [
          { name: 'u', match: { path: { prefix: '/u' } }, service: 'users' },
          { name: 's', match: { path: { prefix: '/s' } }, service: 'search' },
        ],
      },
      http1.deps,
    );
    try {
      assert.equal((await call(gw.url, '/u')).text, 'users-1');
      assert.equal(
        (await call(gw.url, '/', { headers: { host: 'orders.mesh.local' } })).status,
        200,
      );
      const before = new Map([...gw.clusters()].map((c) => [c.name, c]));
      const base = resolveGatewayOptions({
        flags: {
          listen: '127.0.0.1:0',
          admin: '127.0.0.1:0',
          registry: [agent.url],
          logLevel: 'silent',
        },
      });
      const { restartNeeded } = gw.reload({
        ...base,
        listen: '127.0.0.1:1',
        domain: 'mesh.local',
        routes: [
          { name: 'u', match: { path: { prefix: '/people' } }, service: 'users' },
          { name: 'a', match: { path: { prefix: '/a' } }, service: 'admin' },
        ],
      } as GatewayOptions);
      assert.deepEqual(restartNeeded, ['listen'], 'a new listener needs a restart');
      assert.equal((await call(gw.url, '/people')).text, 'users-1');
      assert.equal((await call(gw.url, '/u')).status, 404, 'the old rule is gone');
      assert.equal((await call(gw.url, '/s')).status, 404);
      assert.equal((await call(gw.url, '/a')).text, 'admin-1', 'a new service is routed');
      const after = new Map([...gw.clusters()].map((c) => [c.name, c]));
      const users = [...before.keys()].find((n) => n.startsWith('users'));
      assert.ok(users !== undefined);
      assert.equal(after.get(users), before.get(users), 'an unchanged cluster is kept');
      const hostRouted = [...before.keys()].find((n) => n.startsWith('orders'));
      assert.ok(hostRouted !== undefined);
      assert.equal(
        (await call(gw.url, '/', { headers: { host: 'orders.mesh.local' } })).status,
        200,
      );
      assert.equal(
        [...gw.clusters()].find((c) => c.name === hostRouted),
        before.get(hostRouted),
        'a host-routed cluster is kept too',
      );
      assert.equal(
        [...gw.clusters()].some((c) => c.service === 'search'),
        false,
        'a cluster no route uses is dropped',
      );
      const metrics = (await call(gw.adminUrl, '/metrics')).text;
      assert.doesNotMatch(
        metrics,
        /meshwork_client_discovery_instances\{service="search"\}/,
        'and its watch is stopped',
      );
      assert.match(metrics, /meshwork_client_discovery_instances\{service="users"\} 1/);
      // The host-routed service is watched again once its kept cluster is back in use.
      await until(
        async () =>
          /meshwork_client_discovery_instances\{service="orders"\} 2/.test(
            (await call(gw.adminUrl, '/metrics')).text,
          ),
        5_000,
        'orders watched again',
      );
    } finally {
      await gw.close();
    }
  });

  // The alternatives to the gateway's own HTTP/1.1 server and client serve the same.
  for (const [how, options] of [
    ['on node:http when downstreamServer is "node"', { downstreamServer: 'node' }],
    ['through undici when upstreamClient is "undici"', { upstreamClient: 'undici' }],
  ] as const) {
    it(`serves the same ${how}`, async () => {
      const gw = await startTestGateway(
        agent.url,
        { domain: 'mesh.local', ...options },
        http1.deps,
      );
      try {
        const r = await call(gw.url, '/x', {
          method: 'POST',
          headers: { host: 'users.mesh.local', 'content-type': 'text/plain' },
          body: 'hello',
        });
        assert.equal(r.status, 200);
        assert.equal(r.text, 'users-1');
        const up = (ups['users-1'] as Upstream).seen.at(-1);
        assert.equal(up?.method, 'POST');
        assert.equal(up?.headers['x-forwarded-host'], 'users.mesh.local');
        const missing = await call(gw.url, '/x', { headers: { host: 'nope.example' } });
        assert.equal(missing.status, 404);
        assert.equal(JSON.parse(missing.text).error.code, 'MESHWORK_ERR_PROXY_ROUTE_NOT_FOUND');
      } finally {
        await gw.close();
      }
    });
  }
});
