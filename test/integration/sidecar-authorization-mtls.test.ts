// AuthorizationPolicy on verified mTLS identities: in-process sidecars with identities of a test
// CA, caller -> payments over mTLS; principals, notPrincipals, namespaces, plaintext, STRICT.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { silentLogger } from '../../src/core/logger.js';
import type { MeshResource } from '../../src/protocol/mesh/resource.js';
import {
  startSidecarProxy,
  TLS_MODE_ISTIO,
  TLS_MODE_META,
  type RunningSidecarProxy,
  type SidecarProxyOptions,
} from '../../src/sidecar/sidecar-proxy.js';
import { fakeInstance, fakeResource } from '../../src/testing/fake-mesh-catalog.js';
import { call, describeOnEachHttp1, startUpstream, type Upstream } from '../helpers/gateway.js';
import { createTestCa, testIdentity, type TestCa } from '../helpers/test-ca.js';
import { compileSidecarSnapshot as compileFor } from '../helpers/mesh-snapshot.js';
import { SIDECAR_PROXY_BASE } from '../helpers/sidecar.js';

const BASE: SidecarProxyOptions = {
  ...SIDECAR_PROXY_BASE,
  connectTimeoutMs: 2_000,
  requestTimeoutMs: 10_000,
};

describeOnEachHttp1('authorization on mTLS identities', (http1) => {
  let ca: TestCa;
  let app: Upstream;
  let b: RunningSidecarProxy;
  const callers = new Map<string, RunningSidecarProxy>();
  const apply = (resources: MeshResource[]) =>
    b.applySnapshot(compileFor('payments', [], resources));
  const from = (caller: string, path = '/p') =>
    call((callers.get(caller) as RunningSidecarProxy).outboundUrl, path, {
      headers: { host: 'payments' },
    });
  const plaintext = (path = '/p') =>
    call(b.inboundUrl, path, { headers: { host: 'payments' } }).catch(() => ({
      status: 0,
      text: '',
      headers: {},
    }));

  before(async () => {
    ca = await createTestCa();
    app = await startUpstream('payments-app');
    b = await startSidecarProxy(
      {
        ...BASE,
        service: 'payments',
        appPort: app.port,
        tls: testIdentity(await ca.serviceLeaf('payments'), ca.certPem),
      },
      silentLogger,
      http1.deps,
    );
    const port = Number(new URL(b.inboundUrl).port);
    for (const [service, ns] of [
      ['orders', 'default'],
      ['ratings', 'default'],
      ['reports', 'prod'],
    ] as const) {
      const c = await startSidecarProxy(
        {
          ...BASE,
          service,
          namespace: ns,
          tls: testIdentity(await ca.serviceLeaf(service, ns), ca.certPem),
        },
        silentLogger,
        http1.deps,
      );
      const snap = compileFor(
        service,
        [
          fakeInstance('p1', 'payments', {
            address: '127.0.0.1',
            port,
            meta: { [TLS_MODE_META]: TLS_MODE_ISTIO },
          }),
        ],
        [],
      );
      c.applySnapshot({ ...snap, proxy: { ...snap.proxy, name: service, namespace: ns } });
      callers.set(service, c);
    }
  });
  after(async () => {
    await Promise.all([b.close(), ...[...callers.values()].map((c) => c.close())]);
    await app.close();
  });

  it('no policy: every caller and plaintext served, the app told the principal', async () => {
    apply([]);
    for (const c of callers.keys()) assert.equal((await from(c)).status, 200, c);
    assert.equal(
      app.seen.at(-1)?.headers['x-meshwork-source-principal'],
      'cluster.local/ns/prod/sa/reports',
    );
    assert.equal((await plaintext()).status, 200);
  });

  it('principals: only orders', async () => {
    apply([
      fakeResource('AuthorizationPolicy', 'only-orders', {
        action: 'ALLOW',
        rules: [{ from: [{ source: { principals: ['cluster.local/ns/default/sa/orders'] } }] }],
      }),
    ]);
    assert.equal((await from('orders')).status, 200);
    const r = await from('ratings');
    assert.equal(r.status, 403, r.text);
    assert.equal((await from('reports')).status, 403);
    assert.equal((await plaintext()).status, 403);
  });

  it('DENY principal, notPrincipals *, namespaces', async () => {
    apply([
      fakeResource('AuthorizationPolicy', 'no-ratings', {
        action: 'DENY',
        rules: [{ from: [{ source: { principals: ['*/sa/ratings'] } }] }],
      }),
    ]);
    assert.equal((await from('orders')).status, 200);
    const r = await from('ratings');
    assert.equal(r.status, 403);
    assert.match(r.text, /default\/no-ratings/);
    apply([
      fakeResource('AuthorizationPolicy', 'no-plaintext', {
        action: 'DENY',
        rules: [{ from: [{ source: { notPrincipals: ['*'] } }] }],
      }),
    ]);
    for (const c of callers.keys()) assert.equal((await from(c)).status, 200, c);
    assert.equal((await plaintext()).status, 403);
    apply([
      fakeResource('AuthorizationPolicy', 'default-ns', {
        action: 'ALLOW',
        rules: [{ from: [{ source: { namespaces: ['default'] } }] }],
      }),
    ]);
    assert.equal((await from('orders')).status, 200);
    assert.equal((await from('reports')).status, 403);
    assert.equal((await plaintext()).status, 403);
    apply([
      fakeResource('AuthorizationPolicy', 'when-ns', {
        action: 'DENY',
        rules: [
          {
            when: [
              { key: 'source.namespace', values: ['prod'] },
              { key: 'connection.sni', notValues: ['nothing'] },
            ],
          },
        ],
      }),
    ]);
    assert.equal((await from('orders')).status, 200);
    assert.equal((await from('reports')).status, 403);
  });

  it('STRICT with the seed-style policy: plaintext refused at the connection, orders allowed, ratings 403', async () => {
    apply([
      fakeResource('PeerAuthentication', 'default', { mtls: { mode: 'STRICT' } }),
      fakeResource('AuthorizationPolicy', 'seed', {
        action: 'ALLOW',
        rules: [
          {
            from: [{ source: { principals: ['cluster.local/ns/default/sa/orders'] } }],
            to: [{ operation: { methods: ['GET', 'POST'], paths: ['/usuarios/*'] } }],
          },
        ],
      }),
    ]);
    assert.equal((await from('orders', '/usuarios/1')).status, 200);
    assert.equal((await from('orders', '/pedidos/1')).status, 403);
    assert.equal((await from('ratings', '/usuarios/1')).status, 403);
    assert.notEqual((await plaintext('/usuarios/1')).status, 200);
  });
});
