/**
 * Debian's python3-consul 0.7.1, unmodified, taking and losing a lock through the Consul API
 * (test/fixtures/python-consul-sessions.py). The agent's registry runs on a fake clock: the
 * script pauses between phases while the test moves time past the TTL's 2x grace and the lock
 * delay, so nothing sleeps.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { FakeClock } from '../../src/testing/fake-clock.js';
import { http, startTestAgent, type TestAgent } from '../helpers/agent.js';
import { DEBIAN_PYTHON, pythonEnv } from '../helpers/python-fixture.js';
import { until } from '../helpers/until.js';

const SCRIPT = fileURLToPath(new URL('../fixtures/python-consul-sessions.py', import.meta.url));

describe('python-consul 0.7.1 sessions and locks', () => {
  let agent: TestAgent;
  let py: ChildProcessWithoutNullStreams;
  const clock = new FakeClock();
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the script's JSON
  const phases: Record<string, any>[] = [];

  before(async () => {
    agent = await startTestAgent({ deps: { registryClock: clock } });
    const { hostname, port } = new URL(agent.url);
    py = spawn(DEBIAN_PYTHON, [SCRIPT, hostname, port, 'test-node'], {
      env: pythonEnv(),
    });
    let stderr = '';
    py.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const lines = createInterface({ input: py.stdout })[Symbol.asyncIterator]();
    const next = async () => {
      const line = await Promise.race([
        lines.next(),
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error(`python-consul script stalled:\n${stderr}`)), 30_000),
        ),
      ]);
      if (line.done === true) throw new Error(`python-consul script ended early:\n${stderr}`);
      phases.push(JSON.parse(line.value) as Record<string, unknown>);
    };
    await next();
    const holder = phases[0]?.holder as string;
    // Past twice the 10 s TTL without a renew: the registry invalidates the session.
    clock.advance(20_001);
    await until(
      async () =>
        (await http(agent.url, 'GET', `/v1/session/info/${holder}`)).body.length === 0 || undefined,
      5_000,
      'holder session invalidated',
    );
    py.stdin.write('go\n');
    await next();
    clock.advance(5_001); // past the 5 s lock delay
    py.stdin.write('go\n');
    await next();
  });
  after(async () => {
    py?.kill();
    await agent?.stop();
  });

  it('lets one of two contenders take the lock; the other gets False', () => {
    const [p] = phases;
    assert.equal(p?.holder_acquires, true);
    assert.equal(p?.contender_acquires, false);
    assert.equal(p?.value, 'holder');
    assert.equal(p?.session, p?.holder);
    assert.equal(p?.lock_index, 1);
  });

  it('reads the sessions back through info, node and list', () => {
    const [p] = phases;
    assert.deepEqual(p?.info, {
      ID: p?.holder,
      Name: 'holder',
      Node: 'test-node',
      TTL: '10s',
      Behavior: 'release',
      LockDelay: 5e9,
    });
    assert.deepEqual(p?.node_sessions, ['contender', 'holder']);
    assert.deepEqual(p?.list_sessions, ['contender', 'holder']);
    assert.equal(p?.list_index_is_digits, true);
  });

  it("releases the holder's lock when its TTL lapses, and holds the lock delay", () => {
    const p = phases[1];
    assert.equal(p?.holder_info, null);
    assert.equal(p?.session_after_lapse, null);
    assert.equal(p?.value_after_lapse, 'holder');
    assert.equal(p?.contender_during_delay, false);
    assert.equal(p?.renew_lapsed, 'NotFound');
  });

  it('lets the other contender acquire after the lock delay', () => {
    const p = phases[2];
    assert.equal(p?.contender_after_delay, true);
    assert.equal(p?.session_now, phases[0]?.contender);
    assert.equal(p?.lock_index_now, 2);
    assert.equal(p?.renew, phases[0]?.contender);
    assert.equal(p?.release, true);
  });

  it('deletes the key of a behavior=delete session when it is destroyed', () => {
    const p = phases[2];
    assert.equal(p?.eph_acquires, true);
    assert.equal(p?.eph_destroy, true);
    assert.equal(p?.eph_key_after, null);
    assert.equal(p?.contender_destroy, true);
    assert.deepEqual(p?.left, []);
  });
});
