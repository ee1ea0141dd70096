/**
 * @module The sidecar's identity against a real agent's CA over real HTTP (issue 20): the first
 * leaf (checked by the real openssl: `verify -CAfile` against the bundle, `x509 -ext
 * subjectAltName` the SPIFFE ID), renewal with a new key and serial, a root rotation pushed in
 * the snapshot followed by a sidecar, the token's right to the service (a token for `orders`
 * gets no `payments` certificate), `--mtls off`, an agent without a CA, and the leaf's public
 * facts in `/config_dump` and `/metrics` (never the key).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RegistryClient } from '../../src/client/registry-client.js';
import { isMeshError } from '../../src/core/errors.js';
import { silentLogger } from '../../src/core/logger.js';
import type {
  CaRootsResponse,
  LeafSignRequest,
  LeafSignResponse,
} from '../../src/protocol/mesh/ca.js';
import {
  startMeshIdentity,
  type CaClient,
  type MeshIdentity,
  type MeshIdentityOptions,
} from '../../src/proxy/mesh-identity/mesh-identity.js';
import { FakeClock } from '../../src/testing/fake-clock.js';
import {
  FAST_CHECKS,
  http,
  PER_SERVICE_TOKENS,
  startTestAgent,
  type TestAgent,
} from '../helpers/agent.js';
import { startTestApp, startTestSidecar, type TestApp } from '../helpers/sidecar.js';
import { mtlsHandshake } from '../helpers/identity-ca.js';
import { until } from '../helpers/until.js';

const ORDERS = 'spiffe://cluster.local/ns/default/sa/orders';

/** The real client, recording the leaves it was answered (public certificates only). */
class RecordingClient implements CaClient {
  readonly leaves: LeafSignResponse[] = [];
  constructor(readonly client: RegistryClient) {}
  caRoots(): Promise<CaRootsResponse> {
    return this.client.caRoots();
  }
  async caSignLeaf(req: LeafSignRequest): Promise<LeafSignResponse> {
    const res = await this.client.caSignLeaf(req);
    this.leaves.push(res);
    return res;
  }
}

const openssl = (...args: string[]): string =>
  execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** A sidecar's identity options for `service` in the default namespace, asking `client`. */
const identityOptions = (
  client: CaClient,
  service = 'orders',
  more: Partial<MeshIdentityOptions> = {},
): MeshIdentityOptions => ({
  component: 'sidecar',
  service,
  namespace: 'default',
  client,
  logger: silentLogger,
  ...more,
});

