/**
 * Registry ACLs over real HTTP on a real agent with `--acl-default-policy deny` (issue 20): each
 * endpoint group (native services, Consul agent/catalog/health, KV, mesh, push, acl, metrics)
 * called with no token, a read-everything token, a write token for another service (orders) and
 * the right token (payments), and the status each must answer; lists filtered, not refused.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { http, startTestAgent, type TestAgent } from '../helpers/agent.js';

type Who = 'none' | 'read' | 'other' | 'right';
const WHO: readonly Who[] = ['none', 'read', 'other', 'right'];

const READ_ALL = `
service_prefix "" { policy = "read" }
key_prefix "" { policy = "read" }
node_prefix "" { policy = "read" }
agent_prefix "" { policy = "read" }
mesh = "read"
acl = "read"
`;
const ORDERS_WRITE = `
service "orders" { policy = "write" }
key_prefix "orders/" { policy = "write" }
`;
const PAYMENTS_ALL = `
service "payments" { policy = "write" }
key_prefix "payments/" { policy = "write" }
node_prefix "" { policy = "write" }
agent_prefix "" { policy = "write" }
mesh = "write"
acl = "write"
`;

/** One endpoint: the status each token gets, and what a filtered list must (not) show. */
interface Row {
  readonly group: string;
  readonly method: string;
  readonly path: string;
  readonly body?: unknown;
  readonly expect: readonly [number, number, number, number];
  /** For filtered lists: whether the answer shows payments, per token. */
  readonly seesPayments?: readonly [boolean, boolean, boolean, boolean];
  /** A stream: only its status is read. */
  readonly stream?: boolean;
}

const dr = {
  apiVersion: 'networking.istio.io/v1beta1',
  kind: 'DestinationRule',
  metadata: { name: 'payments' },
  spec: { host: 'payments', subsets: [{ name: 'v1', labels: { version: 'v1' } }] },
};

