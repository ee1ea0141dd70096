/**
 * Registry ACLs end to end (issue 20): `meshwork agent --acl-default-policy deny --audit-log`,
 * `meshwork acl bootstrap` once (and still refused after a restart), policy and token create from
 * the CLI, a service token registering its own service only, the token from --token or
 * MESHWORK_TOKEN, the audit log, and DNS answering what the anonymous token may read
 * (--acl-dns) through a real resolver.
 */
import assert from 'node:assert/strict';
import { promises as dns } from 'node:dns';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli, spawnAgent, type AgentProcess } from '../helpers/cli.js';

describe('meshwork acl and an agent with --acl-default-policy deny', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshwork-acl-e2e-'));
  const audit = join(dir, 'audit.jsonl');
  const args = [
    '--acl-default-policy',
    'deny',
    '--acl-dns',
    '--audit-log',
    audit,
    '--data-dir',
    join(dir, 'data'),
    '--node-name',
    'acl-node',
  ];
  let agent: AgentProcess;
  let management = '';
  let orders = '';
  const env = () => ({ MESHWORK_ADDR: agent.url });
  const stop = async (): Promise<void> => {
    agent.child.kill('SIGTERM');
    await agent.exited;
  };

  before(async () => {
    agent = await spawnAgent(args);
  });
  after(async () => {
    await stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('bootstraps once from the CLI', async () => {
    const boot = await runCli(['acl', 'bootstrap', '--json'], env());
    assert.equal(boot.code, 0, boot.stderr);
    management = (JSON.parse(boot.stdout) as { SecretID: string }).SecretID;
    const again = await runCli(['acl', 'bootstrap'], env());
    assert.equal(again.code, 1);
    assert.match(again.stderr, /ACL bootstrap no longer allowed/);
  });

  it('creates a policy from a rules file and a token for it', async () => {
    const rules = join(dir, 'orders.hcl');
    writeFileSync(
      rules,
      'service "orders" { policy = "write" }\nservice_prefix "" { policy = "read" }\n',
    );
    const p = await runCli(
      ['acl', 'policy', 'create', '--name', 'orders', '--rules', rules, '--token', management],
      env(),
    );
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, /^ID: +[0-9a-f-]{36}\nName: +orders\n$/);
    const t = await runCli(
      ['acl', 'token', 'create', '--policy', 'orders', '--description', 'orders sidecar', '--json'],
      { ...env(), MESHWORK_TOKEN: management },
    );
    assert.equal(t.code, 0, t.stderr);
    const token = JSON.parse(t.stdout) as { SecretID: string; Policies: { Name: string }[] };
    assert.deepEqual(
      token.Policies.map((x) => x.Name),
      ['orders'],
    );
    orders = token.SecretID;
  });

  it("lets a service's token register that service only", async () => {
    const reg = (service: string, token?: string) =>
      runCli(
        [
          'register',
          '--service',
          service,
          '--address',
          '127.0.0.1',
          '--port',
          '8080',
          ...(token === undefined ? [] : ['--token', token]),
        ],
        env(),
      );
    assert.equal((await reg('orders', orders)).code, 0);
    const other = await reg('payments', orders);
    assert.equal(other.code, 1);
    assert.match(
      other.stderr,
      /Permission denied: token lacks permission 'service:payments write'/,
    );
    const none = await reg('orders');
    assert.equal(none.code, 1);
    const list = await runCli(['services', '--json'], { ...env(), MESHWORK_TOKEN: orders });
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(
      (JSON.parse(list.stdout) as { services: { name: string }[] }).services.map((s) => s.name),
      ['orders'],
    );
  });

  it('audits every write with the accessor id, never the secret', () => {
    const lines = readFileSync(audit, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const registers = lines.filter((l) => l.path === '/api/v1/instances');
    assert.deepEqual(
      registers.map((l) => [l.status, l.what]),
      [
        [200, ['service:orders']],
        [403, ['service:payments']],
        [403, ['service:orders']],
      ],
    );
    assert.equal(registers[2]?.accessorId, 'anonymous');
    assert.ok(!readFileSync(audit, 'utf8').includes(orders));
    assert.ok(!readFileSync(audit, 'utf8').includes(management));
  });

  it('answers in DNS only what the anonymous token may read', async () => {
    const resolver = new dns.Resolver();
    resolver.setServers([`127.0.0.1:${String(agent.dnsPort)}`]);
    await assert.rejects(resolver.resolveSrv('orders.service.consul'), { code: 'ENOTFOUND' });
    const http = (method: string, path: string, body: unknown) =>
      fetch(agent.url + path, {
        method,
        headers: { 'x-consul-token': management },
        body: JSON.stringify(body),
      });
    const p = await http('PUT', '/v1/acl/policy', {
      Name: 'dns',
      Rules: 'service "orders" { policy = "read" }',
    });
    assert.equal(p.status, 200);
    const anon = await http('PUT', '/v1/acl/token/00000000-0000-0000-0000-000000000002', {
      Policies: [{ Name: 'dns' }],
    });
    assert.equal(anon.status, 200);
    const srv = await resolver.resolveSrv('orders.service.consul');
    assert.deepEqual(
      srv.map((r) => r.port),
      [8080],
    );
  });

  it('keeps tokens and the bootstrap across a restart (sqlite)', async () => {
    await stop();
    agent = await spawnAgent(args);
    const again = await runCli(['acl', 'bootstrap'], env());
    assert.match(again.stderr, /ACL bootstrap no longer allowed/);
    const list = await runCli(['services', '--json', '--token', orders], env());
    assert.equal(list.code, 0, list.stderr);
  });
});
