import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { routeMatchSchema } from '../../../src/proxy/route-config.js';
import { compileMatch, RouteTable, type MatchInput } from '../../../src/proxy/route-table.js';

const input = (over: Partial<MatchInput> = {}): MatchInput => ({
  method: 'GET',
  host: 'example.com',
  path: '/',
  query: '',
  headers: {},
  ...over,
});
const compile = (m: unknown) => compileMatch(routeMatchSchema.parse(m));

describe('compileMatch', () => {
  it('matches an empty match block against everything', () => {
    assert.equal(compile({})(input()), true);
  });

  it('matches a path prefix, an exact path and an anchored regex', () => {
    assert.equal(compile({ path: { prefix: '/api' } })(input({ path: '/api/x' })), true);
    assert.equal(compile({ path: { prefix: '/api' } })(input({ path: '/ap' })), false);
    assert.equal(compile({ path: { exact: '/a' } })(input({ path: '/a' })), true);
    assert.equal(compile({ path: { exact: '/a' } })(input({ path: '/a/' })), false);
    assert.equal(compile({ path: { regex: '/u/[0-9]+' } })(input({ path: '/u/42' })), true);
    assert.equal(compile({ path: { regex: '/u/[0-9]+' } })(input({ path: '/u/42/x' })), false);
  });

  // Issue 16: route regexes are RE2, anchored as Envoy's safe_regex, linear in the path.
  it('matches RE2 path and header regexes anchored, in linear time', () => {
    const re2 = compile({ path: { regex: '/(?P<id>[[:digit:]]+)(?i:/X)?' } });
    assert.equal(re2(input({ path: '/42/x' })), true);
    assert.equal(re2(input({ path: '/42/y' })), false);
    const alt = compile({ path: { regex: '/a|/b' } });
    assert.equal(alt(input({ path: '/b' })), true, 'the anchors wrap the whole alternation');
    assert.equal(alt(input({ path: '/a/b' })), false);
    const long = `/${'a'.repeat(5000)}!`;
    assert.equal(compile({ path: { regex: '/(a+)+' } })(input({ path: long })), false);
    const h = compile({ headers: [{ name: 'x-v', regex: '(a|aa)+' }] });
    assert.equal(h(input({ headers: { 'x-v': `${'a'.repeat(5000)}!` } })), false);
    assert.equal(h(input({ headers: { 'x-v': 'a'.repeat(5000) } })), true);
  });

  it('refuses, in the schema, a regex RE2 does not take, naming the field and the reason', () => {
    for (const [m, path, reason] of [
      [{ path: { regex: '/(a)\\1' } }, 'path.regex', /invalid escape sequence/],
      [{ headers: [{ name: 'x', regex: '(?=a)' }] }, 'headers.0.regex', /unsupported Perl/],
      [{ query: [{ name: 'q', regex: '(?<!a)' }] }, 'query.0.regex', /not an RE2 regular/],
      [{ path: { regex: '(x|xy|yx|y){500}' } }, 'path.regex', /too large/],
    ] as const) {
      const r = routeMatchSchema.safeParse(m);
      assert.equal(r.success, false, path);
      const issue = r.error?.issues[0];
      assert.equal(issue?.path.join('.'), path);
      assert.match(issue?.message ?? '', reason);
    }
  });

  it('matches methods, host, headers (exact, regex, present) and query', () => {
    assert.equal(compile({ methods: ['POST'] })(input()), false);
    assert.equal(compile({ methods: ['GET', 'POST'] })(input()), true);
    assert.equal(compile({ host: 'Example.COM' })(input()), true);
    const h = compile({
      headers: [
        { name: 'X-A', exact: '1' },
        { name: 'x-b', regex: 'v[0-9]' },
        { name: 'x-c', present: false },
      ],
    });
    assert.equal(h(input({ headers: { 'x-a': '1', 'x-b': 'v2' } })), true);
    assert.equal(h(input({ headers: { 'x-a': '1', 'x-b': 'v2', 'x-c': '' } })), false);
    assert.equal(h(input({ headers: { 'x-a': '2', 'x-b': 'v2' } })), false);
    const q = compile({
      query: [
        { name: 'debug', exact: 'on' },
        { name: 'id', present: true },
      ],
    });
    assert.equal(q(input({ query: 'debug=on&id=3' })), true);
    assert.equal(q(input({ query: 'debug=off&id=3' })), false);
    assert.equal(q(input({ query: 'debug=on' })), false);
  });
});

describe('RouteTable', () => {
  it('answers the first matching rule, then host routing, else undefined', () => {
    const table = new RouteTable<string>({
      rules: [
        { matches: compile({ path: { prefix: '/a' } }), route: 'a' },
        { matches: compile({ path: { prefix: '/' }, methods: ['POST'] }), route: 'post' },
      ],
      domain: 'mesh.local',
      hostRoute: (s) => `host:${s}`,
      maxHostServices: 2,
    });
    assert.equal(table.match(input({ path: '/a/b', host: 'users.mesh.local' })), 'a');
    assert.equal(table.match(input({ method: 'POST' })), 'post');
    assert.equal(table.match(input({ host: 'users.mesh.local' })), 'host:users');
    assert.equal(table.match(input({ host: 'mesh.local' })), undefined);
    assert.equal(table.match(input({ host: 'Bad_Name.mesh.local' })), undefined);
    assert.equal(table.match(input({ host: 'a.b.mesh.local' })), undefined);
    assert.equal(table.match(input({ host: 'orders.mesh.local' })), 'host:orders');
    // The cap keeps random Host headers from growing the table.
    assert.equal(table.match(input({ host: 'third.mesh.local' })), undefined);
    assert.equal(table.match(input({ host: 'users.mesh.local' })), 'host:users');
    // A forgotten host route frees its place, and is made again on its next use.
    table.forgetHost('orders');
    assert.equal(table.match(input({ host: 'third.mesh.local' })), 'host:third');
    assert.equal(table.match(input({ host: 'orders.mesh.local' })), undefined, 'the cap again');
  });
});
