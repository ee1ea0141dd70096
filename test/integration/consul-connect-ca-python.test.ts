/**
 * Debian's python3-consul2 0.1.5, unmodified, against the Connect CA endpoints of a real agent
 * (issue 20; test/fixtures/python-consul2-connect-ca.py). It conflicts with python3-consul,
 * which other tests use, so `npm test` unpacks it into .tools/python3-consul2
 * (scripts/ensure-tools.sh python3-consul2) and it is put on PYTHONPATH here. Its
 * `leaf_certificates` builds the path without `/v1` (docs/consul-compatibility.md): the test
 * records the 404 and reads the leaf through the client's HTTP layer on the right path.
 */
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { startTestAgent, type TestAgent } from '../helpers/agent.js';
import { runPythonFixture } from '../helpers/python-fixture.js';

const SCRIPT = fileURLToPath(new URL('../fixtures/python-consul2-connect-ca.py', import.meta.url));
const CONSUL2 = fileURLToPath(
  new URL('../../.tools/python3-consul2/usr/lib/python3/dist-packages', import.meta.url),
);
describe('python-consul2 0.1.5 against the Connect CA endpoints', () => {
  let agent: TestAgent;
  let seen: Record<string, string | string[]>;

  before(async () => {
    assert.ok(
      existsSync(CONSUL2),
      `${CONSUL2} is missing: run bash scripts/ensure-tools.sh python3-consul2 (npm test does)`,
    );
    agent = await startTestAgent({ flags: { trustDomain: 'example.org' } });
    const { hostname, port } = new URL(agent.url);
    seen = (await runPythonFixture(SCRIPT, [hostname, port], { PYTHONPATH: CONSUL2 })) as Record<
      string,
      string | string[]
    >;
  });
  after(async () => {
    await agent.stop();
  });

  it('reads the roots with root_certificates()', () => {
    assert.equal(seen.roots_trust_domain, 'example.org');
    assert.deepEqual(seen.roots_ids, [seen.roots_active]);
    assert.equal(new X509Certificate(String(seen.root_cert)).ca, true);
  });

  it('gets (None, None) from leaf_certificates() (its path lacks /v1: a 404), and the leaf on the right path', () => {
    assert.equal(seen.leaf_method, '(None, None)');
    assert.equal(seen.leaf_service, 'orders');
    assert.equal(seen.leaf_uri, 'spiffe://example.org/ns/default/sa/orders');
    const leaf = new X509Certificate(String(seen.leaf_cert));
    assert.equal(leaf.verify(new X509Certificate(String(seen.root_cert)).publicKey), true);
    assert.ok(createPublicKey(createPrivateKey(String(seen.leaf_key))).equals(leaf.publicKey));
  });
});
