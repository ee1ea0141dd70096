/** Consul filter expressions: grammar, evaluation over /v1 shapes, and random input. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ERROR_CODES, isMeshError } from '../../../../src/core/errors.js';
import { compileConsulFilter } from '../../../../src/registry-api/consul/consul-filter.js';

const SEED = 13;

const entry = {
  Node: { Node: 'n1', Meta: { rack: 'r1' } },
  Service: {
    ID: 'web-1',
    Service: 'web',
    Tags: ['v1', 'blue'],
    Meta: { env: 'prod', 'team-name': 'core' },
    Port: 8080,
    EnableTagOverride: false,
    Address: '',
  },
  Checks: [
    { CheckID: 'serfHealth', Status: 'passing' },
    { CheckID: 'service:web-1', Status: 'critical' },
  ],
};

const matches = (expr: string, el: unknown = entry): boolean => compileConsulFilter(expr)(el);

describe('compileConsulFilter', () => {
  it('evaluates the operators', () => {
    const yes = [
      'Service.Service == "web"',
      'Service.Service != "api"',
      'Service.Port == 8080',
      'Service.EnableTagOverride == false',
      '"v1" in Service.Tags',
      '"v3" not in Service.Tags',
      'Service.Tags contains "blue"',
      'Service.Tags not contains "red"',
      'Service.Meta contains "env"',
      'Service.ID contains "eb-"',
      'Service.Service matches "^w.b$"',
      'Service.Service not matches "^api"',
      'Service.Address is empty',
      'Service.Tags is not empty',
      'Service.Missing is empty',
      'Service.Meta.env == "prod"',
      'Service.Meta["team-name"] == "core"',
      'Service.Meta.team-name == `core`',
      'Checks.Status == "critical"',
      'Node.Meta.rack == "r1"',
      'service.service == "web"',
    ];
    for (const e of yes) assert.equal(matches(e), true, e);
    const no = [
      'Service.Service == "api"',
      '"v3" in Service.Tags',
      'Service.Address is not empty',
      'Service.Port == 80',
      'Checks.Status != "critical"',
    ];
    for (const e of no) assert.equal(matches(e), false, e);
  });

  it('combines with and, or, not and parentheses with the usual precedence', () => {
    assert.equal(
      matches('Service.ID == "x" or Service.ID == "web-1" and Service.Port == 8080'),
      true,
    );
    assert.equal(
      matches('(Service.ID == "x" or Service.ID == "web-1") and Service.Port == 1'),
      false,
    );
    assert.equal(matches('not Service.ID == "x"'), true);
    assert.equal(matches('not (Service.ID == "web-1" and "v1" in Service.Tags)'), false);
  });

  it("refuses bad expressions with Consul's message", () => {
    for (const bad of [
      '',
      'Service.ID ==',
      'Service.ID = "x"',
      '== "x"',
      '"x" in',
      'Service.ID == "x" and',
      '(Service.ID == "x"',
      'Service.ID matches "("',
      'Service.ID is full',
      'Service.ID == "unterminated',
      'Service.[',
      '@',
      `${'('.repeat(100)}Service.ID == "x"${')'.repeat(100)}`,
    ]) {
      assert.throws(
        () => compileConsulFilter(bad),
        (err: unknown) =>
          isMeshError(err, ERROR_CODES.VALIDATION) &&
          /^filter: Failed to create boolean expression evaluator: /.test(err.message),
        bad,
      );
    }
  });

  // Issue 16: `matches` is RE2, a search as Go's regexp.MatchString, in time linear in the value.
  it('matches with RE2: a search, RE2 syntax, and no backtracking blow-up', () => {
    assert.equal(matches('Service.ID matches "eb-"'), true, 'unanchored');
    assert.equal(matches('Service.Meta.env matches "(?i)^PROD$"'), true, 'RE2 flags group');
    assert.equal(matches('Service.Meta.env matches `^\\pL+\\z`'), true, 'RE2 classes and \\z');
    const long = { Service: { Meta: { x: `${'a'.repeat(5000)}!` } } };
    assert.equal(matches('Service.Meta.x matches "^(a+)+$"', long), false);
    assert.equal(matches('Service.Meta.x not matches "^(a+)+$"', long), true);
  });

  it('refuses a pattern RE2 does not take, naming the selector and the reason', () => {
    for (const [re, reason] of [
      ['(a)\\\\1', /invalid escape sequence/],
      ['(?=a)', /unsupported Perl syntax/],
      ['(x|xy|yx|y){500}', /too large/],
    ] as const) {
      assert.throws(
        () => compileConsulFilter(`Service.Meta.x matches "${re}"`),
        (err: unknown) =>
          isMeshError(err, ERROR_CODES.VALIDATION) &&
          err.message.startsWith(
            'filter: Failed to create boolean expression evaluator: Service.Meta.x matches: ',
          ) &&
          reason.test(err.message),
        re,
      );
    }
  });

  it('never throws anything but a validation error for random text, and compiled filters never throw', () => {
    const words = fc.constantFrom(
      'Service.ID',
      'Checks.Status',
      '"v"',
      '`r`',
      '1',
      'true',
      '==',
      '!=',
      'in',
      'not',
      'contains',
      'matches',
      'is',
      'empty',
      'and',
      'or',
      '(',
      ')',
      '["k"]',
      '.',
      'Meta',
    );
    const phrase = fc.array(words, { maxLength: 12 }).map((ws) => ws.join(' '));
    fc.assert(
      fc.property(fc.oneof(fc.string(), phrase), fc.jsonValue(), (expr, el) => {
        let keep;
        try {
          keep = compileConsulFilter(expr);
        } catch (err) {
          assert.ok(isMeshError(err, ERROR_CODES.VALIDATION), String(err));
          return;
        }
        assert.equal(typeof keep(el), 'boolean');
        assert.equal(typeof keep(entry), 'boolean');
      }),
      { seed: SEED, numRuns: 3000 },
    );
  });
});
