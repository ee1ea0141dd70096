/**
 * ACL rules for Consul user events and prepared queries (issue 22), with ACLs on and default
 * deny, through the npm `consul` package: `event_prefix` / `query_prefix` rules govern them, and
 * txn ops take key rights.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Consul from 'consul';
import { request } from 'undici';
import { startTestAgent, type TestAgent } from '../helpers/agent.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the client answers arbitrary JSON
type Any = any;

describe('ACL rules on events, prepared queries and txn', () => {
  let agent: TestAgent;
  let host = '';
  let port = 0;
  const client = (token?: string) =>
    new Consul({ host, port, ...(token === undefined ? {} : { defaults: { token } }) });
  const status = async (p: Promise<unknown>): Promise<number> => {
    try {
      await p;
      return 200;
    } catch (err) {
      return (err as { response?: { statusCode?: number } }).response?.statusCode ?? 0;
    }
  };

  before(async () => {
    agent = await startTestAgent({ flags: { acl: { enabled: true, defaultPolicy: 'deny' } } });
    const u = new URL(agent.url);
    host = u.hostname;
    port = Number(u.port);
  });
  after(() => agent.stop());

  it('lets a token fire, list and query only what its rules name', async () => {
    const boot = (await client().acl.bootstrap()) as { SecretID: string };
    const admin = client(boot.SecretID);
    const limited = (await admin.acl.legacy.create({
      name: 'deployer',
      type: 'client',
      rules: [
        'event_prefix "deploy-" { policy = "write" }',
        'query_prefix "web-" { policy = "write" }',
        'key_prefix "app/" { policy = "write" }',
      ].join('\n'),
    })) as { ID: string };
    const token = client(limited.ID);

    assert.equal(await status(token.event.fire('deploy-web', 'x')), 200);
    assert.equal(await status(token.event.fire('restart', 'x')), 403);
    await admin.event.fire('restart', 'by admin');
    // The list drops what the token may not read (no 403), as Consul.
    const seen: Any[] = await token.event.list();
    assert.deepEqual(
      seen.map((e) => e.Name),
      ['deploy-web'],
    );
    assert.equal((await admin.event.list()).length, 2);

    // The npm client puts its default token into the query's Token field (not the header) on
    // create, so the token goes as a header here.
    const create = async (name: string, secret = limited.ID) =>
      (
        await request(`${agent.url}/v1/query`, {
          method: 'POST',
          headers: { 'x-consul-token': secret },
          body: JSON.stringify({ Name: name, Service: { Service: 'web' } }),
        })
      ).statusCode;
    assert.equal(await create('web-fast'), 200);
    assert.equal(await create('db-fast'), 403);
    assert.equal(await create('db-admin', boot.SecretID), 200);
    const queries: Any[] = await token.query.list();
    assert.deepEqual(
      queries.map((q) => q.Name),
      ['web-fast'],
    );

    const ok = (key: string) => [{ KV: { Verb: 'set', Key: key, Value: 'eA==' } }];
    assert.equal(await status(token.transaction.create(ok('app/a') as Any)), 200);
    assert.equal(await status(token.transaction.create(ok('other/a') as Any)), 403);
  });
});
