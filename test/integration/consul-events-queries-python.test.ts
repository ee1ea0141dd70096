/**
 * Debian's python3-consul 0.7.1, unmodified, against /v1/event and /v1/query of a real agent on
 * port 0 (test/fixtures/python-consul-events-queries.py; issue 22). 0.7.1 has no txn method.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { startTestAgent, type TestAgent } from '../helpers/agent.js';
import { runPythonFixture } from '../helpers/python-fixture.js';

const SCRIPT = fileURLToPath(
  new URL('../fixtures/python-consul-events-queries.py', import.meta.url),
);

describe('python-consul 0.7.1: events and prepared queries', () => {
  let agent: TestAgent;
  let seen: Record<string, unknown>;

  before(async () => {
    agent = await startTestAgent();
    const { hostname, port } = new URL(agent.url);
    seen = await runPythonFixture(SCRIPT, [hostname, port]);
  });
  after(() => agent.stop());

  it('fires events and lists them, blocking on the index it was given', () => {
    assert.equal(seen.fire_name, 'py-deploy');
    assert.equal(seen.fire_node_filter, '.*');
    assert.deepEqual(seen.list_payloads, ['build-42']);
    assert.equal(seen.list_index_is_digits, true);
    assert.deepEqual(seen.list_after_second, ['build-42', 'build-43']);
    assert.equal(seen.index_moved, true);
  });

  it('creates, reads, executes, explains, updates and deletes a prepared query', () => {
    assert.equal(seen.query_get_name, 'py-pq-query');
    assert.deepEqual(seen.query_list, [true]);
    assert.deepEqual(seen.execute_ids, ['py-pq-1']);
    assert.equal(seen.execute_ttl, '5s');
    assert.equal(seen.explain_service, 'py-pq');
    assert.equal(seen.update, true);
    assert.equal(seen.execute_after_update, 0);
    assert.equal(seen.delete, true);
    assert.deepEqual(seen.list_after_delete, []);
  });
});