const D = 403;
const ROWS: readonly Row[] = [
  // native services
  {
    group: 'native services',
    method: 'PUT',
    path: '/api/v1/instances',
    body: { service: 'payments', id: 'pay-n', address: '10.0.0.9', port: 80 },
    expect: [D, D, D, 200],
  },
  {
    group: 'native services',
    method: 'GET',
    path: '/api/v1/services/payments/instances',
    expect: [D, 200, D, 200],
  },
  {
    group: 'native services',
    method: 'GET',
    path: '/api/v1/instances/pay-1',
    expect: [D, 200, D, 200],
  },
  {
    group: 'native services',
    method: 'PUT',
    path: '/api/v1/instances/pay-1/heartbeat',
    body: {},
    expect: [D, D, D, 200],
  },
  {
    group: 'native services',
    method: 'PUT',
    path: '/api/v1/instances/pay-1/maintenance',
    body: { enabled: false },
    expect: [D, D, D, 200],
  },
  {
    group: 'native services',
    method: 'DELETE',
    path: '/api/v1/instances/pay-1',
    expect: [D, D, D, 200],
  },
  {
    group: 'native services',
    method: 'GET',
    path: '/api/v1/services',
    expect: [200, 200, 200, 200],
    seesPayments: [false, true, false, true],
  },
  {
    group: 'native services',
    method: 'PUT',
    path: '/api/v1/apply',
    body: {
      set: 'matrix',
      instances: [{ service: 'payments', id: 'pay-a', address: '10.0.0.8', port: 80 }],
    },
    expect: [D, D, D, 200],
  },
  {
    group: 'native services',
    method: 'GET',
    path: '/api/v1/watch?service=payments',
    stream: true,
    expect: [D, 200, D, 200],
  },
  { group: 'native agent', method: 'GET', path: '/api/v1/agent', expect: [D, 200, D, 200] },
  {
    group: 'native agent',
    method: 'PUT',
    path: '/api/v1/agent/maintenance',
    body: { enabled: false },
    expect: [D, D, D, 200],
  },
  // native KV
  {
    group: 'native kv',
    method: 'PUT',
    path: '/api/v1/kv/payments/x',
    body: 'v',
    expect: [D, D, D, 200],
  },
  {
    group: 'native kv',
    method: 'GET',
    path: '/api/v1/kv/payments/config',
    expect: [D, 200, D, 200],
  },
  {
    group: 'native kv',
    method: 'GET',
    path: '/api/v1/kv/?recurse',
    expect: [200, 200, 200, 200],
    seesPayments: [false, true, false, true],
  },
  {
    group: 'native kv',
    method: 'DELETE',
    path: '/api/v1/kv/payments/config',
    expect: [D, D, D, 200],
  },
  // mesh and push
  {
    group: 'mesh',
    method: 'POST',
    path: '/api/v1/mesh/apply',
    body: { documents: [dr] },
    expect: [D, D, D, 200],
  },
  { group: 'mesh', method: 'GET', path: '/api/v1/mesh/resources', expect: [D, 200, D, 200] },
  {
    group: 'mesh',
    method: 'DELETE',
    path: '/api/v1/mesh/resources/DestinationRule/default/payments',
    expect: [D, D, D, 200],
  },
  { group: 'mesh', method: 'GET', path: '/api/v1/mesh/proxies', expect: [D, 200, D, 200] },
  {
    group: 'mesh',
    method: 'GET',
    path: '/api/v1/mesh/stream?id=px-1&kind=sidecar&name=payments',
    stream: true,
    expect: [D, 200, D, 200],
  },
  {
    group: 'mesh',
    method: 'POST',
    path: '/api/v1/mesh/ack',
    body: { id: 'px-none', version: 'v1' },
    // Past the ACL check, an ACK for a proxy without a stream here is a 404.
    expect: [D, 404, D, 404],
  },
  // The call graph (issue 21): a proxy posts edges with mesh read; the graph also takes read
  // on every service (it lists them all).
  {
    group: 'mesh',
    method: 'POST',
    path: '/api/v1/mesh/edges',
    body: { proxy: 'px-1', reporter: 'destination', intervalMs: 1000, edges: [] },
    expect: [D, 204, D, 204],
  },
  { group: 'mesh', method: 'GET', path: '/api/v1/mesh/graph', expect: [D, 200, D, D] },
  // Consul Connect intentions (AuthorizationPolicies: mesh rights) and authorize
  {
    group: 'intentions',
    method: 'PUT',
    path: '/v1/connect/intentions/exact?source=orders&destination=payments',
    body: { Action: 'allow' },
    expect: [D, D, D, 200],
  },
  { group: 'intentions', method: 'GET', path: '/v1/connect/intentions', expect: [D, 200, D, 200] },
  {
    group: 'intentions',
    method: 'GET',
    path: '/v1/connect/intentions/check?source=orders&destination=payments',
    expect: [D, 200, D, 200],
  },
  {
    group: 'intentions',
    method: 'POST',
    path: '/v1/agent/connect/authorize',
    body: { Target: 'payments', ClientCertURI: 'spiffe://cluster.local/ns/default/sa/orders' },
    expect: [D, D, D, 200],
  },
  {
    group: 'intentions',
    method: 'DELETE',
    path: '/v1/connect/intentions/exact?source=orders&destination=payments',
    expect: [D, D, D, 200],
  },
  // Consul agent
  {
    group: 'consul agent',
    method: 'PUT',
    path: '/v1/agent/service/register',
    body: { Name: 'payments', ID: 'pay-2', Port: 80 },
    expect: [D, D, D, 200],
  },
  {
    group: 'consul agent',
    method: 'PUT',
    path: '/v1/agent/service/deregister/pay-3',
    expect: [D, D, D, 200],
  },
  {
    group: 'consul agent',
    method: 'GET',
    path: '/v1/agent/services',
    expect: [200, 200, 200, 200],
    seesPayments: [false, true, false, true],
  },
  {
    group: 'consul agent',
    method: 'GET',
    path: '/v1/agent/service/pay-1',
    expect: [D, 200, D, 200],
  },
  {
    group: 'consul agent',
    method: 'PUT',
    path: '/v1/agent/check/pass/service:pay-1',
    expect: [D, D, D, 200],
  },
  { group: 'consul agent', method: 'GET', path: '/v1/agent/self', expect: [D, 200, D, 200] },
  // Consul catalog
  {
    group: 'consul catalog',
    method: 'GET',
    path: '/v1/catalog/services',
    expect: [200, 200, 200, 200],
    seesPayments: [false, true, false, true],
  },
  {
    group: 'consul catalog',
    method: 'GET',
    path: '/v1/catalog/service/payments',
    expect: [200, 200, 200, 200],
    seesPayments: [false, true, false, true],
  },
  {
    group: 'consul catalog',
    method: 'PUT',
    path: '/v1/catalog/register',
    body: {
      Node: 'test-node',
      Address: '127.0.0.1',
      Service: { Service: 'payments', ID: 'pay-4', Port: 80 },
    },
    expect: [D, D, D, 200],
  },
  {
    group: 'consul catalog',
    method: 'PUT',
    path: '/v1/catalog/deregister',
    body: { Node: 'test-node', ServiceID: 'pay-3' },
    expect: [D, D, D, 200],
  },
  // Consul health
  {
    group: 'consul health',
    method: 'GET',
    path: '/v1/health/service/payments',
    expect: [200, 200, 200, 200],
    seesPayments: [false, true, false, true],
  },
  {
    group: 'consul health',
    method: 'GET',
    path: '/v1/health/checks/payments',
    expect: [200, 200, 200, 200],
    seesPayments: [false, true, false, true],
  },
  {
    group: 'consul health',
    method: 'GET',
    path: '/v1/health/state/any',
    expect: [200, 200, 200, 200],
    seesPayments: [false, true, false, true],
  },
  // Consul KV
  {
    group: 'consul kv',
    method: 'PUT',
    path: '/v1/kv/payments/y',
    body: 'v',
    expect: [D, D, D, 200],
  },
  { group: 'consul kv', method: 'GET', path: '/v1/kv/payments/config', expect: [D, 200, D, 200] },
  {
    group: 'consul kv',
    method: 'GET',
    path: '/v1/kv/?recurse',
    // Nothing readable is Consul's 404 for an empty listing.
    expect: [404, 200, 200, 200],
    seesPayments: [false, true, false, true],
  },
  { group: 'consul kv', method: 'DELETE', path: '/v1/kv/payments/config', expect: [D, D, D, 200] },
  {
    group: 'consul kv',
    method: 'DELETE',
    path: '/v1/kv/?recurse',
    expect: [D, D, D, D],
  },
  // Consul intentions (AuthorizationPolicies underneath)
  {
    group: 'consul connect',
    method: 'GET',
    path: '/v1/connect/intentions',
    expect: [D, 200, D, 200],
  },
  {
    group: 'consul connect',
    method: 'PUT',
    path: '/v1/connect/intentions/exact?source=orders&destination=payments',
    body: { Action: 'allow' },
    expect: [D, D, D, 200],
  },
  // ACL endpoints
  {
    group: 'acl',
    method: 'PUT',
    path: '/v1/acl/policy',
    body: { Name: 'made-in-matrix', Rules: 'service "x" { policy = "read" }' },
    expect: [D, D, D, 200],
  },
  { group: 'acl', method: 'GET', path: '/v1/acl/policies', expect: [D, 200, D, 200] },
  { group: 'acl', method: 'GET', path: '/v1/acl/tokens', expect: [D, 200, D, 200] },
  {
    group: 'acl',
    method: 'PUT',
    path: '/v1/acl/token',
    body: { Description: 'matrix', Policies: [{ Name: 'read-all' }] },
    expect: [D, D, D, 200],
  },
  { group: 'acl', method: 'GET', path: '/v1/acl/token/self', expect: [D, 200, 200, 200] },
  // agent-wide
  { group: 'metrics', method: 'GET', path: '/metrics', expect: [D, 200, D, 200] },
  { group: 'status', method: 'GET', path: '/v1/status/leader', expect: [200, 200, 200, 200] },
];

