// mTLS between sidecars (issue 20, "mTLS between sidecars"): in-process sidecar proxies with
// identities from a local test CA, real app servers, and real clients: openssl s_client and curl
// with and without certificates against the inbound side, and sidecar A's outbound side
// originating mTLS to sidecar B's inbound side (app -> A -> B -> app).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { connect as netConnect } from 'node:net';
import type { Duplex } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { silentLogger } from '../../src/core/logger.js';
import type { MeshResource } from '../../src/protocol/mesh/resource.js';
import type { MtlsMode } from '../../src/protocol/mesh/specs.js';
import {
  SOURCE_PRINCIPAL_HEADER,
  SOURCE_SERVICE_HEADER,
  startSidecarProxy,
  TLS_MODE_ISTIO,
  TLS_MODE_META,
  type RunningSidecarProxy,
  type SidecarProxyOptions,
} from '../../src/sidecar/sidecar-proxy.js';
import { fakeInstance, fakeResource } from '../../src/testing/fake-mesh-catalog.js';
import {
  call,
  describeOnEachHttp1,
  startUpstream,
  until,
  type Upstream,
} from '../helpers/gateway.js';
import {
  createTestCa,
  expiredLeaf,
  testIdentity,
  type TestCa,
  type TestIdentity,
  type TestLeaf,
} from '../helpers/test-ca.js';
import { compileSidecarSnapshot as compileFor } from '../helpers/mesh-snapshot.js';
import { SIDECAR_PROXY_BASE } from '../helpers/sidecar.js';

const BASE: SidecarProxyOptions = {
  ...SIDECAR_PROXY_BASE,
  connectTimeoutMs: 2_000,
  requestTimeoutMs: 10_000,
};

/** A PeerAuthentication for the workload `app: <service>`. */
const peerAuth = (service: string, mode: MtlsMode, ports?: Record<string, MtlsMode>) =>
  fakeResource('PeerAuthentication', `${service}-mtls`, {
    selector: { matchLabels: { app: service } },
    mtls: { mode },
    ...(ports === undefined
      ? {}
      : {
          portLevelMtls: Object.fromEntries(
            Object.entries(ports).map(([p, m]) => [p, { mode: m }]),
          ),
        }),
  });

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a real client (openssl, curl) with a deadline; never rejects. */
function run(cmd: string, args: readonly string[], input = ''): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: 20_000 }, (err, stdout, stderr) =>
      resolve({
        code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1,
        stdout,
        stderr,
      }),
    );
    child.stdin?.end(input);
  });
}

/** The port of a `http://host:port` URL. */
const portOf = (url: string): number => Number(new URL(url).port);

/** The value of `meshwork_sidecar_mtls_connections_total{direction,result}` (0 when absent). */
async function tlsCount(
  proxy: RunningSidecarProxy,
  direction: string,
  result: string,
): Promise<number> {
  const text = await proxy.metricsText();
  const re = new RegExp(
    `^meshwork_sidecar_mtls_connections_total\\{direction="${direction}",result="${result}"\\} (\\d+)$`,
    'm',
  );
  return Number(re.exec(text)?.[1] ?? 0);
}

