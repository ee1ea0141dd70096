// AuthorizationPolicy at the sidecar's inbound side (issue 20): a real app on port 0 behind an
// in-process sidecar proxy (service reviews), whose snapshots the control plane's compiler makes
// from the example files of examples/security/ (parsed as `meshwork apply` parses them) or from
// resources built here; real requests (undici, raw sockets, a second loopback address) to its
// inbound listener, on both HTTP/1 implementations.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, afterEach, before, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { staticCompileCatalog } from '../../src/control-plane/catalog-endpoints.js';
import { compileSnapshot } from '../../src/control-plane/compile-snapshot.js';
import { indexMeshResources } from '../../src/control-plane/mesh-index.js';
import { silentLogger } from '../../src/core/logger.js';
import { parseMeshResource } from '../../src/protocol/mesh/parse.js';
import type { MeshResource } from '../../src/protocol/mesh/resource.js';
import type { MeshSnapshot } from '../../src/protocol/mesh/snapshot.js';
import { startSidecarProxy, type RunningSidecarProxy } from '../../src/sidecar/sidecar-proxy.js';
import { fakeInstance, fakeResource, fakeStored } from '../../src/testing/fake-mesh-catalog.js';
import { call, describeOnEachHttp1, startUpstream, type Upstream } from '../helpers/gateway.js';
import { SIDECAR_PROXY_BASE } from '../helpers/sidecar.js';

const EXAMPLES = fileURLToPath(new URL('../../examples/security/', import.meta.url));

/** The resources of an example file, parsed as `meshwork apply -f` parses them. */
function example(file: string): MeshResource[] {
  return parseAllDocuments(readFileSync(`${EXAMPLES}${file}`, 'utf8')).map((d) => {
    const r = parseMeshResource(d.toJS());
    assert.ok(r.ok, `${file}: ${JSON.stringify(r)}`);
    return r.resource;
  });
}

/** The snapshot of reviews' sidecar with `resources`. */
function snapshotWith(resources: readonly MeshResource[], version: string): MeshSnapshot {
  const s = compileSnapshot({
    proxy: { id: 'reviews-1', kind: 'sidecar', name: 'reviews', namespace: 'default' },
    index: 1,
    mesh: indexMeshResources(fakeStored(resources)),
    catalog: staticCompileCatalog([fakeInstance('r1', 'reviews', { address: '127.0.0.1' })]),
  }).snapshot;
  return { ...s, version };
}

/** A raw request on a fresh connection (from `localAddress`); answers the whole response text. */
async function raw(url: string, text: string, localAddress = '127.0.0.1'): Promise<string> {
  const { hostname, port } = new URL(url);
  const socket = connect({ host: hostname, port: Number(port), localAddress });
  let out = '';
  socket.on('data', (d: Buffer) => (out += d.toString('latin1')));
  socket.write(text);
  await once(socket, 'close');
  return out;
}

/** A GET from `localAddress` (another loopback address: another source IP). */
async function getFrom(url: string, path: string, localAddress: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const r = httpRequest(`${url}${path}`, { localAddress, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    r.on('error', reject);
    r.end();
  });
}

