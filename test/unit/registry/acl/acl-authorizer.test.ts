/** Authorizers from rules: Consul's precedence, write implies read, the default policy. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { permissionName, rulesAuthorizer } from '../../../../src/registry/acl/acl-authorizer.js';
import { emptyRules, mergeRules, parseAclRules } from '../../../../src/registry/acl/acl-rules.js';

const auth = (rules: string, def: 'allow' | 'deny' = 'deny') =>
  rulesAuthorizer('acc', parseAclRules(rules), def);
const ok = (a: ReturnType<typeof auth>, ...args: Parameters<ReturnType<typeof auth>['check']>) =>
  a.check(...args).allowed;

describe('rulesAuthorizer', () => {
  it('lets an exact rule beat every prefix, and the longest prefix beat shorter ones', () => {
    const a = auth(`
      service_prefix "" { policy = "write" }
      service_prefix "pay" { policy = "read" }
      service_prefix "payments-internal" { policy = "deny" }
      service "payments-internal-api" { policy = "write" }
    `);
    assert.equal(ok(a, 'service', 'orders', 'write'), true);
    assert.equal(ok(a, 'service', 'payments', 'write'), false);
    assert.equal(ok(a, 'service', 'payments', 'read'), true);
    assert.equal(ok(a, 'service', 'payments-internal-db', 'read'), false);
    assert.equal(ok(a, 'service', 'payments-internal-api', 'write'), true);
  });

  it('lets deny beat write for the same rule across policies', () => {
    const merged = mergeRules(
      mergeRules(emptyRules(), parseAclRules('key_prefix "a/" { policy = "write" }')),
      parseAclRules('key_prefix "a/" { policy = "deny" }'),
    );
    assert.equal(rulesAuthorizer('x', merged, 'allow').check('kv', 'a/b', 'read').allowed, false);
  });

  it('falls back to the default policy where no rule matches, never granting acl by default', () => {
    const deny = auth('service "web" { policy = "read" }', 'deny');
    assert.equal(ok(deny, 'kv', 'x', 'read'), false);
    assert.equal(ok(deny, 'mesh', '', 'read'), false);
    const allow = auth('service "web" { policy = "read" }', 'allow');
    assert.equal(ok(allow, 'kv', 'x', 'write'), true);
    assert.equal(ok(allow, 'service', 'web', 'write'), false);
    assert.equal(ok(allow, 'acl', '', 'read'), false);
  });

  it('lets the operator rule decide mesh when there is no mesh rule', () => {
    assert.equal(ok(auth('operator = "write"'), 'mesh', '', 'write'), true);
    assert.equal(ok(auth('operator = "write"\nmesh = "read"'), 'mesh', '', 'write'), false);
  });

  it('names the missing permission', () => {
    assert.deepEqual(auth('').check('service', 'payments', 'write'), {
      allowed: false,
      missing: 'service:payments write',
    });
    assert.equal(permissionName('kv', 'a/b', 'read'), 'key:a/b read');
    assert.equal(permissionName('mesh', '', 'write'), 'mesh write');
  });

  it('grants read wherever it grants write, and never throws', () => {
    const kinds = fc.constantFrom(
      'service',
      'kv',
      'node',
      'agent',
      'mesh',
      'acl',
      'operator',
    ) as fc.Arbitrary<'service' | 'kv' | 'node' | 'agent' | 'mesh' | 'acl' | 'operator'>;
    const rule = fc.tuple(
      fc.constantFrom('service', 'service_prefix', 'key', 'key_prefix', 'node_prefix', 'agent'),
      fc.string({ maxLength: 6 }),
      fc.constantFrom('read', 'write', 'deny'),
    );
    fc.assert(
      fc.property(
        fc.array(rule, { maxLength: 6 }),
        kinds,
        fc.string({ maxLength: 8 }),
        fc.boolean(),
        (rules, kind, name, allow) => {
          const a = auth(
            rules.map(([k, n, d]) => `${k} ${JSON.stringify(n)} { policy = "${d}" }`).join('\n'),
            allow ? 'allow' : 'deny',
          );
          if (a.check(kind, name, 'write').allowed)
            assert.equal(a.check(kind, name, 'read').allowed, true);
        },
      ),
      { numRuns: 1000 },
    );
  });
});
