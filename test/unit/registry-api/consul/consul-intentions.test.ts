import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseMeshResource } from '../../../../src/protocol/mesh/parse.js';
import type { AuthorizationPolicySpec } from '../../../../src/protocol/mesh/specs.js';
import {
  intentionAllows,
  intentionId,
  intentionNameProblem,
  intentionPolicy,
  intentionsOf,
  isIntentionPolicy,
  type Intention,
} from '../../../../src/registry-api/consul/consul-intentions.js';

const at = '2026-12-06T00:00:00.000Z';
const intention = (source: string, action: 'allow' | 'deny', extra: Partial<Intention> = {}) => ({
  source,
  destination: 'db',
  action,
  description: '',
  meta: {},
  createdAt: at,
  updatedAt: at,
  ...extra,
});

/**
 * What a sidecar decides for a caller by the derived policy, for the two shapes it takes (one
 * ALLOW or one DENY rule on principals): the reference the properties compare against.
 */
function policyAllows(spec: AuthorizationPolicySpec, source: string): boolean {
  const principals = spec.rules?.[0]?.from?.[0]?.source.principals ?? [];
  const listed = principals.some((p) =>
    `cluster.local/ns/default/sa/${source}`.endsWith(p.slice(1)),
  );
  return spec.action === 'ALLOW' ? listed : !listed;
}

describe('Consul intentions as an AuthorizationPolicy', () => {
  it('a wildcard deny becomes an ALLOW of the exact sources allowed', () => {
    const p = intentionPolicy('db', [intention('*', 'deny'), intention('web', 'allow')]);
    assert.deepEqual(p?.spec, {
      selector: { matchLabels: { app: 'db' } },
      action: 'ALLOW',
      rules: [{ from: [{ source: { principals: ['*/ns/default/sa/web'] } }] }],
    });
  });

  it('a wildcard deny alone allows nothing (an ALLOW without rules)', () => {
    const p = intentionPolicy('db', [intention('*', 'deny')]);
    assert.deepEqual(p?.spec, { selector: { matchLabels: { app: 'db' } }, action: 'ALLOW' });
  });

  it('otherwise the exact sources denied become a DENY, and none left removes the policy', () => {
    const p = intentionPolicy('db', [intention('api', 'deny'), intention('web', 'allow')]);
    assert.equal(p?.spec.action, 'DENY');
    assert.deepEqual(p?.spec.rules, [
      { from: [{ source: { principals: ['*/ns/default/sa/api'] } }] },
    ]);
    assert.equal(intentionPolicy('db', []), undefined);
  });

  it('keeps the intentions in the policy and reads them back, labelled as managed', () => {
    const kept = [
      intention('*', 'deny'),
      intention('web', 'allow', { description: 'web reads db', meta: { team: 'a' } }),
    ];
    const p = intentionPolicy('db', kept);
    assert.ok(p !== undefined && isIntentionPolicy(p));
    assert.deepEqual(intentionsOf(p), [kept[1], kept[0]]);
  });

  it('the policy it writes is a valid AuthorizationPolicy document', () => {
    const p = intentionPolicy('db', [intention('*', 'allow'), intention('api', 'deny')]);
    const parsed = parseMeshResource(p);
    assert.ok(parsed.ok, JSON.stringify(parsed));
  });

  it('IDs are stable per pair and differ between pairs', () => {
    assert.equal(intentionId('web', 'db'), intentionId('web', 'db'));
    assert.notEqual(intentionId('web', 'db'), intentionId('db', 'web'));
  });

  it('names: a service or (for sources) the wildcard', () => {
    assert.equal(intentionNameProblem('SourceName', '*', true), undefined);
    assert.match(String(intentionNameProblem('DestinationName', '*', false)), /not supported/);
    assert.match(String(intentionNameProblem('SourceName', 'Web!', true)), /service name/);
    assert.match(String(intentionNameProblem('SourceName', 42, true)), /service name/);
  });

  it('the sidecars decide as Consul would, for any set of intentions and any caller', () => {
    const pool = ['web', 'api', 'batch', 'ui'];
    const arb = fc.record({
      wildcard: fc.constantFrom<'allow' | 'deny' | undefined>('allow', 'deny', undefined),
      exact: fc.dictionary(
        fc.constantFrom(...pool),
        fc.constantFrom<'allow' | 'deny'>('allow', 'deny'),
      ),
    });
    fc.assert(
      fc.property(arb, ({ wildcard, exact }) => {
        const set = [
          ...(wildcard === undefined ? [] : [intention('*', wildcard)]),
          ...Object.entries(exact).map(([s, a]) => intention(s, a)),
        ];
        const policy = intentionPolicy('db', set);
        for (const caller of [...pool, 'stranger']) {
          const consul = intentionAllows(set, caller, true).allowed;
          const sidecar = policy === undefined ? true : policyAllows(policy.spec, caller);
          assert.equal(sidecar, consul, `${caller} with ${JSON.stringify(set)}`);
        }
      }),
    );
  });
});
