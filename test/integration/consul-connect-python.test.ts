/**
 * Debian's python3-consul2 0.1.5, unmodified, against the Consul Connect intention and
 * authorize endpoints of a real agent on port 0 (test/fixtures/python-consul2-connect.py). The
 * package conflicts with python3-consul, so `npm test` unpacks it into .tools/python3-consul2
 * (scripts/ensure-tools.sh python3-consul2) and it is put on PYTHONPATH here.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { startTestAgent, type TestAgent } from '../helpers/agent.js';
import { runPythonFixture } from '../helpers/python-fixture.js';

const SCRIPT = fileURLToPath(new URL('../fixtures/python-consul2-connect.py', import.meta.url));
const CONSUL2 = fileURLToPath(
  new URL('../../.tools/python3-consul2/usr/lib/python3/dist-packages', import.meta.url),
);

describe('python-consul2 0.1.5 against the Connect intention endpoints', () => {
  let agent: TestAgent;
  let seen: Record<string, unknown>;

  before(async () => {
    assert.ok(
      existsSync(CONSUL2),
      `${CONSUL2} is missing: run bash scripts/ensure-tools.sh python3-consul2 (npm test does)`,
    );
    agent = await startTestAgent();
    const { hostname, port } = new URL(agent.url);
    seen = await runPythonFixture(SCRIPT, [hostname, port], { PYTHONPATH: CONSUL2 });
  });
  after(async () => {
    await agent.stop();
  });

  it('runs the unpacked python-consul2, not the installed python-consul', () => {
    assert.match(String(seen.module), /\.tools\/python3-consul2\//);
  });

  it('creates intentions, refuses a duplicate, and reads one back by ID', () => {
    assert.match(
      String((seen.create_id as { ID: string }).ID),
      /^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$/,
    );
    assert.match(String(seen.duplicate), /409 duplicate intention found: web => db/);
    assert.deepEqual(seen.get, {
      SourceName: 'web',
      DestinationName: 'db',
      Action: 'allow',
      Description: 'web reads db',
      Meta: { team: 'a' },
      Precedence: 9,
      SourceType: 'consul',
    });
    assert.deepEqual(seen.list, [
      ['*', 'db', 'deny'],
      ['web', 'db', 'allow'],
    ]);
  });

  it('decides by precedence: the exact source over the wildcard', () => {
    assert.deepEqual(seen.check_web, { Allowed: true });
    assert.deepEqual(seen.check_api, { Allowed: false });
    assert.deepEqual(seen.match, [
      ['web', 9],
      ['*', 8],
    ]);
    assert.deepEqual(seen.authorize_web, {
      Authorized: true,
      Reason: 'Matched L4 intention: web => db (allow)',
    });
    assert.deepEqual(seen.authorize_api, {
      Authorized: false,
      Reason: 'Matched L4 intention: * => db (deny)',
    });
  });

  it('updates by ID (only the fields sent) and deletes', () => {
    assert.equal(seen.put, true);
    assert.deepEqual(seen.check_web_after_put, { Allowed: false });
    assert.deepEqual(seen.get_after_put, {
      Action: 'deny',
      Description: 'web no longer',
      Meta: { team: 'a' },
    });
    assert.equal(seen.delete, true);
    assert.deepEqual(seen.list_after_delete, [['*', 'db', 'deny']]);
    assert.deepEqual(seen.get_deleted, { index_present: true, data: null });
  });
});
