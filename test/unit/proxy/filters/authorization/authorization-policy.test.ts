import assert from 'node:assert/strict';
import { BlockList, isIPv4 } from 'node:net';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseMeshResource } from '../../../../../src/protocol/mesh/parse.js';
import { authorizationPolicySpecSchema } from '../../../../../src/protocol/mesh/schema-security.js';
import type {
  AuthorizationCondition,
  AuthorizationOperation,
  AuthorizationPolicySpec,
  AuthorizationRule,
  AuthorizationSource,
} from '../../../../../src/protocol/mesh/specs.js';
import {
  ALLOWED,
  compileAuthorization,
  isAuthorizationProblems,
  NO_ALLOW_MATCHED,
  type AuthorizationPolicyEntry,
  type AuthorizationRequest,
  type AuthorizationVerdict,
  type CompiledAuthorization,
} from '../../../../../src/proxy/filters/authorization/authorization-policy.js';

const ORDERS = 'cluster.local/ns/default/sa/orders';
const PAYMENTS = 'cluster.local/ns/prod/sa/payments';

/** A request: GET /api/items from 10.1.2.3 to reviews:9080, plaintext, unless overridden. */
function req(o: Partial<AuthorizationRequest> = {}): AuthorizationRequest {
  const authority = o.authority ?? 'reviews:9080';
  return {
    method: 'GET',
    path: '/api/items',
    host: authority.replace(/:\d+$/, ''),
    headers: {},
    sourceIp: '10.1.2.3',
    destinationIp: '10.9.9.9',
    destinationPort: 9080,
    principal: undefined,
    namespace: undefined,
    sni: undefined,
    ...o,
    authority,
  };
}
const mtls = (principal: string, o: Partial<AuthorizationRequest> = {}) =>
  req({ principal, namespace: principal.split('/')[2], sni: 'outbound_.9080_._.reviews', ...o });

function compile(entries: AuthorizationPolicyEntry[]): CompiledAuthorization {
  const c = compileAuthorization(entries);
  if (isAuthorizationProblems(c)) assert.fail(c.problems.join('\n'));
  return c;
}
const policy = (
  name: string,
  action: AuthorizationPolicySpec['action'],
  rules?: AuthorizationRule[],
): AuthorizationPolicyEntry => ({
  key: `AuthorizationPolicy/default/${name}`,
  spec: rules === undefined ? { action } : { action, rules },
});
const from = (source: AuthorizationSource): AuthorizationRule => ({ from: [{ source }] });
const to = (operation: AuthorizationOperation): AuthorizationRule => ({ to: [{ operation }] });
const when = (...c: AuthorizationCondition[]): AuthorizationRule => ({ when: c });

/**
 * Every rule kind: a rule, requests it matches and requests it does not. Each is run as the
 * only rule of an ALLOW policy and of a DENY policy.
 */
