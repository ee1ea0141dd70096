/** AclSystem: tokens and policies, the resolver's cache, and a shared store's refresh (fake time). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMemoryAclStore, type AclStore } from '../../../../src/registry/acl/acl-store.js';
import {
  AclOpError,
  AclSystem,
  ANONYMOUS_ACCESSOR_ID,
  GLOBAL_MANAGEMENT_POLICY_ID,
} from '../../../../src/registry/acl/acl-system.js';
import { FakeClock } from '../../../../src/testing/fake-clock.js';

const started = async (
  store: AclStore = createMemoryAclStore(),
  clock = new FakeClock(),
  shared = false,
) => {
  const s = new AclSystem({
    store,
    enabled: true,
    defaultPolicy: 'deny',
    clock,
    shared,
    refreshMs: 1000,
  });
  await s.start();
  return s;
};
const refused = (kind: AclOpError['kind'], message: RegExp) => (e: unknown) =>
  e instanceof AclOpError && e.kind === kind && message.test(e.message);

describe('AclSystem', () => {
  it('resolves no token to the anonymous token, which has no rights by default', async () => {
    const s = await started();
    const anon = await s.resolve(undefined);
    assert.equal(anon.accessorId, 'anonymous');
    assert.equal(anon.check('service', 'web', 'read').allowed, false);
    // Consul's anonymous secret is the same token.
    assert.equal((await s.resolve('anonymous')).accessorId, 'anonymous');
    assert.equal((await s.resolve('nobody')).accessorId, 'unknown');
  });

  it('gives a token the rights of its policies at once, and follows policy changes', async () => {
    const s = await started();
    const p = await s.createPolicy({ name: 'web', rules: 'service "web" { policy = "read" }' });
    const t = await s.createToken({ policies: [{ name: 'web' }] });
    assert.equal((await s.resolve(t.secretId)).check('service', 'web', 'write').allowed, false);
    await s.updatePolicy(p.id, { rules: 'service "web" { policy = "write" }' });
    assert.equal((await s.resolve(t.secretId)).check('service', 'web', 'write').allowed, true);
    assert.equal(s.resolveCached(t.secretId)?.accessorId, t.accessorId);
    await s.deletePolicy(p.id);
    assert.equal((await s.resolve(t.secretId)).check('service', 'web', 'read').allowed, false);
    assert.deepEqual(
      (await s.document()).tokens.find((x) => x.accessorId === t.accessorId)?.policies,
      [],
    );
    await s.deleteToken(t.accessorId);
    assert.equal((await s.resolve(t.secretId)).accessorId, 'unknown');
  });

  it('refuses bad input with the reason', async () => {
    const s = await started();
    await assert.rejects(
      s.createPolicy({ name: 'bad name' }),
      refused('invalid', /invalid Name "bad name"/),
    );
    await assert.rejects(
      s.createPolicy({ name: 'p', rules: 'mesh = "all"' }),
      refused('invalid', /^Failed to parse policy rules: line 1: policy must be/),
    );
    await s.createPolicy({ name: 'p' });
    await assert.rejects(s.createPolicy({ name: 'p' }), refused('invalid', /already exists/));
    await assert.rejects(
      s.createToken({ policies: [{ name: 'nope' }] }),
      refused('invalid', /No such ACL policy with name "nope"/),
    );
    await assert.rejects(
      s.createToken({ secretId: 'not-a-uuid' }),
      refused('invalid', /SecretID: must be a UUID/),
    );
    await assert.rejects(
      s.deleteToken(ANONYMOUS_ACCESSOR_ID),
      refused('forbidden', /anonymous token/),
    );
    await assert.rejects(
      s.deletePolicy(GLOBAL_MANAGEMENT_POLICY_ID),
      refused('forbidden', /global-management/),
    );
    await assert.rejects(
      s.updatePolicy(GLOBAL_MANAGEMENT_POLICY_ID, { rules: '' }),
      refused('invalid', /builtin global-management/),
    );
    await assert.rejects(
      s.updateToken('00000000-0000-0000-0000-0000000000ff', {}),
      refused('not-found', /Cannot find token/),
    );
  });

  it('bootstraps once, with a global-management token', async () => {
    const s = await started();
    const boot = await s.bootstrap();
    assert.deepEqual(boot.policies, [GLOBAL_MANAGEMENT_POLICY_ID]);
    assert.equal((await s.resolve(boot.secretId)).check('acl', '', 'write').allowed, true);
    await assert.rejects(
      s.bootstrap(),
      refused('bootstrap-done', /^ACL bootstrap no longer allowed$/),
    );
  });

  it("in a shared store, sees another agent's tokens after refreshMs, or at once for an unknown secret", async () => {
    const store = createMemoryAclStore();
    const clock = new FakeClock();
    const a = await started(store, clock, true);
    const b = await started(store, clock, true);
    const p = await a.createPolicy({ name: 'kv', rules: 'key_prefix "" { policy = "read" }' });
    const t = await a.createToken({ policies: [{ id: p.id }] });
    clock.advance(200);
    // Unknown to b's copy: b re-reads the store rather than refusing a token just made.
    assert.equal((await b.resolve(t.secretId)).check('kv', 'x', 'read').allowed, true);
    await a.updatePolicy(p.id, { rules: '' });
    // Cached on b until its copy is older than refreshMs.
    assert.equal(b.resolveCached(t.secretId)?.check('kv', 'x', 'read').allowed, true);
    clock.advance(1001);
    assert.equal(b.resolveCached(t.secretId), undefined);
    assert.equal((await b.resolve(t.secretId)).check('kv', 'x', 'read').allowed, false);
  });

  it('allows everything, with no store reads, when disabled', async () => {
    const s = new AclSystem({
      store: createMemoryAclStore(),
      enabled: false,
      defaultPolicy: 'deny',
    });
    assert.equal((await s.resolve('whatever')).check('acl', '', 'write').allowed, true);
    assert.equal(s.resolveCached(undefined)?.check('kv', 'x', 'write').allowed, true);
  });
});
