/**
 * Registry ACLs through the npm `consul` package 2.0, unmodified: acl.bootstrap() (the 1.4+
 * endpoint) and the acl.legacy calls it offers for tokens (create, info/get, list, update, clone,
 * destroy), tokens sent as X-Consul-Token, refusals as errors with Consul's status and message.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Consul from 'consul';
import { startTestAgent, type TestAgent } from '../helpers/agent.js';

describe('npm consul 2 ACL calls', () => {
  let agent: TestAgent;
  let host = '';
  let port = 0;
  const client = (token?: string) =>
    new Consul({ host, port, ...(token === undefined ? {} : { defaults: { token } }) });
  /** The error a call rejects with: Consul's status code and its message. */
  const refusal = async (p: Promise<unknown>): Promise<{ status: number; message: string }> => {
    try {
      await p;
    } catch (err) {
      const e = err as Error & { response?: { statusCode?: number } };
      return { status: e.response?.statusCode ?? 0, message: e.message };
    }
    throw new Error('the call was not refused');
  };

  before(async () => {
    agent = await startTestAgent({ flags: { acl: { enabled: true, defaultPolicy: 'deny' } } });
    const u = new URL(agent.url);
    host = u.hostname;
    port = Number(u.port);
  });
  after(async () => {
    await agent.stop();
  });

  it('bootstraps once and manages legacy tokens with the management token', async () => {
    const boot = (await client().acl.bootstrap()) as { SecretID: string; AccessorID: string };
    assert.match(boot.SecretID, /^[0-9a-f-]{36}$/);
    assert.deepEqual(await refusal(client().acl.bootstrap()), {
      status: 403,
      message: 'Permission denied: ACL bootstrap no longer allowed',
    });

    const admin = client(boot.SecretID);
    const created = (await admin.acl.legacy.create({
      name: 'node-web',
      type: 'client',
      rules: 'service "node-web" { policy = "write" }',
    })) as { ID: string };
    const info = (await admin.acl.legacy.get(created.ID)) as { Name: string; Type: string };
    assert.equal(info.Name, 'node-web');
    assert.equal(info.Type, 'client');
    const list = (await admin.acl.legacy.list()) as { ID: string }[];
    assert.ok(list.some((t) => t.ID === created.ID));

    const web = client(created.ID);
    await web.agent.service.register({ name: 'node-web', id: 'node-web-1', port: 80 });
    assert.deepEqual(
      await refusal(web.agent.service.register({ name: 'node-db', id: 'db-1', port: 5432 })),
      {
        status: 403,
        message: "Permission denied: token lacks permission 'service:node-db write'",
      },
    );
    assert.equal((await refusal(web.acl.legacy.list())).status, 403);

    await admin.acl.legacy.update({ id: created.ID, name: 'node-web', rules: '' });
    assert.equal(
      (await refusal(web.agent.service.register({ name: 'node-web', id: 'node-web-2', port: 81 })))
        .status,
      403,
    );
    const clone = (await admin.acl.legacy.clone(created.ID)) as { ID: string };
    assert.notEqual(clone.ID, created.ID);
    await admin.acl.legacy.destroy(clone.ID);
    assert.equal(await admin.acl.legacy.get(clone.ID), undefined);
  });
});