const TABLE: {
  kind: string;
  rule: AuthorizationRule;
  yes: AuthorizationRequest[];
  no: AuthorizationRequest[];
}[] = [
  {
    kind: 'principals, exact',
    rule: from({ principals: [ORDERS] }),
    yes: [mtls(ORDERS)],
    no: [mtls(PAYMENTS), req(), req({ principal: ORDERS.toUpperCase() })],
  },
  {
    kind: 'principals, prefix',
    rule: from({ principals: ['cluster.local/ns/default/*'] }),
    yes: [mtls(ORDERS)],
    no: [mtls(PAYMENTS), req()],
  },
  {
    kind: 'principals, suffix',
    rule: from({ principals: ['*/sa/payments'] }),
    yes: [mtls(PAYMENTS)],
    no: [mtls(ORDERS), req()],
  },
  {
    kind: 'principals, presence (any mTLS peer)',
    rule: from({ principals: ['*'] }),
    yes: [mtls(ORDERS), mtls(PAYMENTS)],
    no: [req()],
  },
  {
    kind: 'notPrincipals (plaintext has no principal: it matches)',
    rule: from({ notPrincipals: [ORDERS] }),
    yes: [mtls(PAYMENTS), req()],
    no: [mtls(ORDERS)],
  },
  {
    kind: 'notPrincipals * (plaintext only)',
    rule: from({ notPrincipals: ['*'] }),
    yes: [req()],
    no: [mtls(ORDERS)],
  },
  {
    kind: 'namespaces',
    rule: from({ namespaces: ['prod'] }),
    yes: [mtls(PAYMENTS)],
    no: [mtls(ORDERS), req()],
  },
  {
    kind: 'notNamespaces',
    rule: from({ notNamespaces: ['prod'] }),
    yes: [mtls(ORDERS), req()],
    no: [mtls(PAYMENTS)],
  },
  {
    kind: 'ipBlocks, IPv4 CIDR and address',
    rule: from({ ipBlocks: ['10.0.0.0/8', '192.168.1.7'] }),
    yes: [req(), req({ sourceIp: '192.168.1.7' }), req({ sourceIp: '::ffff:10.0.0.1' })],
    no: [req({ sourceIp: '192.168.1.8' }), req({ sourceIp: '11.0.0.1' })],
  },
  {
    kind: 'ipBlocks, IPv6',
    rule: from({ ipBlocks: ['2001:db8::/32'] }),
    yes: [req({ sourceIp: '2001:db8::7' })],
    no: [req(), req({ sourceIp: '2001:db9::7' })],
  },
  {
    kind: 'notIpBlocks',
    rule: from({ notIpBlocks: ['10.0.0.0/8'] }),
    yes: [req({ sourceIp: '127.0.0.1' })],
    no: [req()],
  },
  {
    kind: 'remoteIpBlocks (the peer address)',
    rule: from({ remoteIpBlocks: ['10.1.2.0/24'] }),
    yes: [req()],
    no: [req({ sourceIp: '10.1.3.1' })],
  },
  {
    kind: 'notRemoteIpBlocks',
    rule: from({ notRemoteIpBlocks: ['10.1.2.0/24'] }),
    yes: [req({ sourceIp: '10.1.3.1' })],
    no: [req()],
  },
  {
    kind: 'hosts, case-insensitive, port-stripped',
    rule: to({ hosts: ['Reviews', '*.example.com'] }),
    yes: [req(), req({ authority: 'reviews' }), req({ authority: 'api.example.com:443' })],
    no: [req({ authority: 'ratings:9080' }), req({ authority: 'example.com' })],
  },
  {
    kind: 'hosts with a port: the authority',
    rule: to({ hosts: ['reviews:9080'] }),
    yes: [req()],
    no: [req({ authority: 'reviews:80' }), req({ authority: 'reviews' })],
  },
  {
    kind: 'notHosts',
    rule: to({ notHosts: ['reviews'] }),
    yes: [req({ authority: 'ratings' })],
    no: [req()],
  },
  {
    kind: 'ports (the workload port)',
    rule: to({ ports: ['9080'] }),
    yes: [req()],
    no: [req({ destinationPort: 8080 })],
  },
  {
    kind: 'notPorts',
    rule: to({ notPorts: ['9080'] }),
    yes: [req({ destinationPort: 8080 })],
    no: [req()],
  },
  {
    kind: 'methods',
    rule: to({ methods: ['GET', 'HEAD'] }),
    yes: [req(), req({ method: 'HEAD' })],
    no: [req({ method: 'POST' }), req({ method: 'get' })],
  },
  {
    kind: 'notMethods',
    rule: to({ notMethods: ['DELETE'] }),
    yes: [req()],
    no: [req({ method: 'DELETE' })],
  },
  {
    kind: 'paths, exact',
    rule: to({ paths: ['/api/items'] }),
    yes: [req()],
    no: [req({ path: '/api/items/1' }), req({ path: '/API/items' })],
  },
  {
    kind: 'paths, prefix',
    rule: to({ paths: ['/api/*'] }),
    yes: [req(), req({ path: '/api/' })],
    no: [req({ path: '/apix' }), req({ path: '/ap' })],
  },
  {
    kind: 'paths, suffix',
    rule: to({ paths: ['*.json'] }),
    yes: [req({ path: '/a/b.json' })],
    no: [req()],
  },
  {
    kind: 'paths, presence',
    rule: to({ paths: ['*'] }),
    yes: [req(), req({ path: '/' })],
    no: [],
  },
  {
    kind: 'notPaths',
    rule: to({ notPaths: ['/admin*'] }),
    yes: [req()],
    no: [req({ path: '/admin' }), req({ path: '/admin/users' })],
  },
  {
    kind: 'when request.headers[], exact (name case-insensitive)',
    rule: when({ key: 'request.headers[X-User]', values: ['alice'] }),
    yes: [req({ headers: { 'x-user': 'alice' } })],
    no: [req(), req({ headers: { 'x-user': 'bob' } }), req({ headers: { 'x-user': 'Alice' } })],
  },
  {
    kind: 'when request.headers[], prefix, suffix and presence',
    rule: when(
      { key: 'request.headers[x-a]', values: ['pre*'] },
      { key: 'request.headers[x-b]', values: ['*suf'] },
      { key: 'request.headers[x-c]', values: ['*'] },
    ),
    yes: [req({ headers: { 'x-a': 'prefix', 'x-b': 'a-suf', 'x-c': '' } })],
    no: [
      req({ headers: { 'x-a': 'xpre', 'x-b': 'a-suf', 'x-c': '1' } }),
      req({ headers: { 'x-a': 'pre', 'x-b': 'sufx', 'x-c': '1' } }),
      req({ headers: { 'x-a': 'pre', 'x-b': 'suf' } }),
    ],
  },
  {
    kind: 'when request.headers[], notValues (an absent header matches)',
    rule: when({ key: 'request.headers[x-user]', notValues: ['mallory'] }),
    yes: [req(), req({ headers: { 'x-user': 'alice' } })],
    no: [req({ headers: { 'x-user': 'mallory' } })],
  },
  {
    kind: 'when source.ip',
    rule: when({ key: 'source.ip', values: ['10.1.0.0/16'], notValues: ['10.1.9.9'] }),
    yes: [req()],
    no: [req({ sourceIp: '10.2.0.1' }), req({ sourceIp: '10.1.9.9' })],
  },
  {
    kind: 'when remote.ip',
    rule: when({ key: 'remote.ip', values: ['10.1.2.3'] }),
    yes: [req()],
    no: [req({ sourceIp: '10.1.2.4' })],
  },
  {
    kind: 'when destination.ip',
    rule: when({ key: 'destination.ip', notValues: ['10.9.9.0/24'] }),
    yes: [req({ destinationIp: '127.0.0.1' })],
    no: [req()],
  },
  {
    kind: 'when source.namespace',
    rule: when({ key: 'source.namespace', values: ['default'] }),
    yes: [mtls(ORDERS)],
    no: [mtls(PAYMENTS), req()],
  },
  {
    kind: 'when source.principal',
    rule: when({ key: 'source.principal', notValues: [ORDERS] }),
    yes: [mtls(PAYMENTS), req()],
    no: [mtls(ORDERS)],
  },
  {
    kind: 'when destination.port',
    rule: when({ key: 'destination.port', values: ['9080', '9081'] }),
    yes: [req(), req({ destinationPort: 9081 })],
    no: [req({ destinationPort: 80 })],
  },
  {
    kind: 'when connection.sni',
    rule: when({ key: 'connection.sni', values: ['*.reviews'] }),
    yes: [mtls(ORDERS)],
    no: [req()],
  },
];

