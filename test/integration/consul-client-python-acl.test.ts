/**
 * Registry ACLs through Debian's python-consul 0.7.1, unmodified (test/fixtures/python-consul-acl.py):
 * its legacy ACL calls (create, info, list, update, clone, destroy), tokens sent as ?token=, and
 * ACLPermissionDenied where a token lacks a right. `npm test` installs the package when missing.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { http, startTestAgent, type TestAgent } from '../helpers/agent.js';
import { runPythonFixture } from '../helpers/python-fixture.js';

const SCRIPT = fileURLToPath(new URL('../fixtures/python-consul-acl.py', import.meta.url));
/** The caller's environment without CONSUL_HTTP_*: python-consul 0.7 lets them override its arguments. */
describe('python-consul 0.7.1 ACL calls', () => {
  let agent: TestAgent;
  let seen: Record<string, unknown>;

  before(async () => {
    agent = await startTestAgent({ flags: { acl: { enabled: true, defaultPolicy: 'deny' } } });
    const boot = await http(agent.url, 'PUT', '/v1/acl/bootstrap');
    const { hostname, port } = new URL(agent.url);
    seen = await runPythonFixture(SCRIPT, [hostname, port, boot.body.SecretID as string]);
  });
  after(async () => {
    await agent.stop();
  });

  it('creates, reads and lists legacy tokens', () => {
    assert.equal(seen.created_is_str, true);
    assert.deepEqual(seen.info, {
      Name: 'py-web token',
      Type: 'client',
      Rules: 'service "py-web" { policy = "write" }\nkey "py/" { policy = "write" }',
    });
    assert.equal(seen.listed, true);
    assert.equal(seen.info_missing, null);
  });

  it('lets a token do what its rules allow and raises ACLPermissionDenied for the rest', () => {
    assert.equal(seen.register_own, true);
    assert.equal(
      seen.register_other,
      "denied: Permission denied: token lacks permission 'service:py-db write'",
    );
    assert.equal(seen.kv_own, true);
    assert.equal(
      seen.kv_other,
      "denied: Permission denied: token lacks permission 'key:other/config write'",
    );
    assert.equal(
      seen.list_as_client,
      "denied: Permission denied: token lacks permission 'acl read'",
    );
    assert.equal(
      seen.anonymous_kv,
      "denied: Permission denied: token lacks permission 'key:py/config write'",
    );
    assert.deepEqual(seen.anonymous_services, []);
  });

  it('updates, clones and destroys tokens, the update taking effect at once', () => {
    assert.equal(seen.updated, true);
    assert.equal(seen.info_after_update, 'renamed');
    assert.equal(
      seen.register_after_update,
      "denied: Permission denied: token lacks permission 'service:py-web write'",
    );
    assert.equal(seen.clone_differs, true);
    assert.equal(seen.destroyed, true);
    assert.equal(seen.info_after_destroy, null);
  });
});
