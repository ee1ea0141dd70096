/**
 * @module AuthorizationPolicy on the caller's verified identity, through real `meshwork sidecar`
 * processes over mTLS (issue 20): usuario-service's sidecar (in front of
 * test/fixtures/policy-app.mjs) called by the sidecars of pedido-service, inventario-service,
 * api-gateway and ratings (no apps) through their outbound ports, with curl; and by curl
 * straight at usuario-service's inbound port (plaintext). The principals, notPrincipals and
 * namespaces cases apply files of examples/security/ under the default PERMISSIVE mode; the seed
 * 003 case applies the seed's STRICT PeerAuthentication and its `usuario-service-policy`
 * unchanged (test/fixtures/seed-003-mesh.yaml, byte for byte) and checks that they do what
 * they say. Every sidecar gets its leaf from the agent's CA (on by default) and speaks mTLS to
 * the others (auto mTLS to instances registered with `tls-mode: istio`).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, afterEach, before, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { MESH_KIND_INFO, type MeshKind } from '../../src/protocol/mesh/resource.js';
import { http } from '../helpers/agent.js';
import { runCli, type AgentProcess, type SidecarProcess } from '../helpers/cli.js';
import { MeshFixture } from '../helpers/mesh-fixture.js';
import { until } from '../helpers/until.js';

const APP = fileURLToPath(new URL('../fixtures/policy-app.mjs', import.meta.url));
const EXAMPLES = fileURLToPath(new URL('../../examples/security/', import.meta.url));
const SEED = fileURLToPath(new URL('../fixtures/seed-003-mesh.yaml', import.meta.url));

const CALLERS = ['pedido-service', 'inventario-service', 'api-gateway', 'ratings'] as const;
const PRINCIPAL = (service: string): string => `cluster.local/ns/default/sa/${service}`;

interface Answer {
  /** 0: curl could not get an HTTP answer (a refused handshake, a reset). */
  status: number;
  body: {
    url?: string;
    headers?: Record<string, string>;
    error?: { code: string; policy?: string; action: string };
  };
}

/** curl; the status and the JSON body, or status 0 when no HTTP answer came. */
async function curl(args: readonly string[]): Promise<Answer> {
  try {
    const { stdout } = await promisify(execFile)('curl', [
      '-sS',
      '--max-time',
      '10',
      '-w',
      '\n%{http_code}',
      ...args,
    ]);
    const nl = stdout.lastIndexOf('\n');
    const text = stdout.slice(0, nl);
    return {
      status: Number(stdout.slice(nl + 1)),
      body: text === '' ? {} : (JSON.parse(text) as Answer['body']),
    };
  } catch {
    return { status: 0, body: {} };
  }
}