describe('AuthorizationPolicy evaluation', () => {
  for (const { kind, rule, yes, no } of TABLE) {
    it(`${kind}: an ALLOW policy allows what it matches, only that; a DENY policy denies it, only that`, () => {
      const allow = compile([policy('allow', 'ALLOW', [rule])]);
      const deny = compile([policy('deny', 'DENY', [rule])]);
      for (const r of yes) {
        assert.equal(allow.evaluate(r), ALLOWED, `ALLOW should match ${JSON.stringify(r)}`);
        assert.deepEqual(
          deny.evaluate(r),
          { allowed: false, action: 'DENY', policy: 'default/deny' },
          `DENY should match ${JSON.stringify(r)}`,
        );
      }
      for (const r of no) {
        assert.equal(
          allow.evaluate(r),
          NO_ALLOW_MATCHED,
          `ALLOW should not match ${JSON.stringify(r)}`,
        );
        assert.equal(deny.evaluate(r), ALLOWED, `DENY should not match ${JSON.stringify(r)}`);
      }
    });
  }

  it('no policy: everything is allowed', () => {
    assert.equal(compile([]).evaluate(req()), ALLOWED);
    assert.equal(compile([]).empty, true);
  });

  it('spec: {} (ALLOW without rules) denies everything; a DENY without rules denies nothing', () => {
    const denyAll = compile([{ key: 'AuthorizationPolicy/default/deny-all', spec: {} as never }]);
    assert.equal(denyAll.evaluate(req()), NO_ALLOW_MATCHED);
    assert.equal(denyAll.evaluate(mtls(ORDERS)), NO_ALLOW_MATCHED);
    const empty = compile([policy('nothing', 'DENY')]);
    assert.equal(empty.evaluate(req()), ALLOWED);
    const emptyRules = compile([policy('nothing', 'ALLOW', [])]);
    assert.equal(emptyRules.evaluate(req()), NO_ALLOW_MATCHED);
  });

  it('a rule with no from, to or when matches everything', () => {
    assert.equal(compile([policy('all', 'ALLOW', [{}])]).evaluate(req()), ALLOWED);
    const deny = compile([policy('all', 'DENY', [{}])]);
    assert.equal(deny.evaluate(req()).allowed, false);
  });

  it('DENY before ALLOW; the first matching DENY policy (in the snapshot’s order) is named', () => {
    const c = compile([
      policy('allow-all', 'ALLOW', [{}]),
      policy('deny-admin', 'DENY', [to({ paths: ['/admin*'] })]),
      policy('deny-post', 'DENY', [to({ methods: ['POST'] })]),
    ]);
    assert.equal(c.evaluate(req()), ALLOWED);
    assert.deepEqual(c.evaluate(req({ path: '/admin' })), {
      allowed: false,
      action: 'DENY',
      policy: 'default/deny-admin',
    });
    assert.equal(
      (c.evaluate(req({ path: '/admin', method: 'POST' })) as { policy: string }).policy,
      'default/deny-admin',
    );
    assert.equal(
      (c.evaluate(req({ method: 'POST' })) as { policy: string }).policy,
      'default/deny-post',
    );
  });

  it('any ALLOW policy matching allows; several ALLOW policies are ORed', () => {
    const c = compile([
      policy('a', 'ALLOW', [to({ methods: ['GET'] })]),
      policy('b', 'ALLOW', [to({ methods: ['POST'] })]),
    ]);
    assert.equal(c.evaluate(req()), ALLOWED);
    assert.equal(c.evaluate(req({ method: 'POST' })), ALLOWED);
    assert.equal(c.evaluate(req({ method: 'PUT' })), NO_ALLOW_MATCHED);
  });

  it('within a rule from, to and when are ANDed; their lists are ORed; fields within one are ANDed', () => {
    const c = compile([
      policy('p', 'ALLOW', [
        {
          from: [{ source: { principals: [ORDERS] } }, { source: { namespaces: ['prod'] } }],
          to: [
            { operation: { methods: ['GET'], paths: ['/api/*'] } },
            { operation: { methods: ['POST'], paths: ['/data'] } },
          ],
          when: [
            { key: 'request.headers[x-a]', values: ['1'] },
            { key: 'source.ip', values: ['10.0.0.0/8'] },
          ],
        },
      ]),
    ]);
    const h = { 'x-a': '1' };
    assert.equal(c.evaluate(mtls(ORDERS, { headers: h })), ALLOWED);
    assert.equal(c.evaluate(mtls(PAYMENTS, { headers: h })), ALLOWED); // the other source
    assert.equal(c.evaluate(mtls(ORDERS, { headers: h, method: 'POST', path: '/data' })), ALLOWED);
    // Fields of one operation are ANDed: POST on /api/items is neither operation.
    assert.equal(c.evaluate(mtls(ORDERS, { headers: h, method: 'POST' })), NO_ALLOW_MATCHED);
    // Every condition must hold.
    assert.equal(c.evaluate(mtls(ORDERS)), NO_ALLOW_MATCHED);
    assert.equal(
      c.evaluate(mtls(ORDERS, { headers: h, sourceIp: '192.168.0.1' })),
      NO_ALLOW_MATCHED,
    );
    // from fails: plaintext.
    assert.equal(c.evaluate(req({ headers: h })), NO_ALLOW_MATCHED);
  });

  it('a list field and its notX in one source are both required', () => {
    const c = compile([
      policy('p', 'ALLOW', [
        from({ principals: ['cluster.local/ns/default/*'], notPrincipals: [ORDERS] }),
      ]),
    ]);
    assert.equal(c.evaluate(mtls('cluster.local/ns/default/sa/users')), ALLOWED);
    assert.equal(c.evaluate(mtls(ORDERS)), NO_ALLOW_MATCHED);
  });

  it('AUDIT policies never change the decision; audits() names the ones that match', () => {
    const c = compile([
      policy('audit-admin', 'AUDIT', [to({ paths: ['/admin*'] })]),
      policy('audit-all', 'AUDIT', [{}]),
    ]);
    assert.equal(c.evaluate(req({ path: '/admin' })), ALLOWED);
    assert.deepEqual(c.audits(req({ path: '/admin' })), [
      'default/audit-admin',
      'default/audit-all',
    ]);
    assert.deepEqual(c.audits(req()), ['default/audit-all']);
    const none = compile([policy('audit-admin', 'AUDIT', [to({ paths: ['/admin*'] })])]);
    assert.equal(none.audits(req()), undefined);
    // An AUDIT policy is not an ALLOW policy: it does not turn on deny-by-default.
    assert.equal(none.evaluate(req()), ALLOWED);
  });

  it('the seed 003 policy: pedido-service and inventario-service GET/POST /usuarios/*, api-gateway anything', () => {
    const c = compile([
      {
        key: 'AuthorizationPolicy/default/usuario-service-policy',
        spec: {
          action: 'ALLOW',
          selector: { matchLabels: { app: 'usuario-service' } },
          rules: [
            {
              from: [
                {
                  source: {
                    principals: [
                      'cluster.local/ns/default/sa/pedido-service',
                      'cluster.local/ns/default/sa/inventario-service',
                    ],
                  },
                },
              ],
              to: [{ operation: { methods: ['GET', 'POST'], paths: ['/usuarios/*'] } }],
            },
            {
              from: [{ source: { principals: ['cluster.local/ns/default/sa/api-gateway'] } }],
              to: [{ operation: { methods: ['GET', 'POST', 'PUT', 'DELETE'] } }],
            },
          ],
        },
      },
    ]);
    const pedido = 'cluster.local/ns/default/sa/pedido-service';
    assert.equal(c.evaluate(mtls(pedido, { path: '/usuarios/1' })), ALLOWED);
    assert.equal(c.evaluate(mtls(pedido, { path: '/usuarios/1', method: 'POST' })), ALLOWED);
    assert.equal(
      c.evaluate(mtls(pedido, { path: '/usuarios/1', method: 'DELETE' })),
      NO_ALLOW_MATCHED,
    );
    assert.equal(c.evaluate(mtls(pedido, { path: '/pedidos/1' })), NO_ALLOW_MATCHED);
    assert.equal(c.evaluate(req({ path: '/usuarios/1' })), NO_ALLOW_MATCHED);
    const gw = 'cluster.local/ns/default/sa/api-gateway';
    assert.equal(c.evaluate(mtls(gw, { path: '/anything', method: 'DELETE' })), ALLOWED);
    assert.equal(c.evaluate(mtls(gw, { method: 'PATCH' })), NO_ALLOW_MATCHED);
  });
});