describeOnEachHttp1('sidecar mTLS', (http1) => {
  const deps = http1.deps;
  let dir: string;
  let ca: TestCa;
  let otherCa: TestCa;
  let ordersLeaf: TestLeaf;
  let paymentsId: TestIdentity;
  let ordersId: TestIdentity;
  let app: Upstream;
  let b: RunningSidecarProxy;
  let a: RunningSidecarProxy;
  /** PEM files the real clients read. */
  const files: Record<string, string> = {};

  /** A caller sidecar `checkout` with an identity of the mesh CA. */
  const startCheckout = async (tls?: TestIdentity): Promise<RunningSidecarProxy> =>
    startSidecarProxy(
      {
        ...BASE,
        service: 'checkout',
        tls: tls ?? (await identityOf(ca, 'checkout')),
        upstreamKeepAliveMs: 60_000,
      },
      silentLogger,
      deps,
    );

  /**
   * `n` calls at once, each held by the app until all `n` are in (so the caller opens `n`
   * connections); answers their statuses.
   */
  const heldBurst = async (n: number, send: () => Promise<{ status: number }>) => {
    const held: (() => void)[] = [];
    app.handler = (req, res) => {
      req.resume();
      held.push(() => res.end('payments-app'));
      if (held.length === n) for (const release of held) release();
    };
    try {
      return (await Promise.all(Array.from({ length: n }, send))).map((r) => r.status);
    } finally {
      app.handler = undefined;
    }
  };

  /** B's inbound mode, as its snapshot (compiled from a PeerAuthentication) sets it. */
  const setMode = (mode: MtlsMode, ports?: Record<string, MtlsMode>): void => {
    b.applySnapshot(compileFor('payments', [], [peerAuth('payments', mode, ports)]));
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshwork-mtls-'));
    ca = await createTestCa();
    otherCa = await createTestCa('unrelated root');
    ordersLeaf = await ca.serviceLeaf('orders');
    // B's leaf also names localhost, so curl (which checks a host name) can verify it.
    paymentsId = testIdentity(
      await ca.serviceLeaf('payments', 'default', { dnsNames: ['localhost'] }),
      ca.certPem,
    );
    ordersId = testIdentity(ordersLeaf, ca.certPem);
    const write = (name: string, pem: string): void => {
      const path = join(dir, name);
      writeFileSync(path, pem);
      files[name] = path;
    };
    write('root.pem', ca.certPem);
    write('orders.pem', ordersLeaf.certPem);
    write('orders.key', ordersLeaf.keyPem);
    const foreign = await otherCa.serviceLeaf('orders');
    write('foreign.pem', foreign.certPem);
    write('foreign.key', foreign.keyPem);
    const expired = await expiredLeaf(ca, 'orders');
    write('expired.pem', expired.certPem);
    write('expired.key', expired.keyPem);

    app = await startUpstream('payments-app');
    b = await startSidecarProxy(
      {
        ...BASE,
        service: 'payments',
        appPort: app.port,
        tls: paymentsId,
        // Kept open however slow the machine: the renewal test counts B's connections.
        downstreamKeepAliveMs: 120_000,
      },
      silentLogger,
      deps,
    );
    a = await startSidecarProxy({ ...BASE, tls: ordersId }, silentLogger, deps);
    a.applySnapshot(compileFor('orders', [paymentsAt('p1', portOf(b.inboundUrl))], []));
  });

  after(async () => {
    await Promise.all([a.close(), b.close()]);
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** curl to B's inbound over TLS as `localhost`, with a client certificate (or none). */
  const curlTls = (cert: 'orders' | 'foreign' | 'expired' | undefined, extra: string[] = []) =>
    run('curl', [
      '-sS',
      '--max-time',
      '10',
      '--cacert',
      files['root.pem'] as string,
      ...(cert === undefined
        ? []
        : ['--cert', files[`${cert}.pem`] as string, '--key', files[`${cert}.key`] as string]),
      '--resolve',
      `localhost:${portOf(b.inboundUrl)}:127.0.0.1`,
      '-w',
      '\n%{http_code}',
      ...extra,
      `https://localhost:${portOf(b.inboundUrl)}/who`,
    ]);

  /** openssl s_client with `cert` (or none) sending one request; its output. */
  const sClient = (cert: 'orders' | 'foreign' | 'expired' | undefined) =>
    run(
      'openssl',
      [
        's_client',
        '-connect',
        `127.0.0.1:${portOf(b.inboundUrl)}`,
        '-CAfile',
        files['root.pem'] as string,
        '-verify_return_error',
        '-ign_eof',
        ...(cert === undefined
          ? []
          : ['-cert', files[`${cert}.pem`] as string, '-key', files[`${cert}.key`] as string]),
      ],
      'GET /who HTTP/1.1\r\nHost: payments\r\nConnection: close\r\n\r\n',
    );

  it('STRICT: serves a client with a certificate of the mesh CA, the app told its principal (openssl s_client, curl)', async () => {
    setMode('STRICT');
    const hits = app.hits;
    const s = await sClient('orders');
    assert.match(s.stdout, /Protocol\s*: TLSv1\.3/);
    assert.match(s.stdout, /HTTP\/1\.1 200 /);
    const c = await curlTls('orders', [
      '-H',
      `${SOURCE_PRINCIPAL_HEADER}: cluster.local/ns/default/sa/admin`,
    ]);
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stdout, /\n200$/);
    assert.equal(app.hits, hits + 2);
    const seen = app.seen.at(-1);
    // The forged principal is gone: the one the app sees is the certificate's.
    assert.equal(seen?.headers[SOURCE_PRINCIPAL_HEADER], 'cluster.local/ns/default/sa/orders');
    assert.equal(seen?.headers[SOURCE_SERVICE_HEADER], 'orders');
  });

  it('STRICT: refuses plaintext (the connection is closed), a client without a certificate, one from another CA and an expired one', async () => {
    setMode('STRICT');
    const hits = app.hits;
    const refusedBefore = await tlsCount(b, 'inbound', 'refused_plaintext');
    const plain = await run('curl', ['-sS', '--max-time', '10', `${b.inboundUrl}/who`]);
    assert.notEqual(plain.code, 0);
    // curl: 52 "empty reply from server" (or 56, a reset): closed without an answer.
    assert.ok(plain.code === 52 || plain.code === 56, `curl exit ${plain.code}: ${plain.stderr}`);
    assert.equal(await tlsCount(b, 'inbound', 'refused_plaintext'), refusedBefore + 1);

    const failedBefore = await tlsCount(b, 'inbound', 'handshake_failed');
    for (const cert of [undefined, 'foreign', 'expired'] as const) {
      const s = await sClient(cert);
      assert.doesNotMatch(s.stdout, /HTTP\/1\.1/, `s_client with ${cert ?? 'no'} certificate`);
      // Without one, the handshake itself fails (TLS 1.3's alert 116).
      if (cert === undefined) assert.match(s.stderr, /alert certificate required/);
      const c = await curlTls(cert);
      assert.notEqual(c.code, 0, `curl with ${cert ?? 'no'} certificate: ${c.stdout}`);
    }
    assert.equal(app.hits, hits);
    await until(async () => (await tlsCount(b, 'inbound', 'handshake_failed')) >= failedBefore + 6);
  });

  it('PERMISSIVE: takes plaintext and mTLS on the same port; a plaintext caller gets no principal, whatever it sends', async () => {
    setMode('PERMISSIVE');
    const plain = await call(b.inboundUrl, '/who', {
      headers: { [SOURCE_PRINCIPAL_HEADER]: 'cluster.local/ns/default/sa/admin' },
    });
    assert.equal(plain.status, 200);
    assert.equal(app.seen.at(-1)?.headers[SOURCE_PRINCIPAL_HEADER], undefined);
    const c = await curlTls('orders');
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stdout, /\n200$/);
    assert.equal(
      app.seen.at(-1)?.headers[SOURCE_PRINCIPAL_HEADER],
      'cluster.local/ns/default/sa/orders',
    );
    // A pipelined plaintext pair: the byte looked at first is not lost; then a third request on
    // the same connection, read as the rest of its bytes are (natively, on the own server).
    const raw = await rawExchange(portOf(b.inboundUrl), [
      'GET /one HTTP/1.1\r\nHost: payments\r\n\r\nGET /two HTTP/1.1\r\nHost: payments\r\n\r\n',
      '',
      'GET /three HTTP/1.1\r\nHost: payments\r\nConnection: close\r\n\r\n',
    ]);
    assert.equal(raw.match(/HTTP\/1\.1 200 /g)?.length, 3, raw);
    assert.deepEqual(
      app.seen.slice(-3).map((r) => r.url),
      ['/one', '/two', '/three'],
    );
  });

  it('DISABLE: plaintext only; a TLS handshake gets no certificate', async () => {
    setMode('DISABLE');
    const plain = await call(b.inboundUrl, '/who');
    assert.equal(plain.status, 200);
    const s = await sClient('orders');
    assert.doesNotMatch(s.stdout, /Protocol\s*: TLSv1\.3/);
    assert.doesNotMatch(s.stdout, /HTTP\/1\.1 200/);
  });

  it('portLevelMtls for the app port overrides the workload mode', async () => {
    setMode('PERMISSIVE', { [String(app.port)]: 'STRICT' });
    const plain = await run('curl', ['-sS', '--max-time', '10', `${b.inboundUrl}/who`]);
    assert.notEqual(plain.code, 0);
    setMode('STRICT', { [String(app.port)]: 'PERMISSIVE' });
    assert.equal((await call(b.inboundUrl, '/who')).status, 200);
  });

  it('outbound: A originates mTLS to B (STRICT), B checks A, A checks B is payments; the app sees orders', async () => {
    setMode('STRICT');
    const r = await call(a.outboundUrl, '/through', {
      headers: { host: 'payments', [SOURCE_PRINCIPAL_HEADER]: 'forged' },
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.text, 'payments-app');
    const seen = app.seen.at(-1);
    assert.equal(seen?.url, '/through');
    assert.equal(seen?.headers[SOURCE_PRINCIPAL_HEADER], 'cluster.local/ns/default/sa/orders');
    assert.ok((await tlsCount(a, 'outbound', 'mtls')) >= 1);
  });

  it('a leaf renewal under continuous load loses no request, keeps the open connections, and new handshakes use the new leaf', async () => {
    setMode('STRICT');
    const checkoutId = await identityOf(ca, 'checkout');
    const c = await startCheckout(checkoutId);
    try {
      c.applySnapshot(compileFor('checkout', [paymentsAt('p1', portOf(b.inboundUrl))], []));
      const workers = 4;
      // Four held at the app at once: four connections from checkout to B, all established.
      assert.deepEqual(
        await heldBurst(workers, () =>
          call(c.outboundUrl, '/warm', { headers: { host: 'payments' } }),
        ),
        [200, 200, 200, 200],
      );
      const before = await tlsCount(b, 'inbound', 'mtls');
      const statuses = new Map<number, number>();
      let sent = 0;
      let renewed = false;
      const renewAt = 150;
      const total = 400;
      const worker = async (): Promise<void> => {
        while (sent < total) {
          sent++;
          if (sent >= renewAt && !renewed) {
            renewed = true;
            // Both sides renew at once, mid-load.
            paymentsId.renew(
              await ca.serviceLeaf('payments', 'default', { dnsNames: ['localhost'] }),
            );
            checkoutId.renew(await ca.serviceLeaf('checkout'));
          }
          const r = await call(c.outboundUrl, '/load', { headers: { host: 'payments' } });
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        }
      };
      await Promise.all(Array.from({ length: workers }, () => worker()));
      assert.ok(renewed);
      assert.deepEqual([...statuses], [[200, total]]);
      // No new connection to B: the four open ones carried the load across the renewal.
      assert.equal(await tlsCount(b, 'inbound', 'mtls'), before);
      // A new handshake gets B's new leaf.
      const s = await run(
        'openssl',
        [
          's_client',
          '-connect',
          `127.0.0.1:${portOf(b.inboundUrl)}`,
          '-cert',
          files['orders.pem'] as string,
          '-key',
          files['orders.key'] as string,
        ],
        '',
      );
      const served = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(
        s.stdout,
      )?.[0];
      assert.equal(squash(served), squash(paymentsId.leaf().certPem));
    } finally {
      await c.close();
    }
  });

  it("tunnels an Upgrade (WebSocket-style) over mTLS, with the caller's principal and no forged one", async () => {
    setMode('STRICT');
    let upgradeHeaders: Record<string, unknown> | undefined;
    const onUpgrade = (req: IncomingMessage, socket: Duplex): void => {
      upgradeHeaders = req.headers;
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n',
      );
      socket.pipe(socket);
    };
    app.server.on('upgrade', onUpgrade);
    try {
      const socket = netConnect(portOf(a.outboundUrl), '127.0.0.1');
      let text = '';
      socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
      socket.write(
        `GET /ws HTTP/1.1\r\nHost: payments\r\nConnection: Upgrade\r\nUpgrade: echo\r\n${SOURCE_PRINCIPAL_HEADER}: forged\r\n\r\n`,
      );
      await until(() => text.includes('\r\n\r\n'));
      assert.match(text, /^HTTP\/1\.1 101 /);
      socket.write('ping over mTLS');
      await until(() => text.endsWith('ping over mTLS'));
      socket.destroy();
      assert.equal(upgradeHeaders?.[SOURCE_PRINCIPAL_HEADER], 'cluster.local/ns/default/sa/orders');
    } finally {
      app.server.off('upgrade', onUpgrade);
    }
  });

  it('a sidecar without an identity refuses STRICT and ISTIO_MUTUAL: a NACK saying it cannot honour them', async () => {
    const bare = await startSidecarProxy({ ...BASE, service: 'payments' }, silentLogger, deps);
    try {
      const mutual = fakeResource('DestinationRule', 'orders-tls', {
        host: 'orders',
        trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } },
      });
      const problemsOf = (resources: MeshResource[]): string => {
        try {
          bare.applySnapshot(compileFor('payments', [fakeInstance('o1', 'orders')], resources));
        } catch (err) {
          return ((err as { details?: { problems?: string[] } }).details?.problems ?? []).join(
            '\n',
          );
        }
        return 'applied';
      };
      assert.match(
        problemsOf([peerAuth('payments', 'STRICT')]),
        /^inbound\.mtls: STRICT needs an mTLS identity .* cannot honour it$/,
      );
      assert.match(
        problemsOf([mutual]),
        /clusters\[\d+\] \(orders\)\.tls\.mode: ISTIO_MUTUAL needs this sidecar's mTLS identity/,
      );
      // PERMISSIVE is fine without one (plaintext is all it gets).
      bare.applySnapshot(compileFor('payments', [], [peerAuth('payments', 'PERMISSIVE')]));
      assert.equal(bare.mtls, false);
    } finally {
      await bare.close();
    }
  });

  it("STRICT refuses TLS 1.2 even where the identity's context would allow it", async () => {
    const lax = await startSidecarProxy(
      {
        ...BASE,
        service: 'payments',
        appPort: app.port,
        tls: testIdentity(await ca.serviceLeaf('payments'), ca.certPem, undefined, 'TLSv1.2'),
      },
      silentLogger,
      deps,
    );
    try {
      lax.applySnapshot(compileFor('payments', [], [peerAuth('payments', 'STRICT')]));
      const hits = app.hits;
      const s = await run(
        'openssl',
        [
          's_client',
          '-connect',
          `127.0.0.1:${portOf(lax.inboundUrl)}`,
          '-tls1_2',
          '-cert',
          files['orders.pem'] as string,
          '-key',
          files['orders.key'] as string,
        ],
        'GET /who HTTP/1.1\r\nHost: payments\r\n\r\n',
      );
      assert.match(s.stdout, /Protocol\s*: TLSv1\.2/);
      assert.doesNotMatch(s.stdout, /HTTP\/1\.1/);
      assert.equal(app.hits, hits);
      assert.equal(await tlsCount(lax, 'inbound', 'handshake_failed'), 1);
    } finally {
      await lax.close();
    }
  });

  /**
   * Calls payments through a fresh sidecar `checkout` whose snapshot says an instance of
   * payments is at a sidecar with `peerTls` (an impostor); answers the response, and whether
   * the impostor's app was reached.
   */
  const callImpostor = async (peerTls: TestIdentity) => {
    const peerApp = await startUpstream('impostor-app');
    const peer = await startSidecarProxy(
      { ...BASE, service: 'payments', appPort: peerApp.port, tls: peerTls },
      silentLogger,
      deps,
    );
    const c = await startCheckout();
    try {
      const impostor = paymentsAt('p-impostor', portOf(peer.inboundUrl));
      c.applySnapshot(compileFor('checkout', [impostor], []));
      const r = await call(c.outboundUrl, '/x', { headers: { host: 'payments' } });
      return {
        r,
        reached: peerApp.hits > 0,
        mismatches: await tlsCount(c, 'outbound', 'identity_mismatch'),
      };
    } finally {
      await Promise.all([c.close(), peer.close()]);
      await peerApp.close();
    }
  };

  it('outbound: refuses a peer whose SPIFFE ID is another service (503 naming both)', async () => {
    const { r, reached, mismatches } = await callImpostor(await identityOf(ca, 'evil'));
    assert.equal(r.status, 503, r.text);
    const body = JSON.parse(r.text) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'MESHWORK_ERR_PROXY_UPSTREAM_TLS');
    assert.match(body.error.message, /spiffe:\/\/cluster\.local\/ns\/default\/sa\/evil/);
    assert.match(
      body.error.message,
      /expected spiffe:\/\/cluster\.local\/ns\/default\/sa\/payments/,
    );
    assert.equal(reached, false);
    assert.ok(mismatches >= 1);
  });

  it('outbound: refuses a peer whose certificate is from another CA (503)', async () => {
    const foreign = testIdentity(await otherCa.serviceLeaf('payments'), ca.certPem);
    const { r, reached } = await callImpostor(foreign);
    assert.equal(r.status, 503, r.text);
    assert.match(r.text, /MESHWORK_ERR_PROXY_UPSTREAM_TLS/);
    assert.match(r.text, /certificate was refused/);
    assert.equal(reached, false);
  });

  it('DestinationRule tls DISABLE sends plaintext (refused by a STRICT peer), ISTIO_MUTUAL forces mTLS without the meta', async () => {
    setMode('STRICT');
    const c = await startCheckout();
    try {
      const bare = paymentsAt('p-bare', portOf(b.inboundUrl), {});
      const rule = (mode: 'DISABLE' | 'ISTIO_MUTUAL') =>
        fakeResource('DestinationRule', 'payments-tls', {
          host: 'payments',
          trafficPolicy: { tls: { mode } },
        });
      // No meta: auto mTLS sends plaintext, which STRICT refuses.
      c.applySnapshot(compileFor('checkout', [bare], []));
      assert.notEqual(
        (await call(c.outboundUrl, '/x', { headers: { host: 'payments' } })).status,
        200,
      );
      c.applySnapshot(compileFor('checkout', [bare], [rule('ISTIO_MUTUAL')]));
      assert.equal(
        (await call(c.outboundUrl, '/x', { headers: { host: 'payments' } })).status,
        200,
      );
      const tagged = { ...bare, meta: { [TLS_MODE_META]: TLS_MODE_ISTIO } };
      c.applySnapshot(compileFor('checkout', [tagged], [rule('DISABLE')]));
      assert.notEqual(
        (await call(c.outboundUrl, '/x', { headers: { host: 'payments' } })).status,
        200,
      );
    } finally {
      await c.close();
    }
  });

  it('resumes TLS sessions: new connections to a known endpoint skip the full handshake', async () => {
    setMode('STRICT');
    const c = await startCheckout();
    try {
      c.applySnapshot(compileFor('checkout', [paymentsAt('p1', portOf(b.inboundUrl))], []));
      // One connection, a full handshake; its session ticket is cached.
      const first = await call(c.outboundUrl, '/first', { headers: { host: 'payments' } });
      assert.equal(first.status, 200);
      assert.equal(await tlsCount(c, 'outbound', 'mtls'), 1);
      // Four at once, held by the app until all four are in: three new connections.
      assert.deepEqual(
        await heldBurst(4, () => call(c.outboundUrl, '/again', { headers: { host: 'payments' } })),
        [200, 200, 200, 200],
      );
      assert.equal(await tlsCount(c, 'outbound', 'resumed'), 3);
      assert.equal(await tlsCount(c, 'outbound', 'mtls'), 1);
      // A resumed connection still carries the caller's verified identity.
      assert.equal(
        app.seen.at(-1)?.headers[SOURCE_PRINCIPAL_HEADER],
        'cluster.local/ns/default/sa/checkout',
      );
    } finally {
      await c.close();
    }
  });
});

