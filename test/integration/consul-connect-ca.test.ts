/**
 * Consul Connect's CA endpoints on a real agent (issue 20): `/v1/agent/connect/ca/roots` and
 * `/v1/agent/connect/ca/leaf/:service` in Consul's shapes over the mesh CA, the leaf cached per
 * service, both blocking on `?index=` until a rotation, and the leaf behind the ACL check.
 */
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { AclResolver } from '../../src/registry/acl/acl-contract.js';
import { http, startTestAgent, type TestAgent } from '../helpers/agent.js';

interface ConsulRoots {
  ActiveRootID: string;
  TrustDomain: string;
  Roots: { ID: string; RootCert: string; Active: boolean; Name: string; SigningKeyID: string }[];
}

interface ConsulLeaf {
  SerialNumber: string;
  CertPEM: string;
  PrivateKeyPEM: string;
  Service: string;
  ServiceURI: string;
  ValidAfter: string;
  ValidBefore: string;
  ModifyIndex: number;
}

describe('Consul Connect CA endpoints', () => {
  let agent: TestAgent;
  before(async () => {
    agent = await startTestAgent({ flags: { trustDomain: 'example.org' } });
  });
  after(async () => {
    await agent.stop();
  });

  it('lists the roots in Consul shape, the active one named by ActiveRootID', async () => {
    const r = await http<ConsulRoots>(agent.url, 'GET', '/v1/agent/connect/ca/roots');
    assert.equal(r.status, 200, r.text);
    assert.match(String(r.headers['x-consul-index']), /^\d+$/);
    assert.equal(r.body.TrustDomain, 'example.org');
    assert.equal(r.body.Roots.length, 1);
    const [root] = r.body.Roots;
    assert.equal(root?.Active, true);
    assert.equal(root?.ID, r.body.ActiveRootID);
    assert.match(root?.ID ?? '', /^([0-9a-f]{2}:){19}[0-9a-f]{2}$/);
    const native = await http(agent.url, 'GET', '/api/v1/mesh/ca/roots');
    assert.equal(root?.RootCert, native.body.bundlePem);
  });

  it('gives a service its leaf and key, the same one until it changes', async () => {
    const r = await http<ConsulLeaf>(agent.url, 'GET', '/v1/agent/connect/ca/leaf/orders');
    assert.equal(r.status, 200, r.text);
    const leaf = new X509Certificate(r.body.CertPEM);
    const roots = await http<ConsulRoots>(agent.url, 'GET', '/v1/agent/connect/ca/roots');
    assert.equal(
      leaf.verify(new X509Certificate(roots.body.Roots[0]?.RootCert ?? '').publicKey),
      true,
    );
    assert.equal(r.body.Service, 'orders');
    assert.equal(r.body.ServiceURI, 'spiffe://example.org/ns/default/sa/orders');
    assert.equal(leaf.subjectAltName, `URI:${r.body.ServiceURI}`);
    assert.equal(r.body.SerialNumber.replaceAll(':', '').toUpperCase(), leaf.serialNumber);
    assert.equal(Date.parse(r.body.ValidBefore), Date.parse(leaf.validTo));
    // The key is the leaf's.
    const fromKey = createPublicKey(createPrivateKey(r.body.PrivateKeyPEM));
    assert.ok(fromKey.equals(leaf.publicKey));
    const again = await http<ConsulLeaf>(agent.url, 'GET', '/v1/agent/connect/ca/leaf/orders');
    assert.equal(again.body.CertPEM, r.body.CertPEM);
    assert.equal(again.headers['x-consul-index'], r.headers['x-consul-index']);
    const bad = await http(agent.url, 'GET', '/v1/agent/connect/ca/leaf/Not_A_Service');
    assert.equal(bad.status, 400, bad.text);
  });

  it('blocks on ?index= until the wait ends, or until a rotation brings a new root and leaf', async () => {
    const leaf = await http<ConsulLeaf>(agent.url, 'GET', '/v1/agent/connect/ca/leaf/orders');
    const leafIndex = String(leaf.headers['x-consul-index']);
    const t0 = Date.now();
    const timedOut = await http<ConsulLeaf>(
      agent.url,
      'GET',
      `/v1/agent/connect/ca/leaf/orders?index=${leafIndex}&wait=1s`,
    );
    assert.ok(Date.now() - t0 >= 900, 'it waited');
    assert.equal(timedOut.headers['x-consul-index'], leafIndex);
    assert.equal(timedOut.body.CertPEM, leaf.body.CertPEM);

    const roots = await http<ConsulRoots>(agent.url, 'GET', '/v1/agent/connect/ca/roots');
    const rootsIndex = String(roots.headers['x-consul-index']);
    const blockedLeaf = http<ConsulLeaf>(
      agent.url,
      'GET',
      `/v1/agent/connect/ca/leaf/orders?index=${leafIndex}&wait=60s`,
    );
    const blockedRoots = http<ConsulRoots>(
      agent.url,
      'GET',
      `/v1/agent/connect/ca/roots?index=${rootsIndex}&wait=60s`,
    );
    const rotated = await http(agent.url, 'POST', '/api/v1/mesh/ca/rotate', { overlap: '1h' });
    assert.equal(rotated.status, 200, rotated.text);
    const [newLeaf, newRoots] = await Promise.all([blockedLeaf, blockedRoots]);
    assert.notEqual(newRoots.headers['x-consul-index'], rootsIndex);
    assert.equal(newRoots.body.Roots.length, 2);
    const active = newRoots.body.Roots.find((x) => x.Active);
    assert.equal(active?.ID, newRoots.body.ActiveRootID);
    assert.notEqual(newLeaf.headers['x-consul-index'], leafIndex);
    assert.notEqual(newLeaf.body.CertPEM, leaf.body.CertPEM);
    assert.equal(
      new X509Certificate(newLeaf.body.CertPEM).verify(
        new X509Certificate(active?.RootCert ?? '').publicKey,
      ),
      true,
    );
  });
});

describe('Consul Connect CA leaf with ACLs', () => {
  const acl: AclResolver = {
    enabled: true,
    resolve: (secret) =>
      Promise.resolve({
        accessorId: 'test',
        check: (kind, name) =>
          secret === 'orders-token' && kind === 'service' && name === 'orders'
            ? { allowed: true }
            : { allowed: false, missing: `${kind}:${name} write` },
      }),
  };
  let agent: TestAgent;
  before(async () => {
    agent = await startTestAgent({ deps: { acl } });
  });
  after(async () => {
    await agent.stop();
  });

  it("gives a leaf (and its key) only to a token that may write the service, 403 in Consul's text otherwise", async () => {
    const ok = await http(agent.url, 'GET', '/v1/agent/connect/ca/leaf/orders?token=orders-token');
    assert.equal(ok.status, 200, ok.text);
    for (const [path, headers] of [
      ['/v1/agent/connect/ca/leaf/payments', { 'x-consul-token': 'orders-token' }],
      ['/v1/agent/connect/ca/leaf/orders', {}],
    ] as const) {
      const r = await http(agent.url, 'GET', path, undefined, headers);
      assert.equal(r.status, 403, r.text);
      assert.match(String(r.headers['content-type']), /^text\/plain/);
      assert.match(r.text, /permission denied: missing service:\w+ write/);
      assert.doesNotMatch(r.text, /PRIVATE KEY/);
    }
    // Roots need no token.
    assert.equal((await http(agent.url, 'GET', '/v1/agent/connect/ca/roots')).status, 200);
  });
});