describe('compileAuthorization refusals', () => {
  const problems = (entries: AuthorizationPolicyEntry[]): string[] => {
    const c = compileAuthorization(entries);
    assert.ok(isAuthorizationProblems(c), 'should be refused');
    return [...c.problems];
  };

  it('refuses CUSTOM, naming the policy and the field', () => {
    const p = problems([
      {
        key: 'AuthorizationPolicy/default/ext',
        spec: { action: 'CUSTOM', provider: { name: 'opa' }, rules: [{}] },
      },
    ]);
    assert.equal(p.length, 1);
    assert.match(
      p[0] as string,
      /AuthorizationPolicy\/default\/ext: spec\.action: CUSTOM \(provider "opa"\) is not supported/,
    );
  });

  it('refuses JWT fields, unknown condition keys, bad blocks, ports and path templates', () => {
    const p = problems([
      {
        key: 'AuthorizationPolicy/default/bad',
        spec: {
          action: 'ALLOW',
          rules: [
            {
              from: [{ source: { requestPrincipals: ['*'] } as AuthorizationSource }],
              to: [{ operation: { ports: ['0'], paths: ['/a/{*}/b'] } }],
              when: [
                { key: 'request.auth.claims[iss]', values: ['x'] },
                { key: 'source.ip', values: ['10.0.0.0/40'] },
                { key: 'destination.port', values: ['http'] },
              ],
            },
          ],
        },
      },
    ]);
    const text = p.join('\n');
    assert.match(text, /rules\[0\]\.from\[0\]\.source\.requestPrincipals: not supported: .*JWT/);
    assert.match(text, /rules\[0\]\.to\[0\]\.operation\.ports\[0\]: "0" is not a port/);
    assert.match(text, /rules\[0\]\.to\[0\]\.operation\.paths\[0\]: .*path templates/);
    assert.match(
      text,
      /rules\[0\]\.when\[0\]\.key: "request\.auth\.claims\[iss\]" is not supported/,
    );
    assert.match(text, /rules\[0\]\.when\[1\]\.values\[0\]: .*prefix length/);
    assert.match(text, /rules\[0\]\.when\[2\]\.values\[0\]: "http" is not a port/);
  });

  it('apply refuses the same JWT fields and path templates, with the reason; takes remoteIpBlocks', () => {
    const parsed = parseMeshResource({
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'p' },
      spec: {
        rules: [
          {
            from: [{ source: { requestPrincipals: ['*'] } }],
            to: [{ operation: { paths: ['/{**}'] } }],
          },
        ],
      },
    });
    assert.ok(!parsed.ok);
    const text = parsed.problems.map((p) => `${p.path}: ${p.reason}`).join('\n');
    assert.match(text, /spec\.rules\[0\]\.from\[0\]\.source\.requestPrincipals: not supported/);
    assert.match(text, /spec\.rules\[0\]\.to\[0\]\.operation\.paths\[0\]: path templates/);
    const ok = authorizationPolicySpecSchema.safeParse({
      rules: [
        { from: [{ source: { remoteIpBlocks: ['10.0.0.0/8'], notRemoteIpBlocks: ['::1'] } }] },
      ],
    });
    assert.equal(ok.success, true, JSON.stringify(ok.error?.issues));
  });

  it('never throws on malformed input from the wire', () => {
    fc.assert(
      fc.property(fc.anything(), fc.string(), (spec, key) => {
        compileAuthorization([{ key, spec: spec as AuthorizationPolicySpec }]);
      }),
      { numRuns: 2000 },
    );
  });
});

