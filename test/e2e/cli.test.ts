/** End-to-end tests of the real `meshwork` binary: agent lifecycle and every operator command. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { BIN, runCli, spawnAgent, useAgentProcess } from '../helpers/cli.js';
import { collectSse } from '../helpers/sse.js';

describe('meshwork CLI', () => {
  const cli = useAgentProcess(['--dev']);
  const { dir } = cli;

  it('prints usage and exits 2 without a command, 0 for --help', async () => {
    assert.equal((await runCli([])).code, 2);
    const h = await runCli(['--help']);
    assert.equal(h.code, 0);
    assert.match(h.stdout, /Commands:/);
    const rh = await runCli(['register', '--help']);
    assert.equal(rh.code, 0);
    assert.match(rh.stdout, /Examples:/);
  });

  it('exits 2 on usage errors and names the problem', async () => {
    const r = await runCli(['register', '--service', 'x'], cli.env);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--service, --address and --port are required/);
    const u = await runCli(['services', '--bogus'], cli.env);
    assert.equal(u.code, 2);
    const unknown = await runCli(['frobnicate']);
    assert.equal(unknown.code, 2);
  });

  it('exits 1 when the registry is unreachable', async () => {
    const r = await runCli(['services', '--registry', 'http://127.0.0.1:1']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot reach the registry/);
  });

  it('registers, lists, heartbeats and deregisters', async () => {
    const reg = await runCli(
      [
        'register',
        '--service',
        'payments',
        '--id',
        'payments-1',
        '--address',
        '10.0.0.5',
        '--port',
        '8080',
        '--tag',
        'v2',
        '--meta',
        'zone=eu-1a',
        '--named-port',
        'grpc=9090',
        '--ttl',
        '30s',
      ],
      cli.env,
    );
    assert.equal(reg.code, 0, reg.stderr);
    assert.match(reg.stdout, /registered payments-1 \(payments, critical/);

    const hb = await runCli(['heartbeat', 'payments-1'], cli.env);
    assert.equal(hb.code, 0, hb.stderr);

    const svcs = await runCli(['services'], cli.env);
    assert.equal(svcs.code, 0);
    assert.match(svcs.stdout, /^SERVICE\s+INSTANCES/m);
    assert.match(svcs.stdout, /^payments\s+1\s/m);

    const inst = await runCli(['instances', 'payments', '--json'], cli.env);
    const parsed = JSON.parse(inst.stdout) as {
      instances: { id: string; ports: Record<string, number>; status: string }[];
    };
    assert.equal(parsed.instances[0]?.id, 'payments-1');
    assert.deepEqual(parsed.instances[0]?.ports, { grpc: 9090 });
    assert.equal(parsed.instances[0]?.status, 'passing');

    const table = await runCli(['instances', 'payments'], cli.env);
    assert.match(table.stdout, /^payments-1\s+10\.0\.0\.5:8080\s+passing\s+v2/m);

    const bad = await runCli(
      ['register', '--service', 'Bad_Name', '--address', '1.2.3.4', '--port', '1'],
      cli.env,
    );
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /service: must be/);

    const dereg = await runCli(['deregister', 'payments-1'], cli.env);
    assert.equal(dereg.code, 0);
    const again = await runCli(['deregister', 'payments-1'], cli.env);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /not found/);
  });

  it('lists the agent as the only member outside cluster mode', async () => {
    const r = await runCli(['members', '--json'], cli.env);
    assert.equal(r.code, 0, r.stderr);
    const parsed = JSON.parse(r.stdout) as { agents: { url: string; status: string }[] };
    assert.deepEqual(
      parsed.agents.map((m) => [m.url, m.status]),
      [[cli.agent.url, 'alive']],
    );
    const t = await runCli(['members'], cli.env);
    assert.match(t.stdout, /^NODE\s+URL\s+STATUS\s+JOINED/m);
  });

  it('applies a file declaratively', async () => {
    const file = join(dir, 'services.yaml');
    writeFileSync(
      file,
      `set: tour\nservices:\n  - { service: web, id: web-1, address: 10.0.0.1, port: 80 }\n  - { service: web, id: web-2, address: 10.0.0.2, port: 80 }\n`,
    );
    const one = await runCli(['apply', '-f', file], cli.env);
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, /2 created/);
    writeFileSync(
      file,
      `set: tour\nservices:\n  - { service: web, id: web-1, address: 10.0.0.1, port: 81 }\n`,
    );
    const two = await runCli(['apply', '-f', file, '--json'], cli.env);
    const r = JSON.parse(two.stdout) as { updated: string[]; deleted: string[] };
    assert.deepEqual(r.updated, ['web-1']);
    assert.deepEqual(r.deleted, ['web-2']);
    writeFileSync(file, 'services: [ {unclosed');
    const broken = await runCli(['apply', '-f', file], cli.env);
    assert.equal(broken.code, 2);
    assert.match(broken.stderr, /cannot read .*services\.yaml/);
  });

  it('watches a service and prints each change', async () => {
    const child = spawn(process.execPath, [BIN, 'watch', 'watched', '--json'], {
      env: { ...process.env, ...cli.env },
    });
    const lines: string[] = [];
    let buf = '';
    let wake = (): void => undefined;
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const parts = buf.split('\n');
      buf = parts.pop() ?? '';
      lines.push(...parts);
      wake();
    });
    const until = (n: number) =>
      new Promise<void>((resolve) => {
        wake = () => lines.length >= n && resolve();
        wake();
      });
    await until(1);
    assert.equal(JSON.parse(lines[0] ?? '').type, 'snapshot');
    await runCli(
      ['register', '--service', 'watched', '--id', 'w-1', '--address', '10.0.0.1', '--port', '1'],
      cli.env,
    );
    await until(2);
    const ev = JSON.parse(lines[1] ?? '') as { type: string; instance: { id: string } };
    assert.equal(ev.type, 'upsert');
    assert.equal(ev.instance.id, 'w-1');
    child.kill('SIGINT');
    const code = await new Promise((r) => child.once('exit', r));
    assert.equal(code, 0);
  });
});

describe('meshwork config validate', () => {
  it('prints the effective configuration, and exits 2 listing problems', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshwork-cfg-'));
    const good = join(dir, 'good.yaml');
    writeFileSync(good, 'http: 127.0.0.1:9000\n');
    const ok = await runCli(['config', 'validate', '--config', good, '--print'], {
      MESHWORK_AGENT__DATA_DIR: '/srv/mw',
    });
    assert.equal(ok.code, 0, ok.stderr);
    const printed = JSON.parse(ok.stdout) as { http: string; dataDir: string };
    assert.equal(printed.http, '127.0.0.1:9000');
    assert.equal(printed.dataDir, '/srv/mw');
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'http: 1\ndev: sometimes\n');
    const r = await runCli(['config', 'validate', '--config', bad]);
    rmSync(dir, { recursive: true, force: true });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /http:/);
    assert.match(r.stderr, /dev:/);
  });

  it('validates a gateway config with --gateway, naming each bad route field', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshwork-cfg-'));
    // The example the docs point at must stay valid.
    const good = fileURLToPath(new URL('../../examples/gateway.yaml', import.meta.url));
    const ok = await runCli(['config', 'validate', '--gateway', '--config', good]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^gateway configuration valid \(\d+ routes\)\n$/);
    const printed = await runCli(['config', 'validate', '--gateway', '--config', good, '--print']);
    const effective = JSON.parse(printed.stdout) as { listen: string; routes: { name?: string }[] };
    assert.equal(effective.listen, '127.0.0.1:8080');
    assert.equal(effective.routes[0]?.name, 'orders');
    const bad = join(dir, 'bad.yaml');
    writeFileSync(
      bad,
      'routes:\n  - match: { path: { prefix: /a } }\n    service: a\n    balancer: fastest\nretry: { maxAttempts: -1 }\n',
    );
    const r = await runCli(['config', 'validate', '--gateway', '--config', bad]);
    rmSync(dir, { recursive: true, force: true });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /routes\[0\]\.balancer/);
    assert.match(r.stderr, /retry/);
  });
});

describe('meshwork agent', () => {
  it('exits 2 and lists every problem for an invalid config file, before opening a port', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshwork-cfg-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(
      file,
      'http: nowhere\nlogLevel: loud\nservices:\n  - service: ok\n    address: 1.2.3.4\n    port: 99999\n',
    );
    const r = await runCli(['agent', '--config', file, '--dev']);
    rmSync(dir, { recursive: true, force: true });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /http: must be host:port/);
    assert.match(r.stderr, /logLevel:/);
    assert.match(r.stderr, /services\[0\]\.port/);
  });

  it('exits 2 for bad DNS flags and env, listed with the other problems', async () => {
    const r = await runCli(['agent', '--dev', '--http', 'nowhere', '--dns', 'nowhere'], {
      MESHWORK_DNS__DOMAIN: 'not a domain',
    });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /http: must be host:port/);
    assert.match(r.stderr, /dns\.listen: must be host:port .* or "off"/);
    assert.match(r.stderr, /dns\.domain: must be a DNS name/);
    assert.doesNotMatch(r.stdout, /listening/);
  });

  it('registers the services of its config file, reloads them on SIGHUP, and drains on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshwork-cfg-'));
    const file = join(dir, 'meshwork.yaml');
    writeFileSync(
      file,
      'services:\n  - { service: cfg, id: cfg-1, address: 10.0.0.1, port: 1 }\n  - { service: cfg, id: cfg-2, address: 10.0.0.2, port: 1 }\n',
    );
    const agent = await spawnAgent(['--dev', '--config', file]);
    const env = { MESHWORK_ADDR: agent.url };
    try {
      const list = async () =>
        JSON.parse((await runCli(['instances', 'cfg', '--json'], env)).stdout) as {
          index: number;
          instances: { id: string; source: string }[];
        };
      const first = await list();
      assert.deepEqual(
        first.instances.map((i) => i.id),
        ['cfg-1', 'cfg-2'],
      );
      assert.equal(first.instances[0]?.source, 'config');

      writeFileSync(
        file,
        'services:\n  - { service: cfg, id: cfg-1, address: 10.0.0.1, port: 1 }\n',
      );
      agent.child.kill('SIGHUP');
      // Wait for the reload through a blocking query on the service (no sleeping).
      const { request } = await import('undici');
      const res = await request(
        `${agent.url}/api/v1/services/cfg/instances?index=${first.index}&wait=10s`,
      );
      const after = (await res.body.json()) as { instances: { id: string }[] };
      assert.deepEqual(
        after.instances.map((i) => i.id),
        ['cfg-1'],
      );

      // A broken file on SIGHUP keeps the running config (and says so in the log).
      writeFileSync(file, 'services: [');
      agent.child.kill('SIGHUP');
      await agent.waitForStderr(/keeping the running config/);
      const still = await list();
      assert.deepEqual(
        still.instances.map((i) => i.id),
        ['cfg-1'],
      );
    } finally {
      const started = Date.now();
      agent.child.kill('SIGTERM');
      assert.equal(await agent.exited, 0);
      assert.ok(Date.now() - started < 5000, 'SIGTERM drains and exits within 5 s');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('answers pending blocking queries and ends streams when draining on SIGTERM', async () => {
    const agent = await spawnAgent(['--dev']);
    const { request } = await import('undici');
    const stream = await collectSse<{ type: string }>(`${agent.url}/api/v1/watch`);
    await stream.until(1);
    const pending = request(`${agent.url}/api/v1/services/x/instances?index=1&wait=60s`);
    // Signal only once the query is parked (the agent's watcher gauge says so).
    for (;;) {
      const m = await (await request(`${agent.url}/metrics`)).body.text();
      if (/meshwork_registry_watchers\{kind="blocking"\} 1/.test(m)) break;
    }
    agent.child.kill('SIGTERM');
    const res = await pending;
    assert.equal(res.statusCode, 200);
    assert.deepEqual(((await res.body.json()) as { instances: unknown[] }).instances, []);
    await stream.close();
    assert.equal(await agent.exited, 0);
  });
});

describe('meshwork agent --store etcd', () => {
  it('runs on a real etcd from the command line and lists itself as a member', async () => {
    const { startEtcd } = await import('../helpers/etcd.js');
    const etcd = await startEtcd();
    const agent = await spawnAgent([
      '--store',
      'etcd',
      '--etcd-endpoints',
      etcd.endpoint,
      '--node-name',
      'cli-etcd',
    ]);
    try {
      const env = { MESHWORK_ADDR: agent.url };
      const reg = await runCli(
        ['register', '--service', 'etcdsvc', '--id', 'e-1', '--address', '10.0.0.1', '--port', '1'],
        env,
      );
      assert.equal(reg.code, 0, reg.stderr);
      const members = JSON.parse((await runCli(['members', '--json'], env)).stdout) as {
        agents: { nodeName: string }[];
      };
      assert.deepEqual(
        members.agents.map((m) => m.nodeName),
        ['cli-etcd'],
      );
      const inst = JSON.parse((await runCli(['instances', 'etcdsvc', '--json'], env)).stdout) as {
        instances: { id: string }[];
      };
      assert.deepEqual(
        inst.instances.map((i) => i.id),
        ['e-1'],
      );
    } finally {
      agent.child.kill('SIGTERM');
      assert.equal(await agent.exited, 0);
      await etcd.stop();
    }
  });
});
