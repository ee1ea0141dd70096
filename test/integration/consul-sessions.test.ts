/**
 * Consul sessions and KV locks (issue 22) over real HTTP against an in-process agent whose
 * registry runs on a fake clock: TTLs, the 2x grace and lock delays are advanced, not slept.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FakeClock } from '../../src/testing/fake-clock.js';
import { http, startTestAgent, type TestAgent } from '../helpers/agent.js';
import { until } from '../helpers/until.js';

describe('Consul sessions and locks (/v1/session, /v1/kv ?acquire ?release)', () => {
  let agent: TestAgent;
  const clock = new FakeClock();
  const call = (method: string, path: string, body?: unknown) =>
    http(agent.url, method, path, body);
  const create = async (body?: unknown): Promise<string> => {
    const r = await call('PUT', '/v1/session/create', body);
    assert.equal(r.status, 200, r.text);
    assert.match(r.body.ID, /^[0-9a-f-]{36}$/);
    return r.body.ID as string;
  };
  const kv = async (key: string) => (await call('GET', `/v1/kv/${key}`)).body?.[0];
  const gone = (id: string) =>
    until(
      async () =>
        (await call('GET', `/v1/session/info/${id}`)).body.length === 0 ? true : undefined,
      5_000,
      `session ${id} invalidated`,
    );

  before(async () => {
    agent = await startTestAgent({ deps: { registryClock: clock } });
  });
  after(async () => {
    await agent.stop();
  });

  it('creates a session with Consul defaults and answers it from info, node and list', async () => {
    const empty = await http(agent.url, 'PUT', '/v1/session/create', '');
    assert.equal(empty.status, 200, 'an empty body takes every default (python-consul sends one)');
    const id = empty.body.ID as string;
    const info = await call('GET', `/v1/session/info/${id}`);
    assert.equal(info.status, 200);
    assert.ok(Number(info.headers['x-consul-index']) >= 1);
    const [s] = info.body;
    assert.deepEqual(s, {
      ID: id,
      Name: '',
      Node: 'test-node',
      LockDelay: 15e9,
      Behavior: 'release',
      TTL: '',
      NodeChecks: ['serfHealth'],
      ServiceChecks: null,
      CreateIndex: s.CreateIndex,
      ModifyIndex: s.CreateIndex,
    });
    const node = await call('GET', '/v1/session/node/test-node');
    assert.ok(node.body.some((x: { ID: string }) => x.ID === id));
    assert.deepEqual((await call('GET', '/v1/session/node/other-node')).body, []);
    const list = await call('GET', '/v1/session/list');
    assert.ok(list.body.some((x: { ID: string }) => x.ID === id));
    assert.deepEqual((await call('GET', '/v1/session/info/not-a-session')).body, []);
    assert.equal((await call('PUT', `/v1/session/destroy/${id}`)).body, true);
  });

  it('reads lowercase and PascalCase fields, LockDelay as string, ns or seconds', async () => {
    const a = await create({ name: 'lower', lockdelay: '5s', behavior: 'delete', ttl: '20s' });
    const [sa] = (await call('GET', `/v1/session/info/${a}`)).body;
    assert.equal(sa.Name, 'lower');
    assert.equal(sa.LockDelay, 5e9);
    assert.equal(sa.Behavior, 'delete');
    assert.equal(sa.TTL, '20s');
    const b = await create({ Name: 'ns', LockDelay: 2e9 });
    assert.equal((await call('GET', `/v1/session/info/${b}`)).body[0].LockDelay, 2e9);
    const c = await create({ LockDelay: 7 });
    assert.equal((await call('GET', `/v1/session/info/${c}`)).body[0].LockDelay, 7e9);
    for (const id of [a, b, c]) await call('PUT', `/v1/session/destroy/${id}`);
  });

  it('refuses bad bodies with 400 and Consul messages', async () => {
    const cases: [unknown, RegExp][] = [
      [{ TTL: '5s' }, /^Invalid Session TTL '5000000000', must be between \[10s=24h0m0s\]$/],
      [{ TTL: '25h' }, /^Invalid Session TTL/],
      [{ TTL: 'soon' }, /^Session TTL 'soon' invalid/],
      [{ Behavior: 'keep' }, /^Invalid Behavior setting 'keep'$/],
      [{ Node: 'elsewhere' }, /^Node "elsewhere" is not this agent/],
      [{ LockDelay: 'later' }, /LockDelay/],
      [{ Checks: ['no-such-check'] }, /^Missing check 'no-such-check' registration$/],
      [{ ServiceChecks: [{ ID: 'service:nope' }] }, /^Missing check 'service:nope' registration$/],
      [{ Name: 7 }, /Name: must be a string/],
    ];
    for (const [body, message] of cases) {
      const r = await call('PUT', '/v1/session/create', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match(r.text, message, JSON.stringify(body));
    }
  });

  it('locks a key for one session: acquire, re-acquire, release; Session and LockIndex shown', async () => {
    const one = await create();
    const two = await create();
    assert.equal((await call('PUT', `/v1/kv/lock/a?acquire=${one}`, 'first')).body, true);
    let e = await kv('lock/a');
    assert.equal(e.Session, one);
    assert.equal(e.LockIndex, 1);
    assert.equal(Buffer.from(e.Value, 'base64').toString(), 'first');
    assert.equal((await call('PUT', `/v1/kv/lock/a?acquire=${two}`, 'second')).body, false);
    assert.equal((await call('PUT', `/v1/kv/lock/a?acquire=${one}`, 'again')).body, true);
    e = await kv('lock/a');
    assert.equal(e.LockIndex, 1, 'the holder acquiring again is no new acquisition');
    assert.equal(Buffer.from(e.Value, 'base64').toString(), 'again');
    assert.equal((await call('PUT', `/v1/kv/lock/a?release=${two}`, 'x')).body, false);
    assert.equal((await call('PUT', `/v1/kv/lock/a?release=${one}`, 'done')).body, true);
    e = await kv('lock/a');
    assert.equal(e.Session, undefined);
    assert.equal(e.LockIndex, 1);
    assert.equal(Buffer.from(e.Value, 'base64').toString(), 'done');
    assert.equal((await call('PUT', `/v1/kv/lock/a?acquire=${two}`, 'second')).body, true);
    assert.equal((await kv('lock/a')).LockIndex, 2, 'a new holder: the lock index moves');
    const plain = await call('PUT', '/v1/kv/lock/a', 'plain');
    assert.equal(plain.body, true);
    assert.equal((await kv('lock/a')).Session, two, 'a plain put keeps the lock');
    const never = await call('PUT', '/v1/kv/lock/never', 'v');
    assert.equal(never.body, true);
    const fresh = await kv('lock/never');
    assert.equal(fresh.LockIndex, 0);
    assert.equal('Session' in fresh, false);
    assert.equal((await call('DELETE', '/v1/kv/lock/a')).body, true, 'a locked key deletes');
    for (const id of [one, two]) await call('PUT', `/v1/session/destroy/${id}`);
  });

  it('answers an acquire with an unknown session 500 invalid session, as Consul', async () => {
    const r = await call('PUT', '/v1/kv/lock/u?acquire=00000000-0000-0000-0000-00000000dead', 'v');
    assert.equal(r.status, 500);
    assert.equal(r.text, 'invalid session "00000000-0000-0000-0000-00000000dead"');
    const conflicting = await call('PUT', '/v1/kv/lock/u?acquire=a&cas=0', 'v');
    assert.equal(conflicting.status, 400);
    assert.match(conflicting.text, /^Conflicting flags/);
    const missing = await call('PUT', '/v1/kv/lock/u?acquire=', 'v');
    assert.equal(missing.status, 400);
    assert.match(missing.text, /Missing session/);
  });

  it('invalidates a TTL session 2x TTL after its last renew, then holds the lock delay', async () => {
    const holder = await create({ TTL: '10s', LockDelay: '5s' });
    const other = await create();
    assert.equal((await call('PUT', `/v1/kv/lock/ttl?acquire=${holder}`, 'h')).body, true);
    clock.advance(15_000);
    const renewed = await call('PUT', `/v1/session/renew/${holder}`);
    assert.equal(renewed.status, 200);
    assert.equal(renewed.body[0].ID, holder);
    clock.advance(19_000);
    assert.equal((await call('GET', `/v1/session/info/${holder}`)).body.length, 1, 'within 2x TTL');
    clock.advance(1_001);
    await gone(holder);
    const e = await kv('lock/ttl');
    assert.equal(e.Session, undefined, 'behavior release: the key stays, unlocked');
    assert.equal(Buffer.from(e.Value, 'base64').toString(), 'h');
    assert.equal((await call('PUT', `/v1/kv/lock/ttl?acquire=${other}`, 'o')).body, false);
    clock.advance(4_000);
    assert.equal((await call('PUT', `/v1/kv/lock/ttl?acquire=${other}`, 'o')).body, false);
    clock.advance(1_001);
    assert.equal((await call('PUT', `/v1/kv/lock/ttl?acquire=${other}`, 'o')).body, true);
    const renewGone = await call('PUT', `/v1/session/renew/${holder}`);
    assert.equal(renewGone.status, 404);
    assert.equal(renewGone.text, `Session id '${holder}' not found`);
    await call('PUT', `/v1/session/destroy/${other}`);
  });

  it('deletes the keys of a behavior delete session on destroy', async () => {
    const eph = await create({ Behavior: 'delete', LockDelay: '0s' });
    assert.equal((await call('PUT', `/v1/kv/eph/a?acquire=${eph}`, 'x')).body, true);
    assert.equal((await call('PUT', `/v1/session/destroy/${eph}`)).body, true);
    assert.equal((await call('GET', '/v1/kv/eph/a')).status, 404);
    assert.equal((await call('PUT', `/v1/session/destroy/${eph}`)).body, true, 'again: true');
  });

  it('invalidates a session when a bound service check turns critical', async () => {
    const reg = await call('PUT', '/v1/agent/service/register', {
      Name: 'locker',
      ID: 'locker-1',
      Check: { CheckID: 'locker-ttl', TTL: '30s' },
    });
    assert.equal(reg.status, 200, reg.text);
    const critical = await call('PUT', '/v1/session/create', {
      ServiceChecks: [{ ID: 'locker-ttl' }],
    });
    assert.equal(critical.status, 400, 'a fresh TTL check is critical: not bindable');
    assert.equal(critical.text, "Check 'locker-ttl' is in critical state");
    assert.equal((await call('PUT', '/v1/agent/check/pass/locker-ttl')).status, 200);
    const id = await create({ ServiceChecks: [{ ID: 'locker-ttl' }], LockDelay: 0 });
    const [s] = (await call('GET', `/v1/session/info/${id}`)).body;
    assert.deepEqual(s.NodeChecks, []);
    assert.deepEqual(s.ServiceChecks, [{ ID: 'locker-ttl', Namespace: '' }]);
    assert.equal((await call('PUT', `/v1/kv/svc/lock?acquire=${id}`, 'v')).body, true);
    assert.equal((await call('PUT', '/v1/agent/check/fail/locker-ttl')).status, 200);
    await gone(id);
    assert.equal((await kv('svc/lock')).Session, undefined);
  });

  it('invalidates a session when a bound node check is deregistered', async () => {
    const reg = await call('PUT', '/v1/agent/check/register', {
      Name: 'disk',
      CheckID: 'disk',
      TTL: '30s',
    });
    assert.equal(reg.status, 200, reg.text);
    assert.equal((await call('PUT', '/v1/agent/check/pass/disk')).status, 200);
    const id = await create({ Checks: ['serfHealth', 'disk'], LockDelay: 0 });
    const [s] = (await call('GET', `/v1/session/info/${id}`)).body;
    assert.deepEqual(s.NodeChecks, ['serfHealth', 'disk']);
    assert.equal(s.ServiceChecks, null);
    assert.equal((await call('PUT', `/v1/kv/node/lock?acquire=${id}`, 'v')).body, true);
    assert.equal((await call('PUT', '/v1/agent/check/deregister/disk')).status, 200);
    await gone(id);
    assert.equal((await kv('node/lock')).Session, undefined);
  });

  it('wakes a blocking session list when a session is created', async () => {
    const first = await call('GET', '/v1/session/list');
    const index = Number(first.headers['x-consul-index']);
    const waiting = call('GET', `/v1/session/list?index=${index}&wait=30s`);
    const id = await create({ Name: 'wake' });
    const woke = await waiting;
    assert.ok(Number(woke.headers['x-consul-index']) > index);
    assert.ok(woke.body.some((x: { ID: string }) => x.ID === id));
    await call('PUT', `/v1/session/destroy/${id}`);
  });
});
