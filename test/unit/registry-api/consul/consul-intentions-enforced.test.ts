/**
 * @module Consul intentions as the sidecars enforce them (issue 20): the AuthorizationPolicy
 * derived from any set of intentions (consul-intentions.ts), compiled by the sidecar's own
 * evaluator (src/proxy/filters/authorization/), decides every caller as Consul's precedence
 * (intentionAllows) does, for an mTLS caller of any trust domain; and a plaintext caller, who has
 * no principal, is allowed only where no intention leaves the default (allow) behind.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  compileAuthorization,
  isAuthorizationProblems,
  type AuthorizationRequest,
} from '../../../../src/proxy/filters/authorization/authorization-policy.js';
import {
  intentionAllows,
  intentionPolicy,
  type Intention,
} from '../../../../src/registry-api/consul/consul-intentions.js';

const at = '2026-12-06T00:00:00.000Z';
const intention = (source: string, action: 'allow' | 'deny'): Intention => ({
  source,
  destination: 'db',
  action,
  description: '',
  meta: {},
  createdAt: at,
  updatedAt: at,
});

const request = (principal: string | undefined): AuthorizationRequest => ({
  method: 'GET',
  path: '/',
  authority: 'db',
  host: 'db',
  headers: {},
  sourceIp: '127.0.0.1',
  destinationIp: '127.0.0.1',
  destinationPort: 8080,
  principal,
  namespace: principal === undefined ? undefined : 'default',
  sni: undefined,
});

describe('Consul intentions, enforced by the sidecar’s evaluator', () => {
  it('decide every caller as Consul’s precedence does (fast-check)', () => {
    const pool = ['web', 'api', 'batch', 'ui'];
    const arb = fc.record({
      wildcard: fc.constantFrom<'allow' | 'deny' | undefined>('allow', 'deny', undefined),
      exact: fc.dictionary(
        fc.constantFrom(...pool),
        fc.constantFrom<'allow' | 'deny'>('allow', 'deny'),
      ),
      trustDomain: fc.constantFrom('cluster.local', 'example.org'),
    });
    fc.assert(
      fc.property(arb, ({ wildcard, exact, trustDomain }) => {
        const set = [
          ...(wildcard === undefined ? [] : [intention('*', wildcard)]),
          ...Object.entries(exact).map(([s, a]) => intention(s, a)),
        ];
        const policy = intentionPolicy('db', set);
        const compiled = compileAuthorization(
          policy === undefined ? [] : [{ key: 'AuthorizationPolicy/default/x', spec: policy.spec }],
        );
        assert.ok(!isAuthorizationProblems(compiled));
        for (const caller of [...pool, 'stranger']) {
          const consul = intentionAllows(set, caller, true).allowed;
          const sidecar = compiled.evaluate(request(`${trustDomain}/ns/default/sa/${caller}`));
          assert.equal(sidecar.allowed, consul, `${caller} with ${JSON.stringify(set)}`);
        }
        // Plaintext: no principal, so no exact intention applies; a wildcard deny denies it.
        const anonymous = compiled.evaluate(request(undefined)).allowed;
        assert.equal(anonymous, wildcard !== 'deny', JSON.stringify(set));
      }),
    );
  });
});
