/**
 * Debian's python3-consul 0.7.1, unmodified, against the Consul API of a real agent on port 0
 * (test/fixtures/python-consul-tour.py). `npm test` installs the package when missing
 * (scripts/ensure-tools.sh python3-consul).
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { startTestAgent, type TestAgent } from '../helpers/agent.js';
import { runPythonFixture } from '../helpers/python-fixture.js';

const SCRIPT = fileURLToPath(new URL('../fixtures/python-consul-tour.py', import.meta.url));
describe('python-consul 0.7.1 against the Consul API', () => {
  let agent: TestAgent;
  let target: Server;
  let seen: Record<string, unknown>;

  before(async () => {
    agent = await startTestAgent();
    target = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    const { port: targetPort } = target.address() as AddressInfo;
    const { hostname, port } = new URL(agent.url);
    seen = await runPythonFixture(SCRIPT, [
      hostname,
      port,
      `http://127.0.0.1:${targetPort}/health`,
      'test-node',
    ]);
  });
  after(async () => {
    await agent.stop();
    await new Promise((r) => target.close(r));
  });

  it('registers services with HTTP and TTL checks', () => {
    assert.equal(seen.register_http, true);
    assert.equal(seen.register_ttl, true);
  });

  it('keeps a fresh TTL check critical until ttl_pass (sent as GET) and records the note', () => {
    assert.equal(seen.ttl_passing_before, 0);
    assert.equal(seen.index_is_digits, true);
    assert.equal(seen.ttl_pass, true);
    assert.deepEqual(seen.ttl_passing_after, ['py-ttl-1']);
    assert.deepEqual(seen.ttl_output, ['all good']);
  });

  it('sees the HTTP-checked instance pass through blocking queries, and filters by tag', () => {
    assert.deepEqual(seen.http_passing, [{ host: '127.0.0.1', port: 8080 }]);
    assert.equal(seen.tag_match, 1);
    assert.equal(seen.tag_miss, 0);
  });

  it('reads the catalog, health and agent endpoints', () => {
    assert.deepEqual(seen.catalog_services, {
      consul: [],
      'py-ttl': [],
      'py-web': ['primary', 'v1'],
    });
    assert.deepEqual(seen.catalog_service, [['py-web-1', 8080, 'test-node']]);
    assert.deepEqual(seen.catalog_nodes, ['test-node']);
    assert.deepEqual(seen.catalog_node_services, ['py-ttl-1', 'py-web-1']);
    assert.deepEqual(seen.datacenters, ['dc1']);
    assert.deepEqual(seen.health_checks, [['service:py-web-1', 'http']]);
    assert.deepEqual(seen.critical_checks, []);
    assert.deepEqual(seen.node_checks, ['serfHealth', 'service:py-ttl-1', 'service:py-web-1']);
    assert.deepEqual(seen.agent_services, ['py-ttl-1', 'py-web-1']);
    assert.deepEqual(seen.agent_checks, ['service:py-ttl-1', 'service:py-web-1']);
    assert.equal(seen.agent_self_node, 'test-node');
    assert.deepEqual(seen.members, ['test-node']);
    assert.equal(seen.leader, '127.0.0.1:8300');
  });

  it('puts a service in maintenance (out of ?passing, with the reason as Notes) and back', () => {
    assert.equal(seen.maintenance_on, true);
    assert.equal(seen.passing_in_maintenance, 0);
    assert.deepEqual(seen.maintenance_notes, ['deploying']);
    assert.equal(seen.maintenance_off, true);
    assert.equal(seen.node_check_register, true);
    assert.equal(seen.passing_node_check_critical, 0, 'a new node check is critical');
    assert.equal(seen.node_check_pass, true);
    assert.equal(seen.passing_node_check_passing, 1);
    assert.equal(seen.node_check_in_agent_checks, '');
    assert.equal(seen.node_check_deregister, true);
  });

  it('uses KV: put, get, cas, flags, keys with a separator, recurse, delete', () => {
    assert.equal(seen.kv_put, true);
    assert.equal(seen.kv_get, 'v1');
    assert.equal(seen.kv_cas_wrong, false);
    assert.equal(seen.kv_cas_right, true);
    assert.equal(seen.kv_put_flags, true);
    assert.deepEqual(seen.kv_keys, ['py/app/']);
    assert.deepEqual(seen.kv_recurse, [
      ['py/app/config', 'v2', 0],
      ['py/app/other', 'x', 42],
    ]);
    assert.equal(seen.kv_delete, true);
    assert.equal(seen.kv_after_delete, null);
    assert.equal(seen.kv_delete_recurse, true);
  });

  it('deregisters with GET as 0.7.1 sends it; an unknown id answers False', () => {
    assert.equal(seen.deregister, true);
    assert.equal(seen.deregister_unknown, false);
    assert.equal(seen.after_deregister, 0);
    assert.equal(seen.deregister_web, true);
  });
});
