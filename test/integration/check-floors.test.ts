/**
 * Floors on check durations and the cap on checks per instance, through both APIs of a real agent
 * on port 0 (issue 16: `"interval": 1` or `"Interval": "1ms"` made the agent probe a URL 800 times
 * a second; `"interval": 0` was taken and never ran; `ttl: 5` meant 5 ms).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { http, startTestAgent, type TestAgent } from '../helpers/agent.js';

const instance = (checks: unknown[]) => ({
  service: 'floored',
  id: 'floored-1',
  address: '127.0.0.1',
  port: 1,
  checks,
});

describe('check floors (default agent options)', () => {
  let agent: TestAgent;
  before(async () => {
    agent = await startTestAgent();
  });
  after(async () => {
    await agent.stop();
  });

  it('refuses native durations below their floor with 400 naming the field and the unit', async () => {
    const cases: [unknown, string, RegExp][] = [
      [{ http: 'http://127.0.0.1:1/', interval: 1 }, 'checks[0].interval', /at least 1000 ms/],
      [{ http: 'http://127.0.0.1:1/', interval: 0 }, 'checks[0].interval', /got 0 ms/],
      [{ tcp: '127.0.0.1:1', intervalMs: '1ms' }, 'checks[0].intervalMs', /at least 1000 ms/],
      [{ ttl: 5 }, 'checks[0].ttl', /a bare number is milliseconds, write "5s"/],
      [{ http: 'http://127.0.0.1:1/', timeout: '10ms' }, 'checks[0].timeout', /at least 100 ms/],
      [
        { ttl: '10s', deregisterCriticalAfter: '10s' },
        'checks[0].deregisterCriticalAfter',
        /0 \(never\) or at least 60000 ms/,
      ],
    ];
    for (const [check, field, message] of cases) {
      const r = await http(agent.url, 'PUT', '/api/v1/instances', instance([check]));
      assert.equal(r.status, 400, `${JSON.stringify(check)}: ${r.text}`);
      assert.equal(r.body.error.code, 'MESHWORK_ERR_API_VALIDATION');
      assert.equal(r.body.error.field, field);
      assert.match(r.body.error.message, message);
    }
    const none = await http(agent.url, 'GET', '/api/v1/services/floored/instances');
    assert.deepEqual(none.body.instances, []);
    const ok = await http(
      agent.url,
      'PUT',
      '/api/v1/instances',
      instance([
        { ttl: '1s', deregisterCriticalAfter: 0 },
        { tcp: '127.0.0.1:1', interval: '1s' },
      ]),
    );
    assert.equal(ok.status, 200, ok.text);
  });

  it('refuses a duration below its floor in a declarative apply, naming the entry', async () => {
    const r = await http(agent.url, 'PUT', '/api/v1/apply', {
      set: 'floors',
      instances: [instance([{ http: 'http://127.0.0.1:1/', interval: 1 }])],
    });
    assert.equal(r.status, 400, r.text);
    assert.equal(r.body.error.field, 'instances[0].checks[0].interval');
  });

  it('raises Consul durations below their floor, as Consul does, and counts them', async () => {
    const r = await http(agent.url, 'PUT', '/v1/agent/service/register', {
      Name: 'consul-floored',
      ID: 'consul-floored-1',
      Port: 1,
      Checks: [
        { CheckID: 'fast-http', HTTP: 'http://127.0.0.1:1/', Interval: '1ms', Timeout: '1ms' },
        { CheckID: 'fast-ttl', TTL: '5ms' },
      ],
    });
    assert.equal(r.status, 200, r.text);
    const checks = await http(agent.url, 'GET', '/v1/agent/checks');
    assert.equal(checks.body['fast-http'].Interval, '1s');
    assert.equal(checks.body['fast-http'].Timeout, '100ms');
    const stored = agent.registry.getInstance('consul-floored-1').instance.checks;
    assert.equal(stored.find((c) => c.id === 'fast-ttl')?.ttlMs, 1000);
    const node = await http(agent.url, 'PUT', '/v1/agent/check/register', {
      Name: 'node-fast',
      TCP: '127.0.0.1:1',
      Interval: '10ms',
    });
    assert.equal(node.status, 200, node.text);
    const metrics = (await http(agent.url, 'GET', '/metrics')).text;
    assert.match(metrics, /meshwork_consul_check_floor_raises_total\{field="Interval"\} 2/);
    assert.match(metrics, /meshwork_consul_check_floor_raises_total\{field="Timeout"\} 1/);
    assert.match(metrics, /meshwork_consul_check_floor_raises_total\{field="TTL"\} 1/);
  });

  it('still refuses a Consul Interval of 0', async () => {
    const r = await http(agent.url, 'PUT', '/v1/agent/check/register', {
      Name: 'never',
      TCP: '127.0.0.1:1',
      Interval: '0s',
    });
    assert.equal(r.status, 400);
    assert.match(r.text, /Interval must be > 0/);
  });
});

describe('check floors and cap set by agent options', () => {
  let agent: TestAgent;
  before(async () => {
    agent = await startTestAgent({
      flags: { checks: { minIntervalMs: 5_000, maxPerInstance: 2 } },
    });
  });
  after(async () => {
    await agent.stop();
  });

  it('uses the configured floor in both APIs', async () => {
    const r = await http(
      agent.url,
      'PUT',
      '/api/v1/instances',
      instance([{ tcp: '127.0.0.1:1', interval: '2s' }]),
    );
    assert.equal(r.status, 400, r.text);
    assert.match(r.body.error.message, /at least 5000 ms \("5s"\)/);
    const c = await http(agent.url, 'PUT', '/v1/agent/check/register', {
      Name: 'slow',
      CheckID: 'slow',
      TCP: '127.0.0.1:1',
      Interval: '2s',
    });
    assert.equal(c.status, 200, c.text);
    assert.equal((await http(agent.url, 'GET', '/v1/agent/checks')).body.slow.Interval, '5s');
  });

  it('caps the checks of one instance, and of the node, in both APIs', async () => {
    const ttl = (id: string) => ({ id, ttl: '10s' });
    const three = await http(
      agent.url,
      'PUT',
      '/api/v1/instances',
      instance([ttl('a'), ttl('b'), ttl('c')]),
    );
    assert.equal(three.status, 400, three.text);
    assert.match(three.body.error.message, /at most 2 checks per instance/);
    const two = await http(agent.url, 'PUT', '/api/v1/instances', instance([ttl('a'), ttl('b')]));
    assert.equal(two.status, 200, two.text);
    const more = await http(agent.url, 'PUT', '/v1/agent/check/register', {
      Name: 'third',
      ServiceID: 'floored-1',
      TTL: '10s',
    });
    assert.equal(more.status, 400);
    assert.match(more.text, /at most 2 checks per service/);
    // The node has one check (`slow`, above); a second is taken, a third is not.
    const second = await http(agent.url, 'PUT', '/v1/agent/check/register', {
      Name: 'node-2',
      TTL: '10s',
    });
    assert.equal(second.status, 200, second.text);
    const third = await http(agent.url, 'PUT', '/v1/agent/check/register', {
      Name: 'node-3',
      TTL: '10s',
    });
    assert.equal(third.status, 400);
    assert.match(third.text, /at most 2 checks per node/);
  });
});