// --- Property tests against a reference model -------------------------------------------------

/** The values the random policies and requests draw from, small so that they meet. */
const PRINCIPALS = [ORDERS, PAYMENTS, 'cluster.local/ns/default/sa/users'];
const principalPattern = fc.constantFrom(
  ...PRINCIPALS,
  '*',
  'cluster.local/ns/default/*',
  '*/sa/payments',
);
const nsPattern = fc.constantFrom('default', 'prod', '*', 'de*', '*od');
const blockPattern = fc.constantFrom('10.0.0.0/8', '10.1.2.3', '127.0.0.1/32', '::1', '0.0.0.0/0');
const hostPattern = fc.constantFrom(
  'reviews',
  'REVIEWS',
  'ratings',
  '*.example.com',
  'reviews:9080',
  '*',
);
const portPattern = fc.constantFrom('9080', '8080');
const methodPattern = fc.constantFrom('GET', 'POST', 'DELETE');
const pathPattern = fc.constantFrom('/api/items', '/api/*', '/admin*', '*.json', '*', '/');
const headerPattern = fc.constantFrom('alice', 'bob', 'a*', '*e', '*');
const list = <T>(a: fc.Arbitrary<T>) => fc.array(a, { minLength: 1, maxLength: 3 });
const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
const defined = <T extends object>(o: T): T =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

