import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  isWildcardHost,
  resolveHost,
  wildcardCovers,
} from '../../../src/control-plane/mesh-hosts.js';

const label = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,8}[a-z0-9])?$/);

describe('resolveHost', () => {
  it('reads the short and long forms of a service as the service, other hosts whole', () => {
    const table: [string, string, string][] = [
      ['payments', 'default', 'payments'],
      ['Payments', 'default', 'payments'],
      ['payments.default', 'default', 'payments'],
      ['payments.shop', 'default', 'payments.shop'],
      ['payments.default.svc.cluster.local', 'default', 'payments'],
      ['payments.shop.svc.cluster.local', 'default', 'payments'],
      ['payments.shop.svc', 'default', 'payments'],
      ['api.stripe.com', 'default', 'api.stripe.com'],
      ['httpbin.org', 'default', 'httpbin.org'],
      ['*.example.com', 'default', '*.example.com'],
    ];
    for (const [host, ns, expected] of table) assert.equal(resolveHost(host, ns), expected, host);
  });

  it('is idempotent and maps every form of a service name to it', () => {
    fc.assert(
      fc.property(label, label, label, fc.string(), (service, ns, domain, any) => {
        for (const form of [
          service,
          `${service}.${ns}`,
          `${service}.${ns}.svc.${domain}`,
          `${service}.other.svc`,
        ]) {
          assert.equal(resolveHost(form, ns), service, form);
        }
        const once = resolveHost(any, ns);
        assert.equal(resolveHost(once, ns), once);
      }),
      { seed: 18, numRuns: 500 },
    );
  });
});

describe('wildcardCovers', () => {
  it('covers every host with `*` and the subdomains of a suffix with `*.suffix`', () => {
    assert.equal(isWildcardHost('*'), true);
    assert.equal(isWildcardHost('payments'), false);
    assert.equal(wildcardCovers('*', 'payments'), true);
    assert.equal(wildcardCovers('*.example.com', 'api.example.com'), true);
    assert.equal(wildcardCovers('*.example.com', 'example.com'), false);
    assert.equal(wildcardCovers('*.example.com', 'api.example.org'), false);
  });
});
