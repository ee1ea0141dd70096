import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ERROR_CODES, isMeshError } from '../../../src/core/errors.js';
import {
  DEFAULT_GATEWAY_OPTIONS,
  parseGatewayOptions,
  resolveGatewayOptions,
} from '../../../src/gateway/options.js';
import { routeSchema } from '../../../src/proxy/route-config.js';
import { compileMatch, type MatchInput } from '../../../src/proxy/route-table.js';

describe('gateway options', () => {
  it('accepts the defaults and applies env over the file values and flags over env', () => {
    const o = resolveGatewayOptions({
      env: { MESHWORK_GATEWAY__DOMAIN: 'env.local', MESHWORK_GATEWAY__LISTEN: '127.0.0.1:1' },
      flags: { listen: '127.0.0.1:2' },
    });
    assert.equal(o.domain, 'env.local');
    assert.equal(o.listen, '127.0.0.1:2');
    assert.ok(Object.isFrozen(o));
  });

  /** The problems parseGatewayOptions lists for `doc` (defaults underneath). */
  const problemsOf = (doc: Record<string, unknown>): string[] => {
    try {
      parseGatewayOptions({ ...DEFAULT_GATEWAY_OPTIONS, ...doc });
    } catch (err) {
      assert.ok(isMeshError(err, ERROR_CODES.CONFIG_INVALID));
      return err.details?.problems as string[];
    }
    return assert.fail('should throw');
  };

  // Issue 16: route regexes are RE2; a pattern it refuses is a config error naming the field.
  it('refuses route regexes RE2 does not take, naming each field and the reason', () => {
    const problems = problemsOf({
      routes: [
        { match: { path: { regex: '/(a)\\1' } }, service: 'a' },
        { match: { headers: [{ name: 'x', regex: '(?=v)' }] }, service: 'a' },
        { match: { path: { regex: '/(a+)+' } }, service: 'a' },
      ],
    });
    assert.deepEqual(
      problems,
      [
        'routes[0].match.path.regex: not an RE2 regular expression (error parsing regexp: invalid escape sequence: `\\1`)',
        'routes[1].match.headers[0].regex: not an RE2 regular expression (error parsing regexp: invalid or unsupported Perl syntax: `(?=`)',
      ],
      'a catastrophic-backtracking pattern is fine: RE2 runs it in linear time',
    );
  });

  it('lists every problem at once', () => {
    const shape = problemsOf({
      listen: 'x',
      routes: [{ service: 'a', backends: [{ service: 'b' }] }],
    });
    assert.ok(
      shape.some((p) => p.startsWith('listen:')),
      shape.join('\n'),
    );
    assert.ok(
      shape.some((p) => p.startsWith('routes[0]')),
      shape.join('\n'),
    );
    // Past the schema: balancers, retry and outlier options, duplicate names, all at once.
    const semantic = problemsOf({
      balancer: 'fastest',
      retry: { maxAttempts: 0, bogus: 1 },
      routes: [
        { name: 'n', service: 'a' },
        { name: 'n', service: 'a' },
      ],
    });
    assert.ok(
      semantic.some((p) => p.startsWith('balancer:')),
      semantic.join('\n'),
    );
    assert.ok(
      semantic.some((p) => p.startsWith('retry.maxAttempts')),
      semantic.join('\n'),
    );
    assert.ok(
      semantic.some((p) => p === 'retry.bogus: unknown key'),
      semantic.join('\n'),
    );
    assert.ok(
      semantic.some((p) => p.includes('used twice')),
      semantic.join('\n'),
    );
  });

  it('refuses header values and rewrites that would break the upstream request head', () => {
    const problems = problemsOf({
      routes: [
        {
          match: { path: { prefix: '/a' } },
          service: 'a',
          prefixRewrite: '/b c',
          requestHeaders: { set: { 'x-a': 'ok\r\nx-injected: 1' } },
        },
      ],
    });
    assert.ok(
      problems.some((p) => p.startsWith('routes[0].prefixRewrite:')),
      problems.join('\n'),
    );
    assert.ok(
      problems.some((p) => p.includes('requestHeaders.set') && p.includes('CR, LF or NUL')),
      problems.join('\n'),
    );
  });

  it('never throws anything but CONFIG_INVALID on random route documents, and compiled matchers never throw', () => {
    const value = fc.oneof(
      fc.string(),
      fc.integer(),
      fc.boolean(),
      fc.constantFrom('/', '/api', '([', '.*', 'GET', 'orders', 'v2'),
    );
    const match = fc.record(
      {
        path: fc.oneof(
          fc.record({ prefix: value }, { requiredKeys: [] }),
          fc.record({ exact: value, regex: value }, { requiredKeys: [] }),
        ),
        methods: fc.array(fc.oneof(value, fc.constantFrom('GET', 'POST'))),
        headers: fc.array(
          fc.record(
            { name: value, exact: value, regex: value, present: fc.boolean() },
            { requiredKeys: [] },
          ),
        ),
        query: fc.array(fc.record({ name: value, present: fc.boolean() }, { requiredKeys: [] })),
        host: value,
      },
      { requiredKeys: [] },
    );
    const route = fc.record(
      {
        name: value,
        match,
        service: fc.oneof(value, fc.constantFrom('orders', 'users')),
        subset: fc.record({ meta: fc.dictionary(fc.string(), fc.string()) }, { requiredKeys: [] }),
        backends: fc.array(
          fc.record(
            { service: value, weight: fc.integer({ min: -1, max: 20 }) },
            { requiredKeys: [] },
          ),
        ),
        prefixRewrite: value,
        balancer: fc.oneof(value, fc.constantFrom('round-robin', 'least-request')),
        timeoutMs: fc.integer(),
      },
      { requiredKeys: [] },
    );
    const req = fc.record({
      method: fc.constantFrom('GET', 'POST'),
      host: fc.string(),
      path: fc.string(),
      query: fc.string(),
      headers: fc.dictionary(fc.string(), fc.string()),
    });
    fc.assert(
      fc.property(fc.array(fc.oneof(route, value), { maxLength: 4 }), req, (routes, input) => {
        try {
          const o = parseGatewayOptions({ ...DEFAULT_GATEWAY_OPTIONS, routes });
          for (const r of o.routes) compileMatch(r.match)(input as MatchInput);
        } catch (err) {
          if (!isMeshError(err, ERROR_CODES.CONFIG_INVALID)) throw err;
        }
        const one = routeSchema.safeParse(routes[0]);
        if (one.success) compileMatch(one.data.match)(input as MatchInput);
      }),
      { seed: 7, numRuns: 400 },
    );
  });
});

describe('examples/gateway.yaml', () => {
  it('is a valid gateway config', () => {
    const o = resolveGatewayOptions({
      file: new URL('../../../examples/gateway.yaml', import.meta.url).pathname,
    });
    assert.equal(o.routes.length, 3);
    assert.equal(o.routes[0]?.backends?.[1]?.weight, 10);
  });
});