const sourceArb: fc.Arbitrary<AuthorizationSource> = fc
  .record({
    principals: opt(list(principalPattern)),
    notPrincipals: opt(list(principalPattern)),
    namespaces: opt(list(nsPattern)),
    notNamespaces: opt(list(nsPattern)),
    ipBlocks: opt(list(blockPattern)),
    notIpBlocks: opt(list(blockPattern)),
  })
  .map(defined)
  .filter((s) => Object.keys(s).length > 0);
const operationArb: fc.Arbitrary<AuthorizationOperation> = fc
  .record({
    hosts: opt(list(hostPattern)),
    notHosts: opt(list(hostPattern)),
    ports: opt(list(portPattern)),
    notPorts: opt(list(portPattern)),
    methods: opt(list(methodPattern)),
    notMethods: opt(list(methodPattern)),
    paths: opt(list(pathPattern)),
    notPaths: opt(list(pathPattern)),
  })
  .map(defined)
  .filter((o) => Object.keys(o).length > 0);
const conditionArb: fc.Arbitrary<AuthorizationCondition> = fc
  .oneof(
    fc
      .record({ values: opt(list(headerPattern)), notValues: opt(list(headerPattern)) })
      .map((c) => ({ key: 'request.headers[x-user]', ...defined(c) })),
    fc
      .record({ values: opt(list(blockPattern)), notValues: opt(list(blockPattern)) })
      .map((c) => ({ key: 'source.ip', ...defined(c) })),
    fc
      .record({ values: opt(list(principalPattern)), notValues: opt(list(principalPattern)) })
      .map((c) => ({ key: 'source.principal', ...defined(c) })),
    fc
      .record({ values: opt(list(portPattern)), notValues: opt(list(portPattern)) })
      .map((c) => ({ key: 'destination.port', ...defined(c) })),
  )
  .filter((c) => c.values !== undefined || c.notValues !== undefined);