describe('sidecar identity against a real agent CA', () => {
  let agent: TestAgent;
  let app: TestApp;
  let dir: string;
  const dirs: string[] = [];
  const dataDir = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'sidecar-identity-'));
    dirs.push(d);
    return d;
  };
  before(async () => {
    agent = await startTestAgent({ flags: FAST_CHECKS });
    app = await startTestApp();
    dir = dataDir();
  });
  after(async () => {
    await agent.stop();
    await app.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("gets a leaf openssl verifies against the agent's bundle, its URI SAN the SPIFFE ID", async () => {
    const registry = new RegistryClient({ addresses: [agent.url] });
    const client = new RecordingClient(registry);
    const r = await startMeshIdentity(identityOptions(client), 10_000);
    assert.equal(r.state, 'on');
    const identity = (r as { identity: MeshIdentity }).identity;
    try {
      const roots = await registry.caRoots();
      assert.equal(identity.bundlePem(), roots.bundlePem);
      const leaf = client.leaves[0]!;
      assert.equal(identity.info()?.serial, leaf.serial.toLowerCase());
      assert.equal(identity.info()?.rootId, roots.activeRootId);
      writeFileSync(join(dir, 'bundle.pem'), roots.bundlePem);
      writeFileSync(join(dir, 'leaf.pem'), leaf.certPem);
      assert.equal(
        openssl('verify', '-CAfile', join(dir, 'bundle.pem'), join(dir, 'leaf.pem')).trim(),
        `${join(dir, 'leaf.pem')}: OK`,
      );
      const san = openssl('x509', '-noout', '-ext', 'subjectAltName', '-in', join(dir, 'leaf.pem'));
      assert.match(san, /X509v3 Subject Alternative Name/);
      assert.equal(san.split('\n')[1]?.trim(), `URI:${ORDERS}`);
      // The default lifetime: 24 h.
      const info = identity.info()!;
      const lifetime = Date.parse(info.notAfter) - Date.parse(info.notBefore);
      assert.ok(Math.abs(lifetime - 24 * 3_600_000) <= 5 * 60_000, `${lifetime} ms`);
    } finally {
      identity.close();
      await registry.close();
    }
  });

  it('renews from the real CA when its clock reaches the renewal point: new key, new serial', async () => {
    const registry = new RegistryClient({ addresses: [agent.url] });
    const client = new RecordingClient(registry);
    const clock = new FakeClock(Date.now());
    const r = await startMeshIdentity(identityOptions(client, 'orders', { clock }), 10_000);
    const identity = (r as { identity: MeshIdentity }).identity;
    try {
      let changes = 0;
      identity.onChange(() => changes++);
      const first = identity.info()!;
      const at = Date.parse(first.nextSigningAt!);
      const lifetime = Date.parse(first.notAfter) - Date.parse(first.notBefore);
      const share = (at - Date.parse(first.notBefore)) / lifetime;
      assert.ok(share >= 0.6 - 0.01 && share <= 0.9 + 0.01, `renewal at ${share} of the lifetime`);
      clock.advance(at - clock.now());
      await until(() => changes === 1, 10_000, 'renewed');
      const second = identity.info()!;
      assert.notEqual(second.serial, first.serial);
      const key = (pem: string) =>
        openssl('x509', '-noout', '-pubkey', '-in', writeTemp('l.pem', pem)).trim();
      assert.notEqual(key(client.leaves[0]!.certPem), key(client.leaves[1]!.certPem));
    } finally {
      identity.close();
      await registry.close();
    }
  });

  const writeTemp = (name: string, text: string): string => {
    const path = join(dir, `${Date.now()}-${Math.random()}-${name}`);
    writeFileSync(path, text);
    return path;
  };

  it('two identities from the CA complete a TLS 1.3 handshake, each verifying the other', async () => {
    const registry = new RegistryClient({ addresses: [agent.url] });
    const start = async (service: string) =>
      (
        (await startMeshIdentity(identityOptions(registry, service), 10_000)) as {
          identity: MeshIdentity;
        }
      ).identity;
    const orders = await start('orders');
    const payments = await start('payments');
    try {
      // payments serves, orders calls: each verifies the other against the agent's bundle.
      const r = await mtlsHandshake(payments.secureContext(), orders.secureContext());
      assert.deepEqual(r, {
        authorized: true,
        protocol: 'TLSv1.3',
        clientSaw: 'URI:spiffe://cluster.local/ns/default/sa/payments',
        serverSaw: `URI:${ORDERS}`,
      });
    } finally {
      orders.close();
      payments.close();
      await registry.close();
    }
  });

  it('a sidecar follows a root rotation pushed in its snapshot: new bundle, leaf from the new root', async () => {
    const sidecar = await startTestSidecar(
      { service: 'orders', appPort: app.port, registry: [agent.url], dataDir: dataDir() },
      { identity: { rotationJitterMs: 200, backoff: { baseMs: 50, maxMs: 200 } } },
    );
    try {
      assert.equal(sidecar.mtls.state, 'on');
      const dump = async () => (await http(sidecar.adminUrl, 'GET', '/config_dump')).body;
      const before = (await dump()).mtls;
      assert.equal(before.state, 'on');
      assert.equal(before.spiffeId, ORDERS);
      const rotated = await http<CaRootsResponse>(agent.url, 'POST', '/api/v1/mesh/ca/rotate', {
        overlap: '1h',
      });
      assert.equal(rotated.status, 200, rotated.text);
      assert.notEqual(rotated.body.activeRootId, before.rootId);
      const after = await until(
        async () => {
          const m = (await dump()).mtls;
          return m.rootId === rotated.body.activeRootId ? m : undefined;
        },
        15_000,
        'a leaf from the new root',
      );
      assert.equal(after.activeRootId, rotated.body.activeRootId);
      assert.notEqual(after.serial, before.serial);
      // Both roots trusted during the overlap.
      const identity = (sidecar.mtls as { identity: MeshIdentity }).identity;
      assert.equal(identity.bundlePem(), rotated.body.bundlePem);
      assert.equal(rotated.body.roots.length, 2);
      const metrics = (await http(sidecar.adminUrl, 'GET', '/metrics')).text;
      assert.match(metrics, /^meshwork_sidecar_cert_renewals_total\{result="ok"\} 1$/m);
      const expiry = Number(/^meshwork_sidecar_cert_expiry_seconds (\S+)$/m.exec(metrics)?.[1]);
      assert.ok(expiry > 23 * 3600 && expiry <= 24 * 3600, `${expiry}`);
      const text = JSON.stringify(await dump());
      assert.doesNotMatch(text, /PRIVATE KEY/);
    } finally {
      await sidecar.stop('test');
    }
  });

  it('with --mtls off asks nothing of the CA, and says so in /config_dump', async () => {
    const sidecar = await startTestSidecar({
      service: 'orders',
      appPort: app.port,
      registry: [agent.url],
      dataDir: dataDir(),
      mtls: 'off',
    });
    try {
      const m = (await http(sidecar.adminUrl, 'GET', '/config_dump')).body.mtls;
      assert.deepEqual(m, { state: 'off', reason: 'mtls: off' });
      const metrics = (await http(sidecar.adminUrl, 'GET', '/metrics')).text;
      assert.doesNotMatch(metrics, /meshwork_sidecar_cert_expiry_seconds \S/);
      assert.match(metrics, /^meshwork_sidecar_mtls_enabled 0$/m);
    } finally {
      await sidecar.stop('test');
    }
  });

  it('starts without mTLS, and says why, when no agent answers within the wait', async () => {
    const sidecar = await startTestSidecar({
      service: 'orders',
      appPort: app.port,
      registry: ['http://127.0.0.1:1'],
      dataDir: dataDir(),
    });
    try {
      const m = (await http(sidecar.adminUrl, 'GET', '/config_dump')).body.mtls;
      assert.equal(m.state, 'off');
      assert.match(m.reason, /^no agent answered within 500 ms/);
    } finally {
      await sidecar.stop('test');
    }
  });
});

describe('sidecar identity: the token decides which identity', () => {
  let agent: TestAgent;
  let app: TestApp;
  let dir: string;
  before(async () => {
    agent = await startTestAgent({ flags: FAST_CHECKS, deps: { acl: PER_SERVICE_TOKENS } });
    app = await startTestApp();
    dir = mkdtempSync(join(tmpdir(), 'sidecar-identity-'));
  });
  after(async () => {
    await agent.stop();
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a sidecar whose token is for orders cannot get a payments certificate: the start fails', async () => {
    await assert.rejects(
      startTestSidecar({
        service: 'payments',
        appPort: app.port,
        registry: [agent.url],
        dataDir: dir,
        token: 'orders-token',
      }),
      (err: unknown) =>
        isMeshError(err, 'MESHWORK_ERR_SIDECAR_IDENTITY') &&
        /sa\/payments/.test(err.message) &&
        /service:payments write/.test(err.message),
    );
  });

  it('the right token gets the certificate', async () => {
    const registry = new RegistryClient({ addresses: [agent.url], token: 'orders-token' });
    const r = await startMeshIdentity(identityOptions(registry), 10_000);
    assert.equal(r.state, 'on');
    (r as { identity: MeshIdentity }).identity.close();
    await registry.close();
  });
});
