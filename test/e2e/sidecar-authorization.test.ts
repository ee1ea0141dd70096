/**
 * @module AuthorizationPolicy through real `meshwork sidecar` processes (issue 20), for the rule
 * kinds that need no mTLS: a caller's sidecar (productpage, no app) -> the sidecar of reviews
 * (in front of test/fixtures/policy-app.mjs) -> the app; real curl as the client, through the
 * caller's outbound port or straight at reviews' inbound port (from another loopback address for
 * ipBlocks). Each case applies one file of examples/security/ (the files docs/security.md shows)
 * with `meshwork apply -f`, waits until reviews' sidecar runs the new snapshot (/config_dump),
 * and checks what the policy says. Resources are deleted between cases.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, afterEach, before, describe, it } from 'node:test';
import { MESH_KIND_INFO, type MeshKind } from '../../src/protocol/mesh/resource.js';
import { http } from '../helpers/agent.js';
import { runCli, type AgentProcess, type SidecarProcess } from '../helpers/cli.js';
import { MeshFixture, type MeshSidecar } from '../helpers/mesh-fixture.js';
import { until } from '../helpers/until.js';

const APP = fileURLToPath(new URL('../fixtures/policy-app.mjs', import.meta.url));
const EXAMPLES = fileURLToPath(new URL('../../examples/security/', import.meta.url));

interface CurlAnswer {
  status: number;
  headers: Record<string, string>;
  body: {
    url?: string;
    error?: { code: string; message: string; policy?: string; action: string };
  };
}

/** Runs curl; answers the status, the response headers (lower-case names) and the JSON body. */
async function curl(args: readonly string[]): Promise<CurlAnswer> {
  const { stdout } = await promisify(execFile)('curl', [
    '-sS',
    '--max-time',
    '10',
    '--path-as-is',
    '-D',
    '-',
    ...args,
  ]);
  const split = stdout.indexOf('\r\n\r\n');
  const head = stdout.slice(0, split).split('\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head[0] ?? '')?.[1]);
  const headers: Record<string, string> = {};
  for (const line of head.slice(1)) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  const text = stdout.slice(split + 4);
  return { status, headers, body: text === '' ? {} : (JSON.parse(text) as CurlAnswer['body']) };
}

describe('AuthorizationPolicy through real sidecar processes (examples/security)', () => {
  let mesh: MeshFixture;
  let agent: AgentProcess;
  let caller: SidecarProcess;
  let reviews: MeshSidecar;

  /** curl through the caller's outbound port, `Host: reviews`. */
  const viaCaller = (path: string, ...extra: string[]): Promise<CurlAnswer> =>
    curl(['-H', 'Host: reviews', ...extra, `${caller.outboundUrl}${path}`]);
  /** curl straight at reviews' inbound port, from `from` (a loopback address), `Host: host`. */
  const direct = (path: string, from = '127.0.0.1', host = 'reviews'): Promise<CurlAnswer> =>
    curl(['--interface', from, '-H', `Host: ${host}`, `${reviews.inboundUrl}${path}`]);
  /** How often the app saw `url`. */
  const hits = async (url: string): Promise<number> =>
    (
      await http(
        `http://127.0.0.1:${reviews.appPort}`,
        'GET',
        `/_count?url=${encodeURIComponent(url)}`,
      )
    ).body.hits as number;

  const version = async (): Promise<string | null> =>
    ((await http(reviews.adminUrl, 'GET', '/config_dump')).body?.version as string | null) ?? null;
  /** Applies an example file with `meshwork apply -f` and waits for reviews' next snapshot. */
  const apply = async (file: string): Promise<void> => {
    const before = await version();
    const r = await runCli(['apply', '-f', join(EXAMPLES, file)], { MESHWORK_ADDR: agent.url });
    assert.equal(r.code, 0, r.stderr);
    await until(async () => (await version()) !== before, 10_000, `reviews ran ${file}`);
  };
  const example = (file: string): string => file;

  before(async () => {
    mesh = await MeshFixture.start('sidecar-authz-');
    agent = mesh.agent;
    [reviews, caller] = await Promise.all([
      // info: the AUDIT lines are info lines.
      mesh.sidecar('reviews', { app: APP, env: { MESHWORK_SIDECAR__LOG_LEVEL: 'info' } }),
      mesh.sidecar('productpage'),
    ]);
    await until(
      async () => (await viaCaller('/warm')).status === 200,
      15_000,
      'reviews reachable through the caller',
    );
  });

  after(async () => {
    await mesh?.stop();
  });

  afterEach(async () => {
    const all = (await http(agent.url, 'GET', '/api/v1/mesh/resources')).body.resources as {
      resource: { kind: string; metadata: { name: string; namespace: string } };
    }[];
    if (all.length === 0) return;
    const before = await version();
    for (const { resource: r } of all) {
      const { plural } = MESH_KIND_INFO[r.kind as MeshKind];
      const d = await http(
        agent.url,
        'DELETE',
        `/api/v1/mesh/resources/${plural}/${r.metadata.namespace}/${r.metadata.name}`,
      );
      assert.equal(d.status, 200, JSON.stringify(d.body));
    }
    await until(async () => (await version()) !== before, 10_000, 'reviews without policies');
  });

  it('methods: GET passes, POST gets 403 (no ALLOW policy matched) and never reaches the app', async () => {
    await apply(example('authz-methods.yaml'));
    assert.equal((await viaCaller('/m')).status, 200);
    const post = await viaCaller('/m?post', '-X', 'POST', '-d', 'x');
    assert.equal(post.status, 403);
    assert.deepEqual(post.body.error, {
      code: 'MESHWORK_ERR_PROXY_ACCESS_DENIED',
      message: 'access denied: no ALLOW AuthorizationPolicy matched the request',
      action: 'ALLOW',
    });
    assert.equal(post.headers['x-meshwork-denied-by'], 'no-allow-match');
    assert.equal(await hits('/m?post'), 0);
  });

  it('paths: /admin denied by name, however spelled; other paths served', async () => {
    await apply(example('authz-paths.yaml'));
    for (const path of ['/admin', '/admin/users', '/public/../admin', '/%61dmin/x']) {
      const r = await viaCaller(path);
      assert.equal(r.status, 403, path);
      assert.equal(r.body.error?.policy, 'default/reviews-deny-admin', path);
      assert.equal(r.headers['x-meshwork-denied-by'], 'default/reviews-deny-admin');
    }
    const metrics = (await http(reviews.adminUrl, 'GET', '/metrics')).text;
    assert.match(
      metrics,
      /meshwork_sidecar_authz_denied_total\{policy="default\/reviews-deny-admin",action="DENY"\} 4\n/,
    );
    const ok = await viaCaller('/administrator');
    assert.equal(ok.status, 200);
    assert.equal(ok.body.url, '/administrator');
  });

  it('notPaths: only /api/* is served', async () => {
    await apply(example('authz-not-paths.yaml'));
    assert.equal((await viaCaller('/api/items')).status, 200);
    const r = await viaCaller('/internal/metrics');
    assert.equal(r.status, 403);
    assert.equal(r.body.error?.policy, 'default/reviews-api-only');
  });

  it('when request.headers: the API key is needed, the revoked one refused', async () => {
    await apply(example('authz-headers.yaml'));
    assert.equal((await viaCaller('/k', '-H', 'x-api-key: key-7')).status, 200);
    assert.equal((await viaCaller('/k')).status, 403);
    assert.equal((await viaCaller('/k', '-H', 'x-api-key: key-revoked')).status, 403);
    assert.equal((await viaCaller('/k', '-H', 'x-api-key: other')).status, 403);
  });

  it('ipBlocks: a request from 127.0.0.2 is denied, from 127.0.0.1 served', async () => {
    await apply(example('authz-ip-blocks.yaml'));
    const denied = await direct('/ip', '127.0.0.2');
    assert.equal(denied.status, 403);
    assert.equal(denied.body.error?.policy, 'default/reviews-deny-addresses');
    assert.equal((await direct('/ip', '127.0.0.1')).status, 200);
    assert.equal((await viaCaller('/ip')).status, 200);
  });

  it('hosts: reviews answers to its own names only', async () => {
    await apply(example('authz-hosts.yaml'));
    assert.equal((await viaCaller('/h')).status, 200);
    assert.equal(
      (await direct('/h', '127.0.0.1', 'reviews.default.svc.cluster.local')).status,
      200,
    );
    const other = await direct('/h', '127.0.0.1', 'ratings:9080');
    assert.equal(other.status, 403);
    assert.equal(other.body.error?.policy, 'default/reviews-own-hosts');
  });

  it('spec: {} denies everything, until it is deleted', async () => {
    await apply(example('authz-deny-all.yaml'));
    for (const path of ['/', '/api/items', '/anything'])
      assert.equal((await viaCaller(path)).status, 403, path);
    assert.equal((await direct('/x', '127.0.0.1')).status, 403);
  });

  it('DENY before ALLOW: GET is allowed, but not GET /api/secret', async () => {
    await apply(example('authz-deny-before-allow.yaml'));
    assert.equal((await viaCaller('/api/items')).status, 200);
    const secret = await viaCaller('/api/secret/1');
    assert.equal(secret.status, 403);
    assert.equal(secret.body.error?.action, 'DENY');
    assert.equal(secret.body.error?.policy, 'default/reviews-deny-secret');
    assert.equal((await viaCaller('/api/items', '-X', 'DELETE')).status, 403);
  });

  it('AUDIT: a write is served and logged as one JSON line naming the policy, and counted', async () => {
    await apply(example('authz-audit.yaml'));
    assert.equal((await viaCaller('/audited?x=1', '-X', 'PUT', '-d', 'x')).status, 200);
    assert.equal((await viaCaller('/not-audited')).status, 200);
    const line = await until(
      () =>
        reviews
          .stderr()
          .split('\n')
          .find((l) => l.includes('"msg":"authorization audit"')),
      5_000,
      'the audit line',
    );
    const entry = JSON.parse(line) as Record<string, unknown>;
    assert.equal(entry.policy, 'default/reviews-audit-writes');
    assert.equal(entry.method, 'PUT');
    assert.equal(entry.path, '/audited');
    assert.equal(entry.allowed, true);
    assert.ok(!reviews.stderr().includes('/not-audited'));
    const metrics = (await http(reviews.adminUrl, 'GET', '/metrics')).text;
    assert.match(
      metrics,
      /meshwork_sidecar_authz_audited_total\{policy="default\/reviews-audit-writes"\} 1\n/,
    );
  });

  it('CUSTOM is refused: the sidecar NACKs the snapshot and keeps serving the one in force', async () => {
    const before = await version();
    const file = join(mesh.dir, 'custom.yaml');
    writeFileSync(
      file,
      [
        'apiVersion: security.istio.io/v1',
        'kind: AuthorizationPolicy',
        'metadata:',
        '  name: ext-authz',
        'spec:',
        '  action: CUSTOM',
        '  provider:',
        '    name: opa',
        '  rules:',
        '    - {}',
        '',
      ].join('\n'),
    );
    const r = await runCli(['apply', '-f', file], { MESHWORK_ADDR: agent.url });
    assert.equal(r.code, 0, r.stderr);
    await until(
      async () =>
        /meshwork_sidecar_snapshots_total\{result="refused"\} [1-9]/.test(
          (await http(reviews.adminUrl, 'GET', '/metrics')).text,
        ),
      10_000,
      'the snapshot refused',
    );
    assert.equal(await version(), before);
    assert.equal((await viaCaller('/still')).status, 200);
    // Deleted here: the snapshot without it is the one in force (same version), so afterEach
    // would wait for a change that does not come.
    const d = await runCli(['delete', 'authorizationpolicy', 'ext-authz'], {
      MESHWORK_ADDR: agent.url,
    });
    assert.equal(d.code, 0, d.stderr);
  });
});
