/**
 * @module The gateway as a mesh identity (issue 20), real processes only: an agent (`--dev`, its
 * CA on), `shop` behind a real `meshwork sidecar` (test/fixtures/policy-app.mjs) under a STRICT
 * PeerAuthentication, a second sidecar (`ratings`, no app), and two `meshwork gateway --mesh`
 * processes routing `/shop` to shop by a VirtualService bound to them: one with its default
 * `--mtls auto` (a leaf for `meshwork-gateway` from the agent's CA, mTLS to the sidecar), one
 * with `--mtls off` (plaintext, which the STRICT sidecar refuses). Everything applied with
 * `meshwork apply -f` (the AuthorizationPolicy is examples/security/authz-gateway.yaml); last,
 * `meshwork ca rotate`, which the gateway follows from its snapshots' `ca`.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { http } from '../helpers/agent.js';
import {
  runCli,
  type AgentProcess,
  type GatewayProcess,
  type SidecarProcess,
} from '../helpers/cli.js';
import { MeshFixture } from '../helpers/mesh-fixture.js';
import { until } from '../helpers/until.js';

const APP = fileURLToPath(new URL('../fixtures/policy-app.mjs', import.meta.url));
const EXAMPLES = fileURLToPath(new URL('../../examples/security/', import.meta.url));
/** The gateway's principal: its default service account in the default trust domain. */
const GATEWAY_PRINCIPAL = 'cluster.local/ns/default/sa/meshwork-gateway';

/** shop STRICT, and `/shop` on the gateways (their default name) routed to it. */
const MESH = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: shop-strict, namespace: default }
spec:
  selector: { matchLabels: { app: shop } }
  mtls: { mode: STRICT }
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: { name: shop-edge, namespace: default }
spec:
  hosts: ['*']
  gateways: [meshwork-gateway]
  http:
    - match: [{ uri: { prefix: /shop } }]
      route: [{ destination: { host: shop } }]