const ruleArb: fc.Arbitrary<AuthorizationRule> = fc
  .record({
    from: opt(list(sourceArb.map((source) => ({ source })))),
    to: opt(list(operationArb.map((operation) => ({ operation })))),
    when: opt(list(conditionArb)),
  })
  .map(defined);
const specArb: fc.Arbitrary<AuthorizationPolicySpec> = fc
  .record({
    action: fc.constantFrom('ALLOW', 'DENY', 'AUDIT') as fc.Arbitrary<'ALLOW' | 'DENY' | 'AUDIT'>,
    rules: opt(fc.array(ruleArb, { maxLength: 3 })),
  })
  .map(defined);
const entriesArb = fc.array(specArb, { maxLength: 4 }).map((specs) =>
  specs.map((spec, i): AuthorizationPolicyEntry => ({
    key: `AuthorizationPolicy/default/p${i}`,
    spec,
  })),
);
const requestArb: fc.Arbitrary<AuthorizationRequest> = fc
  .record({
    principal: fc.option(fc.constantFrom(...PRINCIPALS), { nil: undefined }),
    method: methodPattern,
    path: fc.constantFrom('/api/items', '/admin/x', '/a.json', '/', '/api'),
    authority: fc.constantFrom('reviews:9080', 'reviews', 'Ratings', 'api.example.com:443'),
    user: fc.option(fc.constantFrom('alice', 'bob', 'eve', ''), { nil: undefined }),
    sourceIp: fc.constantFrom('10.1.2.3', '127.0.0.1', '::1', '192.168.0.1', '::ffff:10.0.0.1'),
    destinationPort: fc.constantFrom(9080, 8080),
  })
  .map(({ principal, user, authority, ...r }) =>
    req({
      ...r,
      authority: authority.toLowerCase(),
      principal,
      namespace: principal?.split('/')[2],
      headers: user === undefined ? {} : { 'x-user': user },
    }),
  );