describeOnEachHttp1('sidecar inbound authorization', (http1) => {
  let app: Upstream;
  let b: RunningSidecarProxy;
  let n = 0;
  const apply = (resources: readonly MeshResource[]): void =>
    b.applySnapshot(snapshotWith(resources, `v${++n}`));
  const body = (text: string) =>
    JSON.parse(text) as { error: { code: string; policy?: string; action: string } };

  before(async () => {
    app = await startUpstream('reviews');
    // The app also accepts WebSocket upgrades (101 and a greeting).
    app.server.on('upgrade', (req, socket) => {
      socket.end(
        'HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n' +
          `hello ${req.url}`,
      );
    });
    b = await startSidecarProxy(
      { ...SIDECAR_PROXY_BASE, service: 'reviews', appPort: app.port },
      silentLogger,
      http1.deps,
    );
  });
  after(async () => {
    await b.close();
    await app.close();
  });
  afterEach(() => apply([]));

  it('methods (authz-methods.yaml): GET and HEAD reach the app, POST gets 403 and does not', async () => {
    apply(example('authz-methods.yaml'));
    assert.equal((await call(b.inboundUrl, '/r')).status, 200);
    assert.equal((await call(b.inboundUrl, '/r', { method: 'HEAD' })).status, 200);
    const hits = app.hits;
    const post = await call(b.inboundUrl, '/r', { method: 'POST', body: 'x' });
    assert.equal(post.status, 403);
    assert.deepEqual(body(post.text).error, {
      code: 'MESHWORK_ERR_PROXY_ACCESS_DENIED',
      message: 'access denied: no ALLOW AuthorizationPolicy matched the request',
      action: 'ALLOW',
    });
    assert.equal(post.headers['x-meshwork-denied-by'], 'no-allow-match');
    assert.equal(app.hits, hits);
  });

  it('paths (authz-paths.yaml): /admin denied however it is spelled; the app gets the normalized path', async () => {
    apply(example('authz-paths.yaml'));
    for (const path of ['/admin', '/admin/users', '/x/../admin', '/%61dmin/x', '/admin/?q=1']) {
      const r = await call(b.inboundUrl, path);
      assert.equal(r.status, 403, path);
      assert.equal(body(r.text).error.policy, 'default/reviews-deny-admin');
      assert.equal(r.headers['x-meshwork-denied-by'], 'default/reviews-deny-admin');
    }
    // A raw request, so that nothing on the client side normalizes the path first.
    const dots = await raw(
      b.inboundUrl,
      'GET /public/../admin HTTP/1.1\r\nHost: reviews\r\nConnection: close\r\n\r\n',
    );
    assert.match(dots, /^HTTP\/1\.1 403 /);
    assert.equal((await call(b.inboundUrl, '/administrator')).status, 200);
    // Raw again (undici would normalize the URL itself): the app gets the normalized path.
    const normalized = await raw(
      b.inboundUrl,
      'GET /a/./b/../%63?x=/../%2e HTTP/1.1\r\nHost: reviews\r\nConnection: close\r\n\r\n',
    );
    assert.match(normalized, /^HTTP\/1\.1 200 /);
    assert.equal(app.seen.at(-1)?.url, '/a/c?x=/../%2e');
    // A HEAD has no body: the header names the policy.
    const head = await call(b.inboundUrl, '/admin', { method: 'HEAD' });
    assert.equal(head.status, 403);
    assert.equal(head.headers['x-meshwork-denied-by'], 'default/reviews-deny-admin');
    assert.equal(head.text, '');
  });

  it('without a policy the path goes to the app as it came', async () => {
    const r = await raw(
      b.inboundUrl,
      'GET /a/./b/../%63 HTTP/1.1\r\nHost: reviews\r\nConnection: close\r\n\r\n',
    );
    assert.match(r, /^HTTP\/1\.1 200 /);
    assert.equal(app.seen.at(-1)?.url, '/a/./b/../%63');
  });

  it('notPaths (authz-not-paths.yaml): only /api/* is served', async () => {
    apply(example('authz-not-paths.yaml'));
    assert.equal((await call(b.inboundUrl, '/api/items')).status, 200);
    const r = await call(b.inboundUrl, '/internal');
    assert.equal(r.status, 403);
    assert.equal(body(r.text).error.policy, 'default/reviews-api-only');
  });

  it('hosts (authz-hosts.yaml): only the service’s own names, in any case, with any port', async () => {
    apply(example('authz-hosts.yaml'));
    for (const host of ['reviews', 'REVIEWS:9080', 'reviews.default.svc.cluster.local'])
      assert.equal((await call(b.inboundUrl, '/', { headers: { host } })).status, 200, host);
    assert.equal((await call(b.inboundUrl, '/', { headers: { host: 'ratings' } })).status, 403);
    // An absolute-form target is the authority the request goes to, whatever its Host says.
    const absolute = await raw(
      b.inboundUrl,
      'GET http://ratings/ HTTP/1.1\r\nHost: reviews\r\nConnection: close\r\n\r\n',
    );
    assert.match(absolute, /^HTTP\/1\.1 403 /);
  });

  it('ports: the workload (app) port, not the sidecar’s own', async () => {
    const ports = (p: string, action: 'ALLOW' | 'DENY') =>
      fakeResource('AuthorizationPolicy', 'ports', {
        action,
        rules: [{ to: [{ operation: { ports: [p] } }] }],
      });
    apply([ports(String(app.port), 'ALLOW')]);
    assert.equal((await call(b.inboundUrl, '/')).status, 200);
    apply([ports(new URL(b.inboundUrl).port, 'ALLOW')]);
    assert.equal((await call(b.inboundUrl, '/')).status, 403);
    apply([ports(String(app.port), 'DENY')]);
    assert.equal((await call(b.inboundUrl, '/')).status, 403);
  });

  it('ipBlocks (authz-ip-blocks.yaml): 127.0.0.2 is denied, 127.0.0.1 served', async () => {
    apply(example('authz-ip-blocks.yaml'));
    assert.equal(await getFrom(b.inboundUrl, '/ip', '127.0.0.2'), 403);
    assert.equal(await getFrom(b.inboundUrl, '/ip', '127.0.0.1'), 200);
    // notIpBlocks and the source.ip condition, on the same two addresses.
    apply([
      fakeResource('AuthorizationPolicy', 'only-local-1', {
        action: 'ALLOW',
        rules: [
          { from: [{ source: { notIpBlocks: ['127.0.0.2'] } }] },
          { when: [{ key: 'source.ip', values: ['127.0.0.3/32'] }] },
        ],
      }),
    ]);
    assert.equal(await getFrom(b.inboundUrl, '/ip', '127.0.0.2'), 403);
    assert.equal(await getFrom(b.inboundUrl, '/ip', '127.0.0.3'), 200);
    assert.equal(await getFrom(b.inboundUrl, '/ip', '127.0.0.1'), 200);
  });

  it('when request.headers (authz-headers.yaml): a key is needed, the revoked one refused', async () => {
    apply(example('authz-headers.yaml'));
    const withKey = (key?: string) =>
      call(b.inboundUrl, '/k', { headers: key === undefined ? {} : { 'x-api-key': key } });
    assert.equal((await withKey('key-1')).status, 200);
    assert.equal((await withKey()).status, 403);
    assert.equal((await withKey('nokey')).status, 403);
    assert.equal((await withKey('key-revoked')).status, 403);
  });

  it('spec: {} (authz-deny-all.yaml) denies everything until it is removed', async () => {
    apply(example('authz-deny-all.yaml'));
    const r = await call(b.inboundUrl, '/anything');
    assert.equal(r.status, 403);
    assert.equal(body(r.text).error.action, 'ALLOW');
    apply([]);
    assert.equal((await call(b.inboundUrl, '/anything')).status, 200);
  });

  it('DENY before ALLOW (authz-deny-before-allow.yaml)', async () => {
    apply(example('authz-deny-before-allow.yaml'));
    assert.equal((await call(b.inboundUrl, '/api/items')).status, 200);
    const secret = await call(b.inboundUrl, '/api/secret/1');
    assert.equal(secret.status, 403);
    assert.equal(body(secret.text).error.policy, 'default/reviews-deny-secret');
    assert.equal((await call(b.inboundUrl, '/api/items', { method: 'DELETE' })).status, 403);
  });

  it('an Upgrade (WebSocket) request is policed like any other', async () => {
    apply(example('authz-paths.yaml'));
    const upgrade = (path: string) =>
      raw(
        b.inboundUrl,
        `GET ${path} HTTP/1.1\r\nHost: reviews\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
          'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
      );
    const hits = app.hits;
    const denied = await upgrade('/admin/socket');
    assert.match(denied, /^HTTP\/1\.1 403 /);
    assert.match(denied, /x-meshwork-denied-by: default\/reviews-deny-admin\r\n/);
    assert.match(denied, /"policy":"default\/reviews-deny-admin"/);
    const allowed = await upgrade('/socket');
    assert.match(allowed, /^HTTP\/1\.1 101 /);
    assert.match(allowed, /hello \/socket$/);
    assert.equal(app.hits, hits); // neither reached the app's request handler
  });

  it('AUDIT (authz-audit.yaml) changes nothing and is counted', async () => {
    apply(example('authz-audit.yaml'));
    assert.equal((await call(b.inboundUrl, '/w', { method: 'POST', body: 'x' })).status, 200);
    assert.equal((await call(b.inboundUrl, '/w')).status, 200);
    assert.match(
      await b.metricsText(),
      /meshwork_sidecar_authz_audited_total\{policy="default\/reviews-audit-writes"\} 1\n/,
    );
  });

  it('NACKs a CUSTOM policy, naming it, and keeps the policies in force', async () => {
    apply(example('authz-paths.yaml'));
    const inForce = b.snapshot();
    const custom = fakeResource('AuthorizationPolicy', 'ext', {
      action: 'CUSTOM',
      provider: { name: 'opa' },
      rules: [{}],
    });
    assert.throws(
      () => apply([custom]),
      /AuthorizationPolicy\/default\/ext: spec\.action: CUSTOM \(provider "opa"\) is not supported/,
    );
    assert.equal(b.snapshot(), inForce);
    assert.equal((await call(b.inboundUrl, '/admin')).status, 403);
  });

  it('counts denials in meshwork_sidecar_authz_denied_total{policy,action}', async () => {
    apply(example('authz-paths.yaml'));
    const before = await b.metricsText();
    const count = (text: string): number =>
      Number(
        /meshwork_sidecar_authz_denied_total\{policy="default\/reviews-deny-admin",action="DENY"\} (\d+)/.exec(
          text,
        )?.[1] ?? 0,
      );
    await call(b.inboundUrl, '/admin');
    await call(b.inboundUrl, '/admin');
    assert.equal(count(await b.metricsText()), count(before) + 2);
  });
});
