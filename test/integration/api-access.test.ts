/**
 * Who may call the agent's HTTP API, and what it answers to requests the framework refuses,
 * over real sockets on port 0 (issue 16: DNS rebinding, cross-site writes, framework errors).
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { describe, it } from 'node:test';
import { Registry as PromRegistry } from 'prom-client';
import { createRegistry } from '../../src/registry/registry.js';
import { createMemoryCatalogStore } from '../../src/registry/store/memory/memory-catalog-store.js';
import { createApiServer } from '../../src/registry-api/server.js';
import { http, startTestAgent, useTestAgent } from '../helpers/agent.js';
import { until } from '../helpers/until.js';
import { header, RawClient, type WireResponse } from '../helpers/wire.js';

/** Sends `head` (and `body`) on a new connection and answers the first response. */
function send(
  to: number,
  head: string,
  opts: { body?: string; endWrites?: boolean } = {},
): Promise<WireResponse> {
  return RawClient.exchange(to, head + (opts.body ?? ''), {
    allowHalfOpen: true,
    endWrites: opts.endWrites,
  });
}

const request = (method: string, path: string, headers: Record<string, string>): string =>
  `${method} ${path} HTTP/1.1\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;

/** The JSON error body of the native API: its code. */
function errorCode(r: WireResponse): string {
  assert.equal(header(r, 'content-type'), 'application/json; charset=utf-8');
  const body = JSON.parse(r.body.toString('utf8')) as { error: { code: string; message: string } };
  assert.equal(typeof body.error.message, 'string');
  return body.error.code;
}

describe('API access', () => {
  const agent = useTestAgent();
  const port = (): number => Number(new URL(agent().url).port);

  describe('Host check (DNS rebinding)', () => {
    it('refuses the rebinding attack of the issue: the agent stays out of maintenance', async () => {
      await http(agent().url, 'PUT', '/api/v1/instances', {
        service: 'web',
        id: 'web-1',
        address: '10.0.0.1',
        port: 80,
      });
      const r = await send(
        port(),
        request('PUT', '/v1/agent/maintenance?enable=true', {
          Host: 'attacker.example:8500',
          Origin: 'http://attacker.example:8500',
          'Sec-Fetch-Site': 'same-origin',
          'Content-Length': '0',
        }),
      );
      assert.equal(r.status, 403);
      assert.equal(header(r, 'content-type'), 'text/plain; charset=utf-8', 'Consul: plain text');
      assert.match(r.body.toString(), /Host "attacker.example:8500" is not a name/);
      assert.match(r.body.toString(), /allowedHosts/);
      const self = await http(agent().url, 'GET', '/api/v1/agent');
      assert.equal(self.body.maintenance.enabled, false);
      const web = await http(agent().url, 'GET', '/api/v1/services/web/instances');
      assert.equal(web.body.instances.length, 1);
    });

    it('answers IP literals, localhost, *.localhost and the hostname, with any port', async () => {
      for (const host of [
        `127.0.0.1:${port()}`,
        '10.1.2.3',
        '[::1]:8500',
        `localhost:${port()}`,
        'LOCALHOST.',
        'ui.localhost:1',
        hostname(),
        `${hostname().toUpperCase()}:8500`,
      ]) {
        const r = await send(port(), request('GET', '/api/v1/services', { Host: host }));
        assert.equal(r.status, 200, host);
      }
    });

    it('refuses other names, look-alikes and malformed Hosts with 403 in the JSON shape', async () => {
      for (const host of [
        'attacker.example',
        '127.0.0.1.attacker.example',
        'localhost.attacker.example:8500',
        'localhostx',
        '[::1',
        'a@127.0.0.1',
      ]) {
        const r = await send(port(), request('GET', '/api/v1/services', { Host: host }));
        assert.equal(r.status, 403, host);
        assert.equal(errorCode(r), 'MESHWORK_ERR_API_HOST_NOT_ALLOWED', host);
        assert.equal(header(r, 'connection'), 'close');
      }
    });

    it('answers HTTP/1.0 without Host, and refuses HTTP/1.1 without Host with 400', async () => {
      const old = await send(port(), 'GET /api/v1/services HTTP/1.0\r\n\r\n');
      assert.equal(old.status, 200);
      const r = await send(port(), 'GET /api/v1/services HTTP/1.1\r\n\r\n');
      assert.equal(r.status, 400);
      assert.equal(errorCode(r), 'MESHWORK_ERR_API_BAD_REQUEST');
    });

    it('answers the names of allowedHosts ("*.domain" for a domain), and any Host with "*"', async () => {
      const named = await startTestAgent({
        flags: { allowedHosts: ['consul.internal', '*.mesh.example'] },
      });
      const any = await startTestAgent({ flags: { allowedHosts: ['*'] } });
      try {
        const namedPort = Number(new URL(named.url).port);
        const status = async (p: number, host: string) =>
          (await send(p, request('GET', '/v1/agent/self', { Host: host }))).status;
        assert.equal(await status(namedPort, 'consul.internal:8500'), 200);
        assert.equal(await status(namedPort, 'Consul.Internal'), 200);
        assert.equal(await status(namedPort, 'a.b.mesh.example'), 200);
        assert.equal(await status(namedPort, 'mesh.example'), 403);
        assert.equal(await status(namedPort, 'evilmesh.example'), 403);
        assert.equal(await status(namedPort, 'attacker.example'), 403);
        assert.equal(await status(Number(new URL(any.url).port), 'attacker.example'), 200);
      } finally {
        await named.stop();
        await any.stop();
      }
    });
  });

  describe('Origin check (cross-site requests)', () => {
    it("answers pages of the agent's own origin, and non-browser clients", async () => {
      const own = await http(
        agent().url,
        'PUT',
        '/api/v1/agent/maintenance',
        { enabled: false },
        {
          origin: agent().url,
          'sec-fetch-site': 'same-origin',
        },
      );
      assert.equal(own.status, 200, own.text);
      assert.equal(own.headers['access-control-allow-origin'], undefined, 'no CORS needed');
      const localhost = await send(
        port(),
        request('GET', '/api/v1/agent', {
          Host: `localhost:${port()}`,
          Origin: `http://localhost:${port()}`,
        }),
      );
      assert.equal(localhost.status, 200);
      assert.equal((await http(agent().url, 'GET', '/v1/agent/self')).status, 200);
    });

    it('refuses other origins, "null" and another port of the same host, on both APIs', async () => {
      for (const origin of [
        'http://evil.example',
        'null',
        `http://127.0.0.1:${port() + 1}`,
        'not a url',
      ]) {
        const native = await http(
          agent().url,
          'PUT',
          '/api/v1/agent/maintenance',
          { enabled: true },
          { origin },
        );
        assert.equal(native.status, 403, origin);
        assert.equal(native.body.error.code, 'MESHWORK_ERR_API_ORIGIN_NOT_ALLOWED', origin);
        const consul = await http(agent().url, 'PUT', '/v1/agent/maintenance?enable=true', '', {
          origin,
        });
        assert.equal(consul.status, 403, origin);
        assert.match(consul.text, /may not call this agent: add it to allowedOrigins/);
      }
      assert.equal(
        (await http(agent().url, 'GET', '/api/v1/agent')).body.maintenance.enabled,
        false,
      );
    });

    it('refuses cross-site requests that carry no Origin, except navigations', async () => {
      const img = await http(agent().url, 'GET', '/api/v1/services', undefined, {
        'sec-fetch-site': 'cross-site',
        'sec-fetch-mode': 'no-cors',
      });
      assert.equal(img.status, 403);
      assert.equal(img.body.error.code, 'MESHWORK_ERR_API_ORIGIN_NOT_ALLOWED');
      const sameSite = await http(agent().url, 'GET', '/api/v1/services', undefined, {
        'sec-fetch-site': 'same-site',
      });
      assert.equal(sameSite.status, 403);
      const link = await http(agent().url, 'GET', '/api/v1/services', undefined, {
        'sec-fetch-site': 'cross-site',
        'sec-fetch-mode': 'navigate',
      });
      assert.equal(link.status, 200);
      const typed = await http(agent().url, 'GET', '/api/v1/services', undefined, {
        'sec-fetch-site': 'none',
      });
      assert.equal(typed.status, 200);
    });

    it('answers the origins of allowedOrigins with CORS headers and preflights', async () => {
      const ui = 'http://ui.example:3000';
      const a = await startTestAgent({ flags: { allowedOrigins: [ui] } });
      try {
        const pre = await http(a.url, 'OPTIONS', '/api/v1/instances', undefined, {
          origin: ui,
          'access-control-request-method': 'PUT',
          'access-control-request-headers': 'content-type',
        });
        assert.equal(pre.status, 204);
        assert.equal(pre.headers['access-control-allow-origin'], ui);
        assert.match(String(pre.headers['access-control-allow-methods']), /PUT/);
        assert.match(String(pre.headers['access-control-allow-headers']), /content-type/);
        const put = await http(
          a.url,
          'PUT',
          '/api/v1/instances',
          { service: 'ui', address: '10.0.0.9', port: 80 },
          { origin: ui },
        );
        assert.equal(put.status, 200, put.text);
        assert.equal(put.headers['access-control-allow-origin'], ui);
        assert.match(String(put.headers['access-control-expose-headers']), /x-meshwork-index/);
        const other = await http(a.url, 'GET', '/api/v1/services', undefined, {
          origin: 'http://ui.example:3001',
        });
        assert.equal(other.status, 403);
        assert.equal(other.headers['access-control-allow-origin'], undefined);
      } finally {
        await a.stop();
      }
    });
  });

  describe("framework errors in the API's error shape", () => {
    it('answers a URL over 8 KiB with 414, whether node or the agent catches it', async () => {
      for (const length of [9_000, 20_000]) {
        const r = await send(
          port(),
          request('GET', `/api/v1/services?x=${'a'.repeat(length)}`, { Host: '127.0.0.1' }),
        );
        assert.equal(r.status, 414, String(length));
        assert.equal(errorCode(r), 'MESHWORK_ERR_API_URI_TOO_LONG');
      }
      const segment = await send(
        port(),
        request('GET', `/api/v1/instances/${'i'.repeat(2000)}`, { Host: '127.0.0.1' }),
      );
      assert.equal(segment.status, 414);
      assert.equal(errorCode(segment), 'MESHWORK_ERR_API_URI_TOO_LONG');
    });

    it('answers headers over 16 KiB with 431', async () => {
      const r = await send(
        port(),
        request('GET', '/api/v1/services', { Host: '127.0.0.1', 'X-Big': 'b'.repeat(20_000) }),
      );
      assert.equal(r.status, 431);
      assert.equal(errorCode(r), 'MESHWORK_ERR_API_HEADERS_TOO_LARGE');
      assert.equal(header(r, 'connection'), 'close');
    });

    it('answers bad percent-encoding with 400: JSON on /api/v1, plain text on /v1', async () => {
      const native = await send(
        port(),
        request('GET', '/api/v1/services/%zz/instances', { Host: '127.0.0.1' }),
      );
      assert.equal(native.status, 400);
      assert.equal(errorCode(native), 'MESHWORK_ERR_API_BAD_REQUEST');
      const consul = await send(port(), request('GET', '/v1/catalog/service/%zz', { Host: 'x' }));
      assert.equal(consul.status, 400);
      assert.equal(header(consul, 'content-type'), 'text/plain; charset=utf-8');
      assert.match(consul.body.toString(), /percent-encoding/);
    });

    it('answers a method no parser knows with 501, and garbage with 400', async () => {
      const r = await send(port(), request('FOO', '/api/v1/services', { Host: '127.0.0.1' }));
      assert.equal(r.status, 501);
      assert.equal(errorCode(r), 'MESHWORK_ERR_API_METHOD_NOT_IMPLEMENTED');
      assert.match(JSON.parse(r.body.toString()).error.message, /"FOO"/);
      const tls = await send(port(), '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n');
      assert.equal(tls.status, 400);
      assert.equal(errorCode(tls), 'MESHWORK_ERR_API_BAD_REQUEST');
    });

    it('answers a body shorter than its Content-Length with 400 once the client stops', async () => {
      const r = await send(
        port(),
        request('PUT', '/api/v1/instances', {
          Host: '127.0.0.1',
          'Content-Type': 'application/json',
          'Content-Length': '100',
        }),
        { body: '{"service":"x"}', endWrites: true },
      );
      assert.equal(r.status, 400);
      assert.equal(errorCode(r), 'MESHWORK_ERR_API_MALFORMED_BODY');
      assert.match(JSON.parse(r.body.toString()).error.message, /Content-Length/);
    });
  });

  describe('shutting down', () => {
    it('answers a request that arrives while the server closes with 503 in the JSON shape', async () => {
      const registry = createRegistry({ store: createMemoryCatalogStore(), nodeName: 'n1' });
      await registry.start();
      const app = createApiServer({
        registry,
        metrics: new PromRegistry(),
        members: async () => [],
      });
      await app.listen({ host: '127.0.0.1', port: 0 });
      const c = await RawClient.connect((app.server.address() as AddressInfo).port);
      // A blocking query keeps the connection busy, so closing the server does not drop it.
      await c.write(
        request('GET', `/api/v1/services?index=${registry.index}&wait=60s`, { Host: '127.0.0.1' }),
      );
      await until(() => registry.watchers().blocking === 1, 5_000, 'blocking');
      const closed = app.close();
      await c.write(request('GET', '/api/v1/agent', { Host: '127.0.0.1' }));
      registry.drain();
      const [first, second] = await c.read(2);
      assert.equal(first?.status, 200);
      assert.ok(second !== undefined);
      assert.equal(second.status, 503);
      assert.equal(errorCode(second), 'MESHWORK_ERR_API_SHUTTING_DOWN');
      c.socket.destroy();
      await closed;
      await registry.close();
    });
  });
});
