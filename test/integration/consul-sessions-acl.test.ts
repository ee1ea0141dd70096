/**
 * Session ACLs (issue 22): with `--acl-default-policy deny`, `session:<node>` rules govern
 * /v1/session as in Consul (write: create, destroy, renew; read: info, node, list filtered),
 * and KV acquire / release take `key:<key> write`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { http, startTestAgent, type TestAgent } from '../helpers/agent.js';

describe('session ACLs (--acl-default-policy deny)', () => {
  let agent: TestAgent;
  let management: string;
  const tokens: Record<string, string> = {};
  const as = (who: string | undefined, method: string, path: string, body?: unknown) =>
    http(agent.url, method, path, body, who === undefined ? {} : { 'x-consul-token': who });

  before(async () => {
    agent = await startTestAgent({ flags: { acl: { enabled: true, defaultPolicy: 'deny' } } });
    const boot = await http(agent.url, 'PUT', '/v1/acl/bootstrap');
    management = boot.body.SecretID as string;
    for (const [name, rules] of [
      [
        'locker',
        'session "test-node" { policy = "write" }\nkey_prefix "locks/" { policy = "write" }',
      ],
      ['watcher', 'session_prefix "" { policy = "read" }'],
      ['keys-only', 'key_prefix "locks/" { policy = "write" }'],
    ] as const) {
      const p = await as(management, 'PUT', '/v1/acl/policy', { Name: name, Rules: rules });
      assert.equal(p.status, 200, p.text);
      const t = await as(management, 'PUT', '/v1/acl/token', { Policies: [{ Name: name }] });
      tokens[name] = t.body.SecretID as string;
    }
  });
  after(async () => {
    await agent.stop();
  });

  it('takes session:<node> write to create, destroy and renew', async () => {
    for (const who of [undefined, tokens.watcher, tokens['keys-only']]) {
      const r = await as(who, 'PUT', '/v1/session/create', {});
      assert.equal(r.status, 403, r.text);
      assert.match(r.text, /session:test-node write/);
    }
    const created = await as(tokens.locker, 'PUT', '/v1/session/create', {});
    assert.equal(created.status, 200, created.text);
    const id = created.body.ID as string;
    assert.equal((await as(tokens.watcher, 'PUT', `/v1/session/renew/${id}`)).status, 403);
    assert.equal((await as(tokens.watcher, 'PUT', `/v1/session/destroy/${id}`)).status, 403);
    assert.equal((await as(tokens.locker, 'PUT', `/v1/session/renew/${id}`)).status, 200);
    assert.equal((await as(tokens.locker, 'PUT', `/v1/session/destroy/${id}`)).body, true);
  });

  it('filters info, node and list by session read', async () => {
    const id = (await as(tokens.locker, 'PUT', '/v1/session/create', {})).body.ID as string;
    for (const path of [
      `/v1/session/info/${id}`,
      '/v1/session/node/test-node',
      '/v1/session/list',
    ]) {
      const seen = await as(tokens.watcher, 'GET', path);
      assert.deepEqual(
        seen.body.map((s: { ID: string }) => s.ID),
        [id],
        path,
      );
      const hidden = await as(tokens['keys-only'], 'GET', path);
      assert.equal(hidden.status, 200, path);
      assert.deepEqual(hidden.body, [], path);
    }
    await as(tokens.locker, 'PUT', `/v1/session/destroy/${id}`);
  });

  it('takes key write to acquire and release', async () => {
    const id = (await as(tokens.locker, 'PUT', '/v1/session/create', {})).body.ID as string;
    const denied = await as(tokens.watcher, 'PUT', `/v1/kv/locks/a?acquire=${id}`, 'x');
    assert.equal(denied.status, 403);
    assert.match(denied.text, /key:locks\/a write/);
    // The session's node rights are not needed to use it: a key writer may (as Consul).
    assert.equal(
      (await as(tokens['keys-only'], 'PUT', `/v1/kv/locks/a?acquire=${id}`, 'x')).body,
      true,
    );
    assert.equal(
      (await as(tokens.watcher, 'PUT', `/v1/kv/locks/a?release=${id}`, 'y')).status,
      403,
    );
    assert.equal((await as(tokens.locker, 'PUT', `/v1/kv/locks/a?release=${id}`, 'y')).body, true);
    await as(tokens.locker, 'PUT', `/v1/session/destroy/${id}`);
  });
});
