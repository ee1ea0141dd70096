/**
 * The mesh CA on a real agent over real HTTP (issue 20): the bundle, leaves signed from CSRs
 * (verified against the root, the SPIFFE ID the only SAN whatever the CSR asked for), refusals
 * (400 naming the field, 403 naming the missing permission), rotation then retirement driven by
 * a fake clock and pushed in snapshots, the root kept across a restart (sqlite), and the root's
 * private key out of reach of every KV read.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { MeshSubscriber } from '../../src/client/mesh-subscriber.js';
import type { CaRootsResponse, LeafSignResponse } from '../../src/protocol/mesh/ca.js';
import type { AclResolver } from '../../src/registry/acl/acl-contract.js';
import { FakeClock } from '../../src/testing/fake-clock.js';
import { http, startTestAgent, type TestAgent } from '../helpers/agent.js';
import { bundleCertificates, makeCsr } from '../helpers/ca.js';
import { until } from '../helpers/until.js';

const HOUR_MS = 3_600_000;

describe('mesh CA on a real agent', () => {
  let agent: TestAgent;
  before(async () => {
    agent = await startTestAgent();
  });
  after(async () => {
    await agent.stop();
  });

  it('serves the bundle: one active self-signed CA root', async () => {
    const r = await http<CaRootsResponse>(agent.url, 'GET', '/api/v1/mesh/ca/roots');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.trustDomain, 'cluster.local');
    assert.equal(r.body.roots.length, 1);
    const [root] = r.body.roots;
    assert.equal(root?.active, true);
    assert.equal(root?.id, r.body.activeRootId);
    assert.equal(r.body.bundlePem, root?.certPem);
    const cert = new X509Certificate(r.body.bundlePem);
    assert.equal(cert.ca, true);
    assert.equal(cert.verify(cert.publicKey), true);
    assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.equal(cert.fingerprint256.replaceAll(':', '').toLowerCase(), root?.id);
  });

  it('signs a leaf for the CSR key with the SPIFFE ID as its only SAN, whatever the CSR asks', async () => {
    const csr = await makeCsr({ commonName: 'payments', askFor: 'spiffe://evil/ns/x/sa/y' });
    const before = Date.now();
    const r = await http<LeafSignResponse>(agent.url, 'POST', '/api/v1/mesh/ca/leaf', {
      csr: csr.pem,
      service: 'orders',
    });
    assert.equal(r.status, 200, r.text);
    const roots = (await http<CaRootsResponse>(agent.url, 'GET', '/api/v1/mesh/ca/roots')).body;
    const leaf = new X509Certificate(r.body.certPem);
    const root = new X509Certificate(roots.bundlePem);
    assert.equal(leaf.verify(root.publicKey), true);
    assert.equal(leaf.checkIssued(root), true);
    assert.equal(leaf.subjectAltName, 'URI:spiffe://cluster.local/ns/default/sa/orders');
    assert.equal(leaf.subject, 'CN=orders');
    assert.equal(leaf.ca, false);
    assert.deepEqual(leaf.keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    assert.equal(r.body.spiffeId, 'spiffe://cluster.local/ns/default/sa/orders');
    assert.equal(r.body.rootId, roots.activeRootId);
    assert.equal(r.body.serial.toUpperCase(), leaf.serialNumber);
    assert.equal(r.body.serial.length, 32);
    // The leaf is the CSR's key's: its public key is the one the CSR carried.
    const { createPrivateKey, createPublicKey } = await import('node:crypto');
    const expected = createPublicKey(createPrivateKey(csr.keyPem)).export({
      type: 'spki',
      format: 'der',
    });
    assert.deepEqual(leaf.publicKey.export({ type: 'spki', format: 'der' }), expected);
    // 24 h, from a minute before it was signed (whole seconds).
    const notBefore = Date.parse(r.body.notBefore);
    const notAfter = Date.parse(r.body.notAfter);
    assert.equal(notBefore, Date.parse(leaf.validFrom));
    assert.equal(notAfter, Date.parse(leaf.validTo));
    assert.ok(notBefore <= before - 59_000 && notBefore >= before - 62_000, r.body.notBefore);
    assert.ok(Math.abs(notAfter - notBefore - 24 * HOUR_MS - 60_000) <= 62_000, r.body.notAfter);
  });

  it('signs RSA 2048 CSRs and takes the namespace', async () => {
    const csr = await makeCsr({ key: 'rsa-2048' });
    const r = await http<LeafSignResponse>(agent.url, 'POST', '/api/v1/mesh/ca/leaf', {
      csr: csr.pem,
      service: 'billing',
      namespace: 'shop',
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(
      new X509Certificate(r.body.certPem).subjectAltName,
      'URI:spiffe://cluster.local/ns/shop/sa/billing',
    );
  });

  it('refuses bad requests with 400 naming the field', async () => {
    const good = (await makeCsr()).pem;
    const tampered = await (async () => {
      // Another key's CSR with this one's signature: the signature no longer verifies.
      const other = (await makeCsr()).pem;
      const der = (pem: string) =>
        Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
      const a = der(good);
      const b = der(other);
      const mixed = Buffer.concat([b.subarray(0, b.length - 72), a.subarray(a.length - 72)]);
      return `-----BEGIN CERTIFICATE REQUEST-----\n${mixed.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    })();
    const cases: [unknown, string, RegExp][] = [
      [{ csr: 'hello', service: 'orders' }, 'csr', /^csr: not a PEM certificate request$/],
      [{ csr: good, service: 'Not_A_Service' }, 'service', /^service: must be 1-63 lowercase/],
      [{ csr: good }, 'service', /^service: /],
      [{ service: 'orders' }, 'csr', /^csr: /],
      [{ csr: good, service: 'orders', namespace: '-x' }, 'namespace', /^namespace: /],
      [{ csr: good, service: 'orders', extra: 1 }, '', /extra/],
      [{ csr: (await makeCsr({ key: 'ec-p384' })).pem, service: 'orders' }, 'csr', /EC P-256/],
      [{ csr: (await makeCsr({ key: 'rsa-1024' })).pem, service: 'orders' }, 'csr', /rsa 1024/],
      [{ csr: tampered, service: 'orders' }, 'csr', /^csr: /],
    ];
    for (const [body, field, message] of cases) {
      const r = await http(agent.url, 'POST', '/api/v1/mesh/ca/leaf', body);
      assert.equal(r.status, 400, `${JSON.stringify(body).slice(0, 80)}: ${r.text}`);
      if (field !== '') assert.equal(r.body.error.field, field, r.text);
      assert.match(r.body.error.message, message);
    }
    const empty = await http(agent.url, 'POST', '/api/v1/mesh/ca/leaf');
    assert.equal(empty.status, 400, empty.text);
  });

  it('answers any body with 400 (never a 500 or a crash): strings, JSON values, CSR-shaped fields', async () => {
    const good = (await makeCsr()).pem;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 200 }),
          fc.json({ maxDepth: 3 }),
          fc
            .record(
              {
                csr: fc.oneof(
                  fc.string({ maxLength: 200 }),
                  fc.constant(good.slice(0, good.length - 40)),
                  fc.constant(good.replace(/[A-Za-z]/, '*')),
                  fc.anything({ maxDepth: 1 }),
                ),
                service: fc.oneof(fc.string({ maxLength: 70 }), fc.anything({ maxDepth: 1 })),
                namespace: fc.oneof(fc.string({ maxLength: 70 }), fc.anything({ maxDepth: 1 })),
              },
              { requiredKeys: [] },
            )
            .map((o) => JSON.stringify(o)),
        ),
        async (body) => {
          for (const path of ['/api/v1/mesh/ca/leaf', '/api/v1/mesh/ca/rotate']) {
            const r = await http(agent.url, 'POST', path, body, {
              'content-type': 'application/json',
            });
            // A rotate body that happens to be {} or {"overlap":"<duration>"} is a rotation.
            if (path.endsWith('rotate') && r.status === 200) continue;
            assert.equal(r.status, 400, `${path} ${JSON.stringify(body)}: ${r.text}`);
            assert.match(r.body.error.code, /^MESHWORK_ERR_API_(VALIDATION|MALFORMED_BODY)$/);
          }
        },
      ),
      { seed: 20, numRuns: 150 },
    );
    // The agent still signs afterwards.
    const r = await http(agent.url, 'POST', '/api/v1/mesh/ca/leaf', { csr: good, service: 'a' });
    assert.equal(r.status, 200, r.text);
  });

  it('keeps the root key out of every KV read, and refuses writes to its key', async () => {
    await http(agent.url, 'PUT', '/api/v1/kv/app/config', 'v');
    const lists = [
      await http(agent.url, 'GET', '/api/v1/kv/?recurse'),
      await http(agent.url, 'GET', '/api/v1/kv/?recurse&index=1'),
      await http(agent.url, 'GET', '/v1/kv/?recurse'),
      await http(agent.url, 'GET', '/v1/kv/?keys'),
      await http(agent.url, 'GET', '/v1/kv/?recurse&index=1'),
    ];
    for (const r of lists) {
      assert.equal(r.status, 200, r.text);
      assert.doesNotMatch(r.text, /PRIVATE KEY|BEGIN|mesh-ca|\\u0000/, r.text);
    }
    for (const path of [
      '/v1/kv/%00mesh-ca/state',
      '/api/v1/kv/%00mesh-ca/state',
      '/v1/kv/%00?recurse',
      '/api/v1/kv/%00?recurse',
      '/v1/kv/%00mesh-ca/?keys',
    ]) {
      const r = await http(agent.url, 'GET', path);
      // Not found, or an empty list (the native API lists a prefix with no key as empty).
      if (r.status === 200) assert.deepEqual(r.body.entries, [], `${path}: ${r.text}`);
      else assert.equal(r.status, 404, `${path}: ${r.text}`);
      assert.doesNotMatch(r.text, /PRIVATE KEY|BEGIN/, r.text);
    }
    const reads = lists;
    assert.match(reads[0]?.text ?? '', /app\/config/);
    assert.match(reads[2]?.text ?? '', /app\/config/);
    for (const [method, path] of [
      ['PUT', '/api/v1/kv/%00mesh-ca/state'],
      ['PUT', '/v1/kv/%00mesh-ca/state'],
      ['DELETE', '/api/v1/kv/%00mesh-ca/state'],
      ['DELETE', '/v1/kv/%00mesh-ca/state'],
    ] as const) {
      const r = await http(agent.url, method, path, method === 'PUT' ? 'x' : undefined);
      assert.equal(r.status, 400, `${method} ${path}: ${r.text}`);
    }
    // A recursive delete of everything leaves the CA standing.
    assert.equal((await http(agent.url, 'DELETE', '/v1/kv/?recurse')).status, 200);
    assert.equal((await http(agent.url, 'DELETE', '/api/v1/kv/?recurse')).status, 200);
    const r = await http(agent.url, 'POST', '/api/v1/mesh/ca/leaf', {
      csr: (await makeCsr()).pem,
      service: 'orders',
    });
    assert.equal(r.status, 200, r.text);
  });
});

describe('mesh CA with ACLs', () => {
  // A resolver that lets the token "orders-token" write orders only.
  const acl: AclResolver = {
    enabled: true,
    resolve: (secret) =>
      Promise.resolve({
        accessorId: secret ?? 'anonymous',
        check: (kind, name, access) =>
          secret === 'orders-token' && kind === 'service' && name === 'orders'
            ? { allowed: true }
            : { allowed: false, missing: `${kind}:${name === '' ? '' : `${name} `}${access}` },
      }),
  };
  let agent: TestAgent;
  before(async () => {
    agent = await startTestAgent({ deps: { acl } });
  });
  after(async () => {
    await agent.stop();
  });

  it('signs only for a token that may write the service, 403 naming the permission otherwise', async () => {
    const csr = (await makeCsr()).pem;
    const ok = await http(
      agent.url,
      'POST',
      '/api/v1/mesh/ca/leaf',
      { csr, service: 'orders' },
      {
        'x-consul-token': 'orders-token',
      },
    );
    assert.equal(ok.status, 200, ok.text);
    const bearer = await http(
      agent.url,
      'POST',
      '/api/v1/mesh/ca/leaf',
      { csr, service: 'orders' },
      { authorization: 'Bearer orders-token' },
    );
    assert.equal(bearer.status, 200, bearer.text);
    for (const [service, headers] of [
      ['payments', { 'x-consul-token': 'orders-token' }],
      ['orders', {}],
      ['orders', { 'x-consul-token': 'other' }],
    ] as const) {
      const r = await http(agent.url, 'POST', '/api/v1/mesh/ca/leaf', { csr, service }, headers);
      assert.equal(r.status, 403, r.text);
      assert.equal(r.body.error.code, 'MESHWORK_ERR_ACL_PERMISSION_DENIED');
      assert.match(r.body.error.message, new RegExp(`service:${service} write`));
    }
    const rotate = await http(
      agent.url,
      'POST',
      '/api/v1/mesh/ca/rotate',
      {},
      {
        'x-consul-token': 'orders-token',
      },
    );
    assert.equal(rotate.status, 403, rotate.text);
    assert.match(rotate.body.error.message, /operator/);
  });
});

describe('mesh CA rotation', () => {
  const clock = new FakeClock(Date.now());
  let agent: TestAgent;
  let sub: MeshSubscriber | undefined;
  before(async () => {
    agent = await startTestAgent({ deps: { caClock: clock } });
  });
  after(async () => {
    await sub?.close();
    await agent.stop();
  });

  it('adds a root, keeps the old one for the overlap, removes it after; snapshots follow', async () => {
    const first = (await http<CaRootsResponse>(agent.url, 'GET', '/api/v1/mesh/ca/roots')).body;
    sub = new MeshSubscriber({
      registry: [agent.url],
      proxy: { id: 'orders-1', kind: 'sidecar', name: 'orders', namespace: 'default' },
      apply: () => undefined,
      backoff: { initialMs: 60_000, maxMs: 60_000 },
    });
    assert.equal(await sub.start(), 'agent');
    const subscriber = sub;
    assert.deepEqual(subscriber.current?.ca, {
      trustDomain: 'cluster.local',
      bundlePem: first.bundlePem,
      activeRootId: first.activeRootId,
    });

    const bad = await http(agent.url, 'POST', '/api/v1/mesh/ca/rotate', { overlap: 'soon' });
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.body.error.field, 'overlap');

    const r = await http<CaRootsResponse>(agent.url, 'POST', '/api/v1/mesh/ca/rotate', {
      overlap: '1h',
    });
    assert.equal(r.status, 200, r.text);
    const rotated = r.body;
    assert.notEqual(rotated.activeRootId, first.activeRootId);
    assert.deepEqual(
      rotated.roots.map((x) => [x.id, x.active, x.retiresAt]),
      [
        [rotated.activeRootId, true, undefined],
        [first.activeRootId, false, new Date(clock.now() + HOUR_MS).toISOString()],
      ],
    );
    assert.equal(bundleCertificates(rotated.bundlePem).length, 2);
    await until(
      () => subscriber.current?.ca?.activeRootId === rotated.activeRootId,
      10_000,
      'the snapshot carries the new bundle',
    );
    assert.equal(subscriber.current?.ca?.bundlePem, rotated.bundlePem);

    // New leaves come from the new root.
    const leaf = await http<LeafSignResponse>(agent.url, 'POST', '/api/v1/mesh/ca/leaf', {
      csr: (await makeCsr()).pem,
      service: 'orders',
    });
    assert.equal(leaf.body.rootId, rotated.activeRootId);
    const [newRoot, oldRoot] = bundleCertificates(rotated.bundlePem);
    const cert = new X509Certificate(leaf.body.certPem);
    assert.equal(cert.verify(newRoot?.publicKey ?? assert.fail()), true);
    assert.equal(cert.verify(oldRoot?.publicKey ?? assert.fail()), false);

    // Not before the overlap ends...
    clock.advance(HOUR_MS - 1000);
    const during = (await http<CaRootsResponse>(agent.url, 'GET', '/api/v1/mesh/ca/roots')).body;
    assert.equal(during.roots.length, 2);
    // ...and gone once it has.
    clock.advance(1000);
    await until(
      async () =>
        (await http<CaRootsResponse>(agent.url, 'GET', '/api/v1/mesh/ca/roots')).body.roots
          .length === 1,
      10_000,
      'the old root retired',
    );
    const after = (await http<CaRootsResponse>(agent.url, 'GET', '/api/v1/mesh/ca/roots')).body;
    assert.deepEqual(
      after.roots.map((x) => [x.id, x.active]),
      [[rotated.activeRootId, true]],
    );
    await until(
      () => subscriber.current?.ca?.bundlePem === after.bundlePem,
      10_000,
      'the snapshot carries the bundle without it',
    );
  });
});

describe('mesh CA across restarts (sqlite)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'meshwork-ca-'));
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  it('keeps the root: the same bundle after a restart, leaves still verify', async () => {
    const one = await startTestAgent({ sqlite: true, dataDir });
    const roots = (await http<CaRootsResponse>(one.url, 'GET', '/api/v1/mesh/ca/roots')).body;
    await one.stop();
    const two = await startTestAgent({ sqlite: true, dataDir });
    try {
      const again = (await http<CaRootsResponse>(two.url, 'GET', '/api/v1/mesh/ca/roots')).body;
      assert.deepEqual(again, roots);
      const leaf = await http<LeafSignResponse>(two.url, 'POST', '/api/v1/mesh/ca/leaf', {
        csr: (await makeCsr()).pem,
        service: 'orders',
      });
      assert.equal(leaf.body.rootId, roots.activeRootId);
    } finally {
      await two.stop();
    }
  });
});