`;

interface Answer {
  status: number;
  body: {
    headers?: Record<string, string>;
    error?: { code: string; action?: string; message?: string };
  };
}

/** A GET through `base` (a gateway or a sidecar's outbound port); the status and JSON body. */
async function get(base: string, path: string, host: string): Promise<Answer> {
  const res = await request(`${base}${path}`, { headers: { host } });
  const text = await res.body.text();
  return { status: res.statusCode, body: text === '' ? {} : (JSON.parse(text) as Answer['body']) };
}

describe('meshwork gateway --mesh originates mTLS to STRICT sidecars (processes)', () => {
  let mesh: MeshFixture;
  let agent: AgentProcess;
  let shop: SidecarProcess;
  let ratings: SidecarProcess;
  let gw: GatewayProcess;
  let plain: GatewayProcess;

  const applyFile = async (file: string): Promise<void> => {
    const r = await runCli(['apply', '-f', file], { MESHWORK_ADDR: agent.url });
    assert.equal(r.code, 0, r.stderr);
  };
  /** A file of examples/security/ (docs/security.md shows each). */
  const example = (file: string): Promise<void> => applyFile(join(EXAMPLES, file));
  /** shop's inbound side as its sidecar runs it (its snapshot in force). */
  const shopInbound = async (): Promise<Record<string, unknown> | undefined> =>
    (await http(shop.adminUrl, 'GET', '/config_dump')).body?.snapshot?.inbound as
      Record<string, unknown> | undefined;
  /** Whether `g` runs a snapshot whose shop cluster has an endpoint. */
  const routesShop = async (g: GatewayProcess): Promise<boolean> => {
    const dump = (await http(g.adminUrl, 'GET', '/config_dump')).body as {
      snapshot: { clusters: { service: string; endpoints: unknown[] }[] } | null;
    };
    return (dump.snapshot?.clusters ?? []).some(
      (c) => c.service === 'shop' && c.endpoints.length > 0,
    );
  };

  before(async () => {
    mesh = await MeshFixture.start('gateway-mtls-');
    agent = mesh.agent;
    await mesh.apply(MESH);
    [shop, ratings, gw, plain] = await Promise.all([
      mesh.sidecar('shop', { app: APP }),
      mesh.sidecar('ratings'),
      mesh.gateway('gw'),
      mesh.gateway('gw-plain', ['--mtls', 'off']),
    ]);
    await until(async () => (await shopInbound())?.mtls === 'STRICT', 20_000, 'shop STRICT');
  });

  after(async () => {
    await mesh?.stop();
  });

  it("reaches the STRICT service over mTLS: the app sees the gateway's principal", async () => {
    const ok = await until(
      async () => {
        const r = await get(gw.url, '/shop/items/1', 'edge.example.com');
        return r.status === 200 ? r : undefined;
      },
      20_000,
      'the gateway reaching shop',
    );
    assert.equal(ok.body.headers?.['x-meshwork-source-principal'], GATEWAY_PRINCIPAL);
    assert.equal(ok.body.headers?.['x-meshwork-source-service'], 'meshwork-gateway');

    const dump = await http(gw.adminUrl, 'GET', '/config_dump');
    assert.equal(dump.body.mtls.state, 'on');
    assert.equal(dump.body.mtls.spiffeId, `spiffe://${GATEWAY_PRINCIPAL}`);
    assert.equal(dump.body.mtls.trustDomain, 'cluster.local');
    assert.doesNotMatch(JSON.stringify(dump.body), /PRIVATE KEY/);

    const metrics = await (await request(`${gw.adminUrl}/metrics`)).body.text();
    const mtls =
      /^meshwork_gateway_mtls_connections_total\{direction="outbound",result="mtls"\} (\d+)/m;
    assert.ok(Number(mtls.exec(metrics)?.[1] ?? 0) >= 1, metrics);
    const expiry = /^meshwork_gateway_cert_expiry_seconds (\S+)/m.exec(metrics);
    assert.ok(Number(expiry?.[1]) > 3600, String(expiry?.[0]));
    assert.match(metrics, /^meshwork_gateway_mtls_enabled 1$/m);
    assert.doesNotMatch(metrics, /meshwork_sidecar_cert_/);
  });

  it('with --mtls off the same request fails: the STRICT sidecar refuses plaintext, the gateway answers its JSON error', async () => {
    await until(() => routesShop(plain), 20_000, 'the --mtls off gateway routing to shop');
    const r = await get(plain.url, '/shop/items/1', 'edge.example.com');
    assert.ok(r.status === 502 || r.status === 503, `status ${r.status}`);
    assert.match(r.body.error?.code ?? '', /^MESHWORK_ERR_PROXY_/, JSON.stringify(r.body));
    const dump = await http(plain.adminUrl, 'GET', '/config_dump');
    assert.deepEqual(dump.body.mtls, { state: 'off', reason: 'mtls: off' });
    // The gateway with an identity still gets through.
    assert.equal((await get(gw.url, '/shop/items/1', 'edge.example.com')).status, 200);
  });

  it("an AuthorizationPolicy allowing only the gateway's principal lets the gateway through and denies another sidecar", async () => {
    await example('authz-gateway.yaml');
    await until(
      async () => ((await shopInbound())?.authorization as unknown[] | undefined)?.length === 1,
      20_000,
      'shop running the AuthorizationPolicy',
    );
    const ok = await get(gw.url, '/shop/items/2', 'edge.example.com');
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.headers?.['x-meshwork-source-principal'], GATEWAY_PRINCIPAL);
    // ratings reaches shop over mTLS too (its own principal), and is denied.
    // Bounded wait: ratings routes to shop once its own snapshot has shop's endpoint.
    const denied = await until(
      async () => {
        const r = await get(ratings.outboundUrl, '/items/2', 'shop');
        // Before that: 404, or a pass-through to a host named shop (ALLOW_ANY) that fails.
        return r.status === 200 || r.status === 403 ? r : undefined;
      },
      20_000,
      'ratings routing to shop',
    );
    assert.equal(denied.status, 403, JSON.stringify(denied.body));
    assert.equal(denied.body.error?.code, 'MESHWORK_ERR_PROXY_ACCESS_DENIED');
    assert.equal(denied.body.error?.action, 'ALLOW');
  });

  it('follows a root rotation pushed in its snapshots: a leaf from the new root, shop still reached', async () => {
    const before = (await http(gw.adminUrl, 'GET', '/config_dump')).body.mtls as {
      rootId: string;
      serial: string;
    };
    const r = await runCli(['ca', 'rotate', '--overlap', '10m', '--json'], {
      MESHWORK_ADDR: agent.url,
    });
    assert.equal(r.code, 0, r.stderr);
    const { activeRootId } = JSON.parse(r.stdout) as { activeRootId: string };
    assert.notEqual(activeRootId, before.rootId);
    // The new root comes with the next snapshot; the new leaf within the rotation jitter (5 s).
    const after = await until(
      async () => {
        const m = (await http(gw.adminUrl, 'GET', '/config_dump')).body.mtls as typeof before & {
          activeRootId: string;
        };
        return m.rootId === activeRootId && m.activeRootId === activeRootId ? m : undefined;
      },
      20_000,
      "the gateway's leaf from the new root",
    );
    assert.notEqual(after.serial, before.serial);
    const ok = await get(gw.url, '/shop/items/3', 'edge.example.com');
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.headers?.['x-meshwork-source-principal'], GATEWAY_PRINCIPAL);
    const metrics = await (await request(`${gw.adminUrl}/metrics`)).body.text();
    const renewed = /^meshwork_gateway_cert_renewals_total\{result="ok"\} (\d+)/m.exec(metrics);
    assert.ok(Number(renewed?.[1]) >= 1, String(renewed?.[0]));
  });
});
