/**
 * Registry ACLs in cluster mode (issue 20): two agents on one real etcd share tokens and
 * policies (one etcd key): bootstrap once across the cluster, a token made on one agent works on
 * the other at once, and a policy change reaches the other within acl.refreshMs.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RunningAgent } from '../../src/cli/agent-runtime.js';
import { http, startClusterAgent } from '../helpers/agent.js';
import { startEtcd, type EtcdProcess } from '../helpers/etcd.js';
import { until } from '../helpers/until.js';

describe('registry ACLs on two agents sharing etcd', () => {
  let etcd: EtcdProcess;
  let a: RunningAgent;
  let b: RunningAgent;
  const flags = { acl: { enabled: true, defaultPolicy: 'deny', refreshMs: 200 } };
  const as = (secret: string) => ({ 'x-consul-token': secret });

  before(async () => {
    etcd = await startEtcd();
    const prefix = `/acl-cluster-${process.pid}/`;
    a = await startClusterAgent([etcd.endpoint], 'node-a', prefix, flags);
    b = await startClusterAgent([etcd.endpoint], 'node-b', prefix, flags);
  });
  after(async () => {
    await a.close();
    await b.close();
    await etcd.stop();
  });

  it('bootstraps once, shares tokens at once and policy changes within refreshMs', async () => {
    const boot = await http(a.url, 'PUT', '/v1/acl/bootstrap');
    assert.equal(boot.status, 200, boot.text);
    const management = boot.body.SecretID as string;
    const again = await http(b.url, 'PUT', '/v1/acl/bootstrap');
    assert.equal(again.status, 403);

    const policy = await http(
      a.url,
      'PUT',
      '/v1/acl/policy',
      { Name: 'kv', Rules: 'key_prefix "app/" { policy = "write" }' },
      as(management),
    );
    assert.equal(policy.status, 200, policy.text);
    const token = await http(
      a.url,
      'PUT',
      '/v1/acl/token',
      { Policies: [{ Name: 'kv' }] },
      as(management),
    );
    const secret = token.body.SecretID as string;
    // Made on a, used on b at once (an unknown secret makes b read etcd).
    const put = await http(b.url, 'PUT', '/v1/kv/app/x', 'v', as(secret));
    assert.equal(put.status, 200, put.text);

    const updated = await http(
      a.url,
      'PUT',
      `/v1/acl/policy/${policy.body.ID as string}`,
      { Name: 'kv', Rules: '' },
      as(management),
    );
    assert.equal(updated.status, 200, updated.text);
    await until(
      async () =>
        (await http(b.url, 'PUT', '/v1/kv/app/x', 'w', as(secret))).status === 403
          ? true
          : undefined,
      10_000,
      'the policy change seen by the other agent',
    );
  });
});