describe('registry ACL matrix (--acl-default-policy deny)', () => {
  let agent: TestAgent;
  let management = '';
  const tokens: Record<Who, string | undefined> = {
    none: undefined,
    read: undefined,
    other: undefined,
    right: undefined,
  };
  const as = (secret: string | undefined): Record<string, string> =>
    secret === undefined ? {} : { 'x-consul-token': secret };
  const admin = async (method: string, path: string, body?: unknown) => {
    const r = await http(agent.url, method, path, body, as(management));
    assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${r.text}`);
    return r.body;
  };

  /** The state every row starts from (writes of earlier rows undone). */
  const reset = async (): Promise<void> => {
    await admin('PUT', '/v1/agent/service/register', {
      Name: 'payments',
      ID: 'pay-1',
      Port: 80,
      Check: { TTL: '60s' },
    });
    await admin('PUT', '/v1/agent/service/register', { Name: 'payments', ID: 'pay-3', Port: 81 });
    await admin('PUT', '/v1/agent/service/register', { Name: 'orders', ID: 'ord-1', Port: 82 });
    await admin('PUT', '/v1/kv/payments/config', 'p');
    await admin('PUT', '/v1/kv/orders/config', 'o');
    await admin('POST', '/api/v1/mesh/apply', { documents: [dr] });
  };

  before(async () => {
    agent = await startTestAgent({ flags: { acl: { enabled: true, defaultPolicy: 'deny' } } });
    const boot = await http(agent.url, 'PUT', '/v1/acl/bootstrap');
    assert.equal(boot.status, 200, boot.text);
    management = boot.body.SecretID as string;
    for (const [name, rules, who] of [
      ['read-all', READ_ALL, 'read'],
      ['orders-write', ORDERS_WRITE, 'other'],
      ['payments-all', PAYMENTS_ALL, 'right'],
    ] as const) {
      await admin('PUT', '/v1/acl/policy', { Name: name, Rules: rules });
      const t = await admin('PUT', '/v1/acl/token', {
        Description: who,
        Policies: [{ Name: name }],
      });
      tokens[who] = t.SecretID as string;
    }
  });
  after(async () => {
    await agent.stop();
  });

  const streamStatus = async (path: string, secret: string | undefined): Promise<number> => {
    const ac = new AbortController();
    const res = await request(agent.url + path, { headers: as(secret), signal: ac.signal });
    const status = res.statusCode;
    ac.abort();
    await res.body.text().catch(() => undefined);
    return status;
  };

  for (const row of ROWS) {
    it(`${row.group}: ${row.method} ${row.path} answers ${row.expect.join('/')} (none/read/other/right)`, async () => {
      for (const [i, who] of WHO.entries()) {
        await reset();
        const secret = tokens[who];
        const expected = row.expect[i];
        if (row.stream === true) {
          assert.equal(await streamStatus(row.path, secret), expected, `${who}`);
          continue;
        }
        const r = await http(agent.url, row.method, row.path, row.body, as(secret));
        assert.equal(r.status, expected, `${who}: ${r.text.slice(0, 300)}`);
        if (r.status === 403) {
          const message = r.headers['content-type']?.toString().includes('json')
            ? (r.body.error.message as string)
            : r.text;
          assert.match(
            message,
            /^Permission denied: token lacks permission '[a-z]+(:\S*)? (read|write)'$|^ACL not found$/,
          );
        }
        const sees = row.seesPayments?.[i];
        if (sees !== undefined)
          assert.equal(
            r.text.includes('payments'),
            sees,
            `${who} sees payments: ${r.text.slice(0, 300)}`,
          );
      }
    });
  }

  it('names the missing permission as Consul does, in both APIs', async () => {
    await reset();
    const consul = await http(
      agent.url,
      'PUT',
      '/v1/agent/service/register',
      { Name: 'payments', ID: 'pay-9', Port: 1 },
      as(tokens.other),
    );
    assert.equal(consul.status, 403);
    assert.equal(consul.text, "Permission denied: token lacks permission 'service:payments write'");
    const native = await http(agent.url, 'PUT', '/api/v1/kv/payments/z', 'v', as(tokens.other));
    assert.equal(native.status, 403);
    assert.equal(native.body.error.code, 'MESHWORK_ERR_ACL_PERMISSION_DENIED');
    assert.equal(
      native.body.error.message,
      "Permission denied: token lacks permission 'key:payments/z write'",
    );
  });

  it('takes the token from X-Consul-Token, Authorization: Bearer and ?token=', async () => {
    await reset();
    const path = '/api/v1/services/payments/instances';
    assert.equal((await http(agent.url, 'GET', path)).status, 403);
    assert.equal((await http(agent.url, 'GET', path, undefined, as(tokens.read))).status, 200);
    assert.equal(
      (
        await http(agent.url, 'GET', path, undefined, {
          authorization: `Bearer ${tokens.read ?? ''}`,
        })
      ).status,
      200,
    );
    assert.equal((await http(agent.url, 'GET', `${path}?token=${tokens.read ?? ''}`)).status, 200);
    // The push stream's strict query takes ?token= too.
    const stream = `/api/v1/mesh/stream?id=px-q&kind=sidecar&name=payments&token=${tokens.read ?? ''}`;
    assert.equal(await streamStatus(stream, undefined), 200);
  });

  it('refuses an unknown token on every API endpoint with "ACL not found", probes excepted', async () => {
    const bogus = { 'x-consul-token': '3f0c9a52-8c59-4d3e-9a43-000000000000' };
    const consul = await http(agent.url, 'GET', '/v1/catalog/services', undefined, bogus);
    assert.equal(consul.status, 403);
    assert.equal(consul.text, 'ACL not found');
    assert.equal((await http(agent.url, 'GET', '/api/v1/services', undefined, bogus)).status, 403);
    assert.equal((await http(agent.url, 'GET', '/health/live', undefined, bogus)).status, 200);
  });

  it('bootstraps once: the second call is refused as Consul refuses it', async () => {
    const again = await http(agent.url, 'PUT', '/v1/acl/bootstrap');
    assert.equal(again.status, 403);
    assert.match(again.text, /ACL bootstrap no longer allowed/);
  });

  it('lets the anonymous token gain rights through its policies', async () => {
    await admin('PUT', '/v1/acl/policy', {
      Name: 'anon-dns',
      Rules: 'service "payments" { policy = "read" }',
    });
    const anonymous = '00000000-0000-0000-0000-000000000002';
    await admin('PUT', `/v1/acl/token/${anonymous}`, { Policies: [{ Name: 'anon-dns' }] });
    try {
      assert.equal(
        (await http(agent.url, 'GET', '/api/v1/services/payments/instances')).status,
        200,
      );
      assert.equal((await http(agent.url, 'GET', '/api/v1/services/orders/instances')).status, 403);
    } finally {
      await admin('PUT', `/v1/acl/token/${anonymous}`, { Policies: [] });
    }
  });
});

describe('registry ACLs with the default policy allow', () => {
  let agent: TestAgent;
  before(async () => {
    agent = await startTestAgent({ flags: { acl: { enabled: true, defaultPolicy: 'allow' } } });
  });
  after(async () => {
    await agent.stop();
  });

  it('lets the anonymous token do all but manage ACLs', async () => {
    assert.equal((await http(agent.url, 'PUT', '/v1/kv/a', 'v')).status, 200);
    assert.equal((await http(agent.url, 'GET', '/v1/acl/tokens')).status, 403);
    assert.equal((await http(agent.url, 'PUT', '/v1/acl/bootstrap')).status, 200);
  });
});

describe('registry ACLs off (the default)', () => {
  let agent: TestAgent;
  before(async () => {
    agent = await startTestAgent();
  });
  after(async () => {
    await agent.stop();
  });

  it('allows everything without a token and answers /v1/acl as Consul does without ACLs', async () => {
    assert.equal((await http(agent.url, 'PUT', '/v1/kv/a', 'v')).status, 200);
    assert.equal(
      (await http(agent.url, 'GET', '/v1/kv/a', undefined, { 'x-consul-token': 'anything' }))
        .status,
      200,
    );
    const boot = await http(agent.url, 'PUT', '/v1/acl/bootstrap');
    assert.equal(boot.status, 401);
    assert.equal(boot.text, 'ACL support disabled');
  });
});