/** An instance of payments at 127.0.0.1:`port`, registered by a sidecar with an identity by default. */
function paymentsAt(
  id: string,
  port: number,
  meta: Record<string, string> = { [TLS_MODE_META]: TLS_MODE_ISTIO },
) {
  return fakeInstance(id, 'payments', { address: '127.0.0.1', port, meta });
}

/** A PEM's base64 without its armour and line breaks (undefined stays undefined). */
function squash(pem: string | undefined): string | undefined {
  return pem?.replace(/-----[A-Z ]+-----|\s/g, '');
}

/** An identity for `service` signed by `ca`. */
async function identityOf(ca: TestCa, service: string): Promise<TestIdentity> {
  return testIdentity(await ca.serviceLeaf(service), ca.certPem);
}

/**
 * Writes `requests` on one plain connection, each after the answer to the previous one (told by
 * its body, `payments-app`), and answers everything read until the server closes.
 */
function rawExchange(port: number, requests: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, '127.0.0.1');
    let text = '';
    let sent = 0;
    const next = (): void => {
      const r = requests[sent++];
      if (r !== undefined) socket.write(r);
    };
    socket.setTimeout(10_000, () => socket.destroy(new Error('rawExchange: no close in 10 s')));
    socket.on('connect', next);
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      const answered = text.split('payments-app').length - 1;
      while (answered >= sent && sent < requests.length) next();
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(text));
  });
}
