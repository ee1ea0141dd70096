/**
 * A sidecar on an agent with --acl-default-policy deny (issue 20, "tokens for sidecars"): with a
 * token of `service "orders" write` and `mesh = "read"` it registers, heartbeats, holds its push
 * stream and ACKs; with another service's token its certificate, registration and stream are
 * refused.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FAST_CHECKS, http, startTestAgent, type TestAgent } from '../helpers/agent.js';
import { startTestApp, startTestSidecar, type TestApp } from '../helpers/sidecar.js';
import { until } from '../helpers/until.js';

describe('a sidecar under registry ACLs', () => {
  let agent: TestAgent;
  let app: TestApp;
  let management = '';
  let audit = '';
  /** The audit lines of refused requests for `path`. */
  const refusedLines = (path: string): { what: string[] }[] =>
    existsSync(audit)
      ? readFileSync(audit, 'utf8')
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => JSON.parse(l) as { path: string; status: number; what: string[] })
          .filter((l) => l.path === path && l.status === 403)
      : [];
  const dirs: string[] = [];
  const dataDir = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'meshwork-sidecar-acl-'));
    dirs.push(d);
    return d;
  };
  const m = () => ({ 'x-consul-token': management });
  const tokenFor = async (name: string, rules: string): Promise<string> => {
    const p = await http(agent.url, 'PUT', '/v1/acl/policy', { Name: name, Rules: rules }, m());
    assert.equal(p.status, 200, p.text);
    const t = await http(agent.url, 'PUT', '/v1/acl/token', { Policies: [{ Name: name }] }, m());
    return t.body.SecretID as string;
  };
  const proxies = async (): Promise<{ name: string; state: string }[]> =>
    (await http(agent.url, 'GET', '/api/v1/mesh/proxies?local=true', undefined, m())).body.proxies;

  before(async () => {
    audit = join(dataDir(), 'audit.jsonl');
    agent = await startTestAgent({
      flags: { ...FAST_CHECKS, acl: { enabled: true, defaultPolicy: 'deny' }, auditLog: audit },
    });
    app = await startTestApp();
    management = (await http(agent.url, 'PUT', '/v1/acl/bootstrap')).body.SecretID as string;
  });
  after(async () => {
    await app.close();
    await agent.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('registers, heartbeats and ACKs its snapshot with a token for its service and mesh read', async () => {
    const token = await tokenFor(
      'orders-sidecar',
      'service "orders" { policy = "write" }\nmesh = "read"',
    );
    const sidecar = await startTestSidecar({
      service: 'orders',
      appPort: app.port,
      appHealth: '/healthz',
      registry: [agent.url],
      dataDir: dataDir(),
      token,
    });
    try {
      await until(
        async () => {
          const r = await http(
            agent.url,
            'GET',
            '/api/v1/services/orders/instances',
            undefined,
            m(),
          );
          return r.body.instances?.[0]?.status === 'passing' ? true : undefined;
        },
        10_000,
        'registered and passing (heartbeats accepted)',
      );
      const synced = await until(
        async () => (await proxies()).find((p) => p.name === 'orders' && p.state === 'SYNCED'),
        10_000,
        'the snapshot ACKed',
      );
      assert.equal(synced.state, 'SYNCED');
    } finally {
      await sidecar.stop('test');
    }
  });

  it("is refused with another service's token", async () => {
    const token = await tokenFor(
      'payments-sidecar',
      'service "payments" { policy = "write" }\nmesh = "read"',
    );
    const sidecar = await startTestSidecar({
      service: 'billing',
      appPort: app.port,
      registry: [agent.url],
      dataDir: dataDir(),
      token,
    }).catch((err: unknown) => err as Error);
    try {
      // The agent refused it: its certificate (the sidecar asks the CA first) or its
      // registration; the audit log shows the refused attempt.
      const refused = await until(
        () =>
          refusedLines('/api/v1/mesh/ca/leaf')[0] ??
          refusedLines('/api/v1/instances').find((l) => l.what.includes('service:billing')),
        10_000,
        'a refused certificate or registration for billing',
      );
      assert.ok(refused);
      // ...and has neither its instance nor its stream.
      const r = await http(agent.url, 'GET', '/api/v1/services/billing/instances', undefined, m());
      assert.deepEqual(r.body.instances ?? [], []);
      assert.equal(
        (await proxies()).some((p) => p.name === 'billing'),
        false,
      );
    } finally {
      if (!(sidecar instanceof Error)) await sidecar.stop('test');
    }
  });
});