/** The reference: Istio's rules as written in its docs, evaluated naively. */
function refString(pattern: string, v: string | undefined): boolean {
  if (v === undefined) return false;
  if (pattern === '*') return true;
  if (pattern.startsWith('*')) return v.endsWith(pattern.slice(1));
  if (pattern.endsWith('*')) return v.startsWith(pattern.slice(0, -1));
  return v === pattern;
}
function refIp(pattern: string, ip: string): boolean {
  const [net, bits] = pattern.split('/');
  const v4 = isIPv4(net as string);
  const list = new BlockList();
  list.addSubnet(
    net as string,
    bits === undefined ? (v4 ? 32 : 128) : Number(bits),
    v4 ? 'ipv4' : 'ipv6',
  );
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(ip);
  const addr = mapped ? (mapped[1] as string) : ip;
  return isIPv4(addr) === v4 && list.check(addr, v4 ? 'ipv4' : 'ipv6');
}
function refField<T>(
  v: T,
  yes: readonly string[] | undefined,
  no: readonly string[] | undefined,
  m: (p: string, v: T) => boolean,
): boolean {
  return (
    (yes === undefined || yes.some((p) => m(p, v))) &&
    (no === undefined || !no.some((p) => m(p, v)))
  );
}
function refHost(p: string, r: AuthorizationRequest): boolean {
  const lower = p.toLowerCase();
  return /:\d+$/.test(lower) ? refString(lower, r.authority) : refString(lower, r.host);
}
function refRule(rule: AuthorizationRule, r: AuthorizationRequest): boolean {
  const fromOk =
    rule.from === undefined ||
    rule.from.some(
      ({ source: s }) =>
        refField(r.principal, s.principals, s.notPrincipals, refString) &&
        refField(r.namespace, s.namespaces, s.notNamespaces, refString) &&
        refField(r.sourceIp, s.ipBlocks, s.notIpBlocks, refIp),
    );
  const toOk =
    rule.to === undefined ||
    rule.to.some(
      ({ operation: o }) =>
        refField(r, o.hosts, o.notHosts, refHost) &&
        refField(String(r.destinationPort), o.ports, o.notPorts, (p, v) => p === v) &&
        refField(r.method, o.methods, o.notMethods, refString) &&
        refField(r.path, o.paths, o.notPaths, refString),
    );
  const whenOk = (rule.when ?? []).every((c) => {
    switch (c.key) {
      case 'source.ip':
        return refField(r.sourceIp, c.values, c.notValues, refIp);
      case 'source.principal':
        return refField(r.principal, c.values, c.notValues, refString);
      case 'destination.port':
        return refField(String(r.destinationPort), c.values, c.notValues, (p, v) => p === v);
      default: {
        const h = r.headers['x-user'];
        return refField(typeof h === 'string' ? h : undefined, c.values, c.notValues, refString);
      }
    }
  });
  return fromOk && toOk && whenOk;
}
function refMatches(spec: AuthorizationPolicySpec, r: AuthorizationRequest): boolean {
  return (spec.rules ?? []).some((rule) => refRule(rule, r));
}
function refEvaluate(
  entries: AuthorizationPolicyEntry[],
  r: AuthorizationRequest,
): AuthorizationVerdict {
  const deny = entries.find((e) => e.spec.action === 'DENY' && refMatches(e.spec, r));
  if (deny)
    return { allowed: false, action: 'DENY', policy: deny.key.replace('AuthorizationPolicy/', '') };
  const allow = entries.filter((e) => e.spec.action === 'ALLOW');
  if (allow.length === 0 || allow.some((e) => refMatches(e.spec, r))) return ALLOWED;
  return NO_ALLOW_MATCHED;
}

describe('AuthorizationPolicy evaluation (fast-check)', () => {
  it('every generated spec is schema-valid, and compiles without problems', () => {
    fc.assert(
      fc.property(specArb, (spec) => {
        const parsed = authorizationPolicySpecSchema.safeParse(spec);
        assert.ok(parsed.success, JSON.stringify(parsed.error?.issues));
        const c = compileAuthorization([
          { key: 'AuthorizationPolicy/default/p', spec: parsed.data },
        ]);
        assert.ok(!isAuthorizationProblems(c), JSON.stringify(c));
      }),
      { numRuns: 500 },
    );
  });

  it('agrees with the reference model, is a pure function, and DENY always wins', () => {
    fc.assert(
      fc.property(
        entriesArb,
        fc.array(requestArb, { minLength: 1, maxLength: 5 }),
        (entries, reqs) => {
          const c = compile(entries);
          for (const r of reqs) {
            const got = c.evaluate(r);
            assert.deepEqual(got, refEvaluate(entries, r), JSON.stringify({ entries, r }));
            assert.equal(c.evaluate(r), got); // the same constant object, again
            const denyMatched = entries.some(
              (e) => e.spec.action === 'DENY' && refMatches(e.spec, r),
            );
            if (denyMatched) assert.equal((got as { action?: string }).action, 'DENY');
            const audited = entries
              .filter((e) => e.spec.action === 'AUDIT' && refMatches(e.spec, r))
              .map((e) => e.key.replace('AuthorizationPolicy/', ''));
            assert.deepEqual(c.audits(r) ?? [], audited);
          }
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('adding an ALLOW-everything policy never lets a DENY-matched request through', () => {
    fc.assert(
      fc.property(entriesArb, requestArb, (entries, r) => {
        const before = compile(entries).evaluate(r);
        const after = compile([...entries, policy('allow-everything', 'ALLOW', [{}])]).evaluate(r);
        if (!before.allowed && before.action === 'DENY') assert.deepEqual(after, before);
        else assert.equal(after, ALLOWED);
      }),
      { numRuns: 500 },
    );
  });
});