describe('AuthorizationPolicy on mTLS identities through real sidecars', () => {
  let mesh: MeshFixture;
  let agent: AgentProcess;
  let usuario: SidecarProcess;
  const callers = new Map<string, SidecarProcess>();

  /** A request from `caller`'s app: through its sidecar's outbound port, Host usuario-service. */
  const from = (caller: string, path: string, method = 'GET'): Promise<Answer> =>
    curl([
      '-X',
      method,
      '-H',
      'Host: usuario-service',
      `${(callers.get(caller) as SidecarProcess).outboundUrl}${path}`,
    ]);
  /** A plaintext request straight at usuario-service's inbound port. */
  const plaintext = (path: string): Promise<Answer> =>
    curl(['-H', 'Host: usuario-service', `${usuario.inboundUrl}${path}`]);

  const version = async (): Promise<string | null> =>
    ((await http(usuario.adminUrl, 'GET', '/config_dump')).body?.version as string | null) ?? null;
  const applyFile = async (path: string): Promise<void> => {
    const before = await version();
    const r = await runCli(['apply', '-f', path], { MESHWORK_ADDR: agent.url });
    assert.equal(r.code, 0, r.stderr);
    await until(async () => (await version()) !== before, 10_000, `usuario-service ran ${path}`);
  };
  const example = (file: string): Promise<void> => applyFile(join(EXAMPLES, file));

  before(async () => {
    mesh = await MeshFixture.start('sidecar-authz-mtls-');
    agent = mesh.agent;
    const started = await Promise.all([
      mesh.sidecar('usuario-service', {
        app: APP,
        dataDir: 'usuario',
        env: { APP_NAME: 'usuario' },
      }),
      ...CALLERS.map((service) => mesh.sidecar(service)),
    ]);
    usuario = started[0];
    CALLERS.forEach((name, i) => callers.set(name, started[i + 1] as SidecarProcess));
    // Every caller reaches usuario-service over mTLS: the app sees its verified principal.
    for (const name of callers.keys())
      await until(
        async () => {
          const r = await from(name, '/warm');
          return (
            r.status === 200 && r.body.headers?.['x-meshwork-source-principal'] === PRINCIPAL(name)
          );
        },
        20_000,
        `${name} reaching usuario-service over mTLS`,
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
    await until(async () => (await version()) !== before, 10_000, 'usuario-service without them');
  });

  it('principals: only pedido-service; others and plaintext get 403, a claimed header changes nothing', async () => {
    await example('authz-principals.yaml');
    const ok = await from('pedido-service', '/usuarios/1');
    assert.equal(ok.status, 200);
    assert.equal(ok.body.headers?.['x-meshwork-source-principal'], PRINCIPAL('pedido-service'));
    for (const name of ['inventario-service', 'api-gateway', 'ratings']) {
      const r = await from(name, '/usuarios/1');
      assert.equal(r.status, 403, name);
      assert.equal(r.body.error?.action, 'ALLOW');
    }
    assert.equal((await plaintext('/usuarios/1')).status, 403);
    const claimed = await curl([
      '-H',
      'Host: usuario-service',
      '-H',
      `x-meshwork-source-principal: ${PRINCIPAL('pedido-service')}`,
      '-H',
      'x-meshwork-source-service: pedido-service',
      `${usuario.inboundUrl}/usuarios/1`,
    ]);
    assert.equal(claimed.status, 403);
  });

  it('a DENY on one principal: ratings gets 403 naming the policy, the others pass', async () => {
    await example('authz-deny-principal.yaml');
    const r = await from('ratings', '/usuarios/1');
    assert.equal(r.status, 403);
    assert.equal(r.body.error?.policy, 'default/usuario-deny-ratings');
    for (const name of ['pedido-service', 'inventario-service', 'api-gateway'])
      assert.equal((await from(name, '/usuarios/1')).status, 200, name);
    assert.equal((await plaintext('/usuarios/1')).status, 200);
  });

  it('notPrincipals *: plaintext denied, every mTLS caller served', async () => {
    await example('authz-not-principals.yaml');
    const r = await plaintext('/usuarios/1');
    assert.equal(r.status, 403);
    assert.equal(r.body.error?.policy, 'default/usuario-deny-plaintext');
    for (const name of callers.keys())
      assert.equal((await from(name, '/usuarios/1')).status, 200, name);
  });

  it('namespaces: mTLS callers of the default namespace served, plaintext (no namespace) denied', async () => {
    await example('authz-namespaces.yaml');
    for (const name of callers.keys())
      assert.equal((await from(name, '/usuarios/1')).status, 200, name);
    assert.equal((await plaintext('/usuarios/1')).status, 403);
  });

  it('the seed 003 security block, unchanged: STRICT mTLS and usuario-service-policy do what they say', async () => {
    // The seed's PeerAuthentication and AuthorizationPolicy as the seed wrote them, byte for byte.
    const text = readFileSync(SEED, 'utf8');
    const docs = parseAllDocuments(text).filter((d) =>
      ['default', 'usuario-service-policy'].includes(String(d.getIn(['metadata', 'name']))),
    );
    assert.equal(docs.length, 2);
    const file = join(mesh.dir, 'seed-security.yaml');
    writeFileSync(file, docs.map((d) => text.slice(d.range[0], d.range[1])).join('\n---\n'));
    await applyFile(file);

    // STRICT: plaintext gets no HTTP answer at all.
    assert.equal((await plaintext('/usuarios/1')).status, 0);
    // pedido-service and inventario-service: GET and POST on /usuarios/*, nothing else.
    for (const name of ['pedido-service', 'inventario-service']) {
      assert.equal((await from(name, '/usuarios/1')).status, 200, name);
      assert.equal((await from(name, '/usuarios/1', 'POST')).status, 200, name);
      assert.equal((await from(name, '/usuarios/1', 'DELETE')).status, 403, name);
      assert.equal((await from(name, '/pedidos/1')).status, 403, name);
    }
    // api-gateway: GET, POST, PUT and DELETE anywhere, nothing else.
    for (const method of ['GET', 'POST', 'PUT', 'DELETE'])
      assert.equal((await from('api-gateway', '/anything', method)).status, 200, method);
    assert.equal((await from('api-gateway', '/usuarios/1', 'PATCH')).status, 403);
    // Anyone else: 403, no policy named.
    const other = await from('ratings', '/usuarios/1');
    assert.equal(other.status, 403);
    assert.deepEqual(other.body.error, {
      code: 'MESHWORK_ERR_PROXY_ACCESS_DENIED',
      message: 'access denied: no ALLOW AuthorizationPolicy matched the request',
      action: 'ALLOW',
    });
  });
});
