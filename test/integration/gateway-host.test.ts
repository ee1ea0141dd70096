/**
 * The gateway's Host rules against a real agent and real upstreams, on raw sockets (issue 16,
 * RFC 9112 3.2): one valid Host per request or a 400, an absolute-form target routed by its own
 * authority and forwarded in origin-form with that authority as the one Host, and a Connection
 * header that cannot strip the headers the gateway forwards by.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { createRegistryClient } from '../../src/client/registry-client.js';
import type { RunningGateway } from '../../src/gateway/gateway.js';
import { startTestAgent, type TestAgent } from '../helpers/agent.js';
import { startTestGateway, startUpstream, type Upstream } from '../helpers/gateway.js';
import { header, RawClient, type WireResponse } from '../helpers/wire.js';

/** What the upstream got, as it came: raw header lines (duplicates kept), target and body. */
interface Seen {
  url: string;
  rawHeaders: string[];
  body: string;
}

/** The values of every `name` header line the upstream got. */
function values(seen: Seen | undefined, name: string): string[] {
  const raw = seen?.rawHeaders ?? [];
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2)
    if ((raw[i] as string).toLowerCase() === name) out.push(raw[i + 1] as string);
  return out;
}

// The gateway's own server and client, and the alternatives (node:http downstream, undici up).
// node:http reads pipelined requests ahead and serves the one behind a refused request anyway
// (racing the close): only the gateway's own server is given one to leave unanswered.
for (const [how, servers, readsAhead] of [
  ['its own server and client', {}, false],
  ['node:http and undici', { downstreamServer: 'node', upstreamClient: 'undici' }, true],
] as const) {
  describe(`gateway Host handling on ${how}`, () => {
    let agent: TestAgent;
    let gateway: RunningGateway;
    let port: number;
    const ups: Upstream[] = [];
    const seen: Seen[] = [];

    const record = (req: IncomingMessage, res: ServerResponse): void => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({
          url: req.url ?? '',
          rawHeaders: req.rawHeaders,
          body: Buffer.concat(chunks).toString(),
        });
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(req.headers.host);
      });
    };

    before(async () => {
      agent = await startTestAgent();
      const registry = createRegistryClient({ addresses: [agent.url] });
      for (const service of ['users', 'orders']) {
        const u = await startUpstream(service);
        u.handler = record;
        ups.push(u);
        await registry.register({ service, id: service, address: '127.0.0.1', port: u.port });
      }
      gateway = await startTestGateway(agent.url, { domain: 'mesh.local', ...servers });
      port = Number(new URL(gateway.url).port);
    });
    after(async () => {
      await gateway.close();
      for (const u of ups) await u.close();
      await agent.stop();
    });

    /** One request on a fresh connection: its answer (the connection closed after it). */
    const ask = (head: string, body = ''): Promise<WireResponse> =>
      RawClient.exchange(port, `${head}\r\n\r\n${body}`);

    /**
     * Sends `head` (with a good request pipelined behind it, see readsAhead): the answer MUST be
     * one 400 in the gateway's error shape, then the close (the good request unanswered), and
     * nothing forwarded.
     */
    const refused = async (head: string, reason: RegExp): Promise<void> => {
      const seenBefore = seen.length;
      const client = await RawClient.connect(port);
      const after = readsAhead ? '' : 'GET /after HTTP/1.1\r\nHost: users.mesh.local\r\n\r\n';
      await client.write(`${head}\r\n\r\n${after}`);
      const responses = await client.readToClose();
      assert.equal(responses.length, 1, `one answer to ${JSON.stringify(head)}`);
      const r = responses[0] as WireResponse;
      assert.equal(r.status, 400, `400 to ${JSON.stringify(head)}: ${r.body.toString()}`);
      assert.equal(header(r, 'content-type'), 'application/json');
      assert.equal(header(r, 'connection'), 'close');
      const error = (JSON.parse(r.body.toString()) as { error: { code: string; reason: string } })
        .error;
      assert.equal(error.code, 'MESHWORK_ERR_PROXY_BAD_REQUEST');
      assert.match(error.reason, reason);
      assert.equal(seen.length, seenBefore, 'nothing forwarded');
      // The gateway keeps serving.
      assert.equal((await ask('GET /ok HTTP/1.1\r\nHost: users.mesh.local')).status, 200);
    };

    it('answers 400 to a request with more than one Host (RFC 9112 3.2)', async () => {
      for (const head of [
        'GET /x HTTP/1.1\r\nHost: users.mesh.local\r\nHost: orders.mesh.local',
        'GET /x HTTP/1.1\r\nHost: users.mesh.local\r\nX-A: 1\r\nhost: users.mesh.local',
        'GET /x HTTP/1.0\r\nHost: users.mesh.local\r\nHost: orders.mesh.local',
        // Absolute-form too: the Host is ignored for routing, not for its own rules.
        'GET http://users.mesh.local/x HTTP/1.1\r\nHost: users.mesh.local\r\nHost: orders.mesh.local',
      ]) {
        await refused(head, /more than one Host/);
      }
    });

    const upgrade = 'Connection: Upgrade\r\nUpgrade: websocket';
    it('answers 400 to an Upgrade request with more than one Host', async () => {
      await refused(
        `GET /ws HTTP/1.1\r\nHost: users.mesh.local\r\nHost: orders.mesh.local\r\n${upgrade}`,
        /more than one Host/,
      );
    });

    it('answers 400 to an HTTP/1.1 Upgrade request without Host', async () => {
      await refused(`GET /ws HTTP/1.1\r\n${upgrade}`, /without a Host/);
    });

    it('answers 400 in the error shape to an HTTP/1.1 request without Host, and serves HTTP/1.0 without one', async () => {
      await refused('GET /x HTTP/1.1\r\nX-A: 1', /host/i);
      await refused('GET http://users.mesh.local/x HTTP/1.1\r\nX-A: 1', /host/i);
      // HTTP/1.0 needs no Host: no host route, so a 404 (and the absolute-form routes by target).
      assert.equal((await ask('GET /x HTTP/1.0\r\nX-A: 1')).status, 404);
      const r = await ask('GET http://users.mesh.local/x HTTP/1.0\r\nX-A: 1');
      assert.equal(r.status, 200);
      assert.deepEqual(values(seen.at(-1), 'host'), ['users.mesh.local']);
    });

    it('answers 400 to an invalid Host value', async () => {
      for (const host of [
        'users.mesh.local extra',
        'users.mesh.local\textra',
        'user@users.mesh.local',
        'users.mesh.local/x',
        'users.mesh.local:80x',
        'users.mesh.local:80:81',
        '[::1',
        'users%zz.mesh.local',
      ]) {
        await refused(`GET /x HTTP/1.1\r\nHost: ${host}`, /invalid Host/);
      }
    });

    it('passes valid Host forms: a port, an IP literal, an empty Host (no route)', async () => {
      assert.equal((await ask('GET /x HTTP/1.1\r\nHost: Users.Mesh.Local:8080')).status, 200);
      assert.deepEqual(values(seen.at(-1), 'host'), ['Users.Mesh.Local:8080']);
      assert.equal((await ask('GET /x HTTP/1.1\r\nHost: [::1]:80')).status, 404);
      assert.equal((await ask('GET /x HTTP/1.1\r\nHost: 127.0.0.1')).status, 404);
      assert.equal((await ask('GET /x HTTP/1.1\r\nHost:')).status, 404);
    });

    it('routes an absolute-form request by its target and forwards it in origin-form with that Host once (RFC 9112 3.2.2)', async () => {
      const r = await ask(
        'GET http://users.mesh.local/x/y?q=1 HTTP/1.1\r\nHost: orders.mesh.local',
      );
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'users.mesh.local');
      const up = seen.at(-1);
      assert.equal(up?.url, '/x/y?q=1');
      assert.deepEqual(values(up, 'host'), ['users.mesh.local']);
      assert.deepEqual(values(up, 'x-forwarded-host'), ['users.mesh.local']);
      assert.deepEqual(values(up, 'forwarded'), ['for=127.0.0.1;host=users.mesh.local;proto=http']);
      // Scheme and host are case-insensitive; the port is kept in the Host sent on.
      const ported = await ask('GET HTTP://Orders.Mesh.Local:8080 HTTP/1.1\r\nHost: x');
      assert.equal(ported.status, 200);
      assert.equal(seen.at(-1)?.url, '/');
      assert.deepEqual(values(seen.at(-1), 'host'), ['Orders.Mesh.Local:8080']);
      // An empty path is "/", a query alone keeps its "?" (RFC 9112 3.2.1).
      assert.equal((await ask('GET http://users.mesh.local?a=b HTTP/1.1\r\nHost: x')).status, 200);
      assert.equal(seen.at(-1)?.url, '/?a=b');
    });

    it('answers 400 to an absolute-form target with another scheme, userinfo or no host', async () => {
      await refused('GET https://users.mesh.local/x HTTP/1.1\r\nHost: users.mesh.local', /scheme/);
      await refused('GET ftp://users.mesh.local/x HTTP/1.1\r\nHost: users.mesh.local', /scheme/);
      await refused(
        'GET http://u@users.mesh.local/x HTTP/1.1\r\nHost: users.mesh.local',
        /userinfo/,
      );
      await refused(
        'GET http://u:p@users.mesh.local/x HTTP/1.1\r\nHost: users.mesh.local',
        /userinfo/,
      );
      await refused('GET http://:80/x HTTP/1.1\r\nHost: users.mesh.local', /invalid/);
    });

    it('keeps Host and Content-Length when Connection names them (RFC 9110 7.6.1)', async () => {
      const r = await ask(
        'POST /x HTTP/1.1\r\nHost: users.mesh.local\r\nConnection: close, Host, Content-Length, X-Drop\r\n' +
          'Content-Length: 5\r\nX-Drop: 1',
        'hello',
      );
      assert.equal(r.status, 200);
      const up = seen.at(-1);
      assert.deepEqual(values(up, 'host'), ['users.mesh.local']);
      assert.deepEqual(values(up, 'content-length'), ['5']);
      assert.deepEqual(values(up, 'transfer-encoding'), []);
      assert.deepEqual(values(up, 'x-drop'), []);
      assert.equal(up?.body, 'hello');
      // The headers the gateway sets itself are set after the Connection ones are dropped.
      await ask(
        'GET /x HTTP/1.1\r\nHost: users.mesh.local\r\n' +
          'Connection: X-Forwarded-For, X-Forwarded-Host, Forwarded, X-Meshwork-Attempt',
      );
      const again = seen.at(-1);
      assert.deepEqual(values(again, 'x-forwarded-for'), ['127.0.0.1']);
      assert.deepEqual(values(again, 'x-forwarded-host'), ['users.mesh.local']);
      assert.deepEqual(values(again, 'x-meshwork-attempt'), ['1']);
    });
  });
}
