/**
 * `meshwork gateway` as a real process (issue 7): bad config exits 2 listing every problem; a
 * 1 GB upload and a large download stream through in constant memory; WebSocket echo through
 * the gateway; SIGTERM drains in-flight requests and exits 0; failover at a steady 1,000 rps
 * when one of three upstream processes is killed with SIGKILL.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Pool, request, WebSocket } from 'undici';
import { createRegistryClient, type RegistryClient } from '../../src/client/registry-client.js';
import { startTestAgent, type TestAgent } from '../helpers/agent.js';
import { runCli, spawnGateway, type GatewayProcess } from '../helpers/cli.js';
import { until } from '../helpers/gateway.js';

/** Resident set size of a process, in MiB (Linux). */
function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) / 1024;
}

/** An upstream in its own process (so it can be killed with SIGKILL); resolves its port. */
async function spawnUpstream(id: string): Promise<{ child: ChildProcess; port: number }> {
  const code = `
    const http = require('node:http');
    const s = http.createServer((req, res) => { req.resume(); req.on('end', () => res.end(${JSON.stringify(id)})); });
    s.keepAliveTimeout = 30000;
    s.listen(0, '127.0.0.1', () => process.stdout.write(s.address().port + '\\n'));`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve) => {
    child.stdout?.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
  });
  return { child, port };
}

/** A minimal RFC 6455 echo server: handshake, then each masked text frame back unmasked. */
function startWsEcho(): Promise<Server> {
  const server = createServer((_req, res) => res.writeHead(426).end());
  server.on('upgrade', (req, socket) => {
    socket.on('error', () => socket.destroy());
    const accept = createHash('sha1')
      .update(`${String(req.headers['sec-websocket-key'])}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
      .digest('base64');
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
    );
    let buf = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 6) {
        const opcode = (buf[0] as number) & 0x0f;
        const len = (buf[1] as number) & 0x7f; // short frames only: enough for a test
        if (buf.length < 6 + len) return;
        const mask = buf.subarray(2, 6);
        const payload = Buffer.from(
          buf.subarray(6, 6 + len).map((b, i) => b ^ (mask[i % 4] as number)),
        );
        buf = buf.subarray(6 + len);
        if (opcode === 0x8) {
          socket.end(Buffer.from([0x88, 0]));
          return;
        }
        socket.write(Buffer.concat([Buffer.from([0x80 | opcode, payload.length]), payload]));
      }
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

describe('meshwork gateway (process)', () => {
  let agent: TestAgent;
  let registry: RegistryClient;
  let dir: string;

  before(async () => {
    agent = await startTestAgent();
    registry = createRegistryClient({ addresses: [agent.url] });
    dir = mkdtempSync(join(tmpdir(), 'meshwork-gw-'));
  });
  after(async () => {
    await agent.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('exits 2 listing every problem of a bad config before opening a port', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(
      file,
      [
        'listen: nowhere',
        'routes:',
        '  - match: { path: { regex: "([" } }',
        '    service: Not_A_Service',
        // Issue 16: route regexes are RE2; lookaround and backreferences are refused.
        '  - match: { headers: [{ name: x-v, regex: "(?=v)" }] }',
        '    service: b',
        '  - match: { path: { prefix: /a } }',
        '    service: a',
        '    balancer: fastest',
        'bogus: 1',
      ].join('\n'),
    );
    const r = await runCli(['gateway', '--config', file, '--registry', agent.url]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /listen: must be host:port/);
    assert.match(
      r.stderr,
      /routes\[0\]\.match\.path\.regex: not an RE2 regular expression \(error parsing regexp: missing closing \]/,
    );
    assert.match(
      r.stderr,
      /routes\[1\]\.match\.headers\[0\]\.regex: not an RE2 regular expression \(error parsing regexp: invalid or unsupported Perl syntax/,
    );
    assert.match(r.stderr, /routes\[0\]\.service/);
    assert.match(r.stderr, /bogus/);
    assert.doesNotMatch(r.stderr, /listening/);
  });

  describe('with a running gateway', () => {
    let gw: GatewayProcess;
    let big: Server;
    let ws: Server;
    before(async () => {
      // Counts upload bytes; streams a download of ?mib= MiB without holding it.
      big = createServer((req, res) => {
        req.on('error', () => undefined);
        if (req.method === 'POST') {
          let n = 0;
          req.on('data', (d: Buffer) => (n += d.length));
          req.on('end', () => res.end(String(n)));
          return;
        }
        const mib = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('mib') ?? 1);
        const chunk = Buffer.alloc(1 << 20, 0x61);
        let sent = 0;
        res.writeHead(200, { 'content-length': String(mib << 20) });
        const pump = (): void => {
          while (sent < mib) {
            sent++;
            if (!res.write(chunk)) {
              res.once('drain', pump);
              return;
            }
          }
          res.end();
        };
        pump();
      });
      await new Promise<void>((r) => big.listen(0, '127.0.0.1', r));
      ws = await startWsEcho();
      await registry.register({
        service: 'big',
        id: 'big-1',
        address: '127.0.0.1',
        port: (big.address() as { port: number }).port,
      });
      await registry.register({
        service: 'echo',
        id: 'echo-1',
        address: '127.0.0.1',
        port: (ws.address() as { port: number }).port,
      });
      const config = join(dir, 'gateway.yaml');
      writeFileSync(
        config,
        [
          'routes:',
          '  - name: chat',
          '    match: { path: { prefix: /chat } }',
          '    service: echo',
          // The 1 GB stream is about memory, not speed: on a busy machine it may take longer
          // than the default request deadline (a 504), so its route has a long one.
          '  - name: big',
          '    match: { host: big.mesh.local }',
          '    service: big',
          '    timeoutMs: 600000',
        ].join('\n'),
      );
      gw = await spawnGateway(['--registry', agent.url, '--config', config]);
    });
    after(async () => {
      gw.child.kill('SIGKILL');
      big.closeAllConnections();
      big.close();
      ws.close();
    });

    it('streams a 1 GB upload and a 256 MiB download in constant memory', async () => {
      const pid = gw.child.pid as number;
      let maxRss = rssMiB(pid);
      const sampler = setInterval(() => (maxRss = Math.max(maxRss, rssMiB(pid))), 50);
      try {
        const chunk = Buffer.alloc(1 << 20, 0x62);
        const total = 1024;
        const body = (): Readable =>
          Readable.from(
            (function* () {
              for (let i = 0; i < total; i++) yield chunk;
            })(),
          );
        const up = await request(`${gw.url}/upload`, {
          method: 'POST',
          headers: { host: 'big.mesh.local', 'content-length': String(total << 20) },
          body: body(),
        });
        assert.equal(up.statusCode, 200);
        assert.equal(await up.body.text(), String(total << 20));
        const down = await request(`${gw.url}/download?mib=256`, {
          headers: { host: 'big.mesh.local' },
        });
        assert.equal(down.statusCode, 200);
        let n = 0;
        for await (const c of down.body) n += (c as Buffer).length;
        assert.equal(n, 256 << 20);
      } finally {
        clearInterval(sampler);
      }
      assert.ok(maxRss < 200, `gateway RSS peaked at ${maxRss.toFixed(0)} MiB`);
    });

    it('carries a WebSocket through the gateway (echo)', async () => {
      const socket = new WebSocket(`ws://${new URL(gw.url).host}/chat`);
      const messages: string[] = [];
      await new Promise<void>((resolve, reject) => {
        socket.addEventListener('open', () => {
          socket.send('hello');
          socket.send('mesh');
        });
        socket.addEventListener('message', (e) => {
          messages.push(String(e.data));
          if (messages.length === 2) resolve();
        });
        socket.addEventListener('error', () => reject(new Error('websocket error')));
      });
      socket.close();
      assert.deepEqual(messages, ['hello', 'mesh']);
    });
  });

  it('reloads its config on SIGHUP; an invalid one is refused and the running one stays', async () => {
    const upstreams = await Promise.all(['reload-a', 'reload-b'].map((id) => spawnUpstream(id)));
    for (const [i, u] of upstreams.entries()) {
      await registry.register({
        service: ['reload-a', 'reload-b'][i] as string,
        id: `reload-${i}`,
        address: '127.0.0.1',
        port: u.port,
      });
    }
    const config = join(dir, 'reload.yaml');
    const routeTo = (service: string): string =>
      `routes:\n  - name: app\n    match: { path: { prefix: /app } }\n    service: ${service}\n`;
    writeFileSync(config, routeTo('reload-a'));
    const gw = await spawnGateway(['--registry', agent.url, '--config', config]);
    const answer = async (): Promise<string> => {
      const r = await request(`${gw.url}/app`);
      return `${r.statusCode} ${await r.body.text()}`;
    };
    const reloads = async (result: string): Promise<number> => {
      const m = await request(`${gw.adminUrl}/metrics`).then((r) => r.body.text());
      const re = new RegExp(`meshwork_gateway_config_reloads_total\\{result="${result}"\\} (\\d+)`);
      return Number(re.exec(m)?.[1] ?? 0);
    };
    try {
      assert.equal(await answer(), '200 reload-a');
      writeFileSync(config, routeTo('reload-b'));
      gw.child.kill('SIGHUP');
      await until(async () => (await reloads('applied')) === 1, 5_000, 'the reload applied');
      assert.equal(await answer(), '200 reload-b');

      writeFileSync(config, `${routeTo('reload-a')}    balancer: fastest\n`);
      gw.child.kill('SIGHUP');
      await until(async () => (await reloads('invalid')) === 1, 5_000, 'the reload refused');
      assert.equal(await answer(), '200 reload-b', 'the running config stays');
      assert.match(gw.stderr(), /config reload refused/);
      assert.match(gw.stderr(), /routes\[0\]\.balancer/);
      assert.equal(gw.child.exitCode, null, 'still running');
    } finally {
      gw.child.kill('SIGKILL');
      for (const u of upstreams) u.child.kill('SIGKILL');
      for (const i of [0, 1]) await registry.deregister(`reload-${i}`);
    }
  });

  it('drains on SIGTERM: in-flight requests finish, then it exits 0', async () => {
    const slow = createServer((req, res) => {
      req.resume();
      setTimeout(() => res.end('done'), 400);
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    await registry.register({
      service: 'slowpoke',
      id: 'slowpoke-1',
      address: '127.0.0.1',
      port: (slow.address() as { port: number }).port,
    });
    const gw = await spawnGateway(['--registry', agent.url]);
    try {
      const warm = await request(`${gw.url}/`, { headers: { host: 'slowpoke.mesh.local' } });
      assert.equal(await warm.body.text(), 'done');
      const inflight = Array.from({ length: 5 }, () =>
        request(`${gw.url}/`, { headers: { host: 'slowpoke.mesh.local' } }).then(async (r) => ({
          status: r.statusCode,
          text: await r.body.text(),
        })),
      );
      await until(
        async () => {
          const m = await request(`${gw.adminUrl}/metrics`).then((r) => r.body.text());
          return /meshwork_gateway_active_requests 5/.test(m);
        },
        5_000,
        'five requests in flight',
      );
      gw.child.kill('SIGTERM');
      const results = await Promise.all(inflight);
      for (const r of results) assert.deepEqual(r, { status: 200, text: 'done' });
      assert.equal(await gw.exited, 0);
      await assert.rejects(request(`${gw.url}/`, { headers: { host: 'slowpoke.mesh.local' } }));
    } finally {
      gw.child.kill('SIGKILL');
      slow.closeAllConnections();
      slow.close();
    }
  });

  it('fails over at 1,000 rps when an upstream is killed: >= 99.9% succeed, out of rotation within 2 s', async () => {
    const upstreams = await Promise.all([1, 2, 3].map((n) => spawnUpstream(`fo-${n}`)));
    for (const [i, u] of upstreams.entries()) {
      await registry.register({
        service: 'failover',
        id: `fo-${i + 1}`,
        address: '127.0.0.1',
        port: u.port,
      });
    }
    const gw = await spawnGateway(['--registry', agent.url]);
    const pool = new Pool(gw.url, { connections: 64 });
    try {
      const one = async (): Promise<boolean> => {
        try {
          const r = await pool.request({
            path: '/',
            method: 'GET',
            headers: { host: 'failover.mesh.local' },
          });
          await r.body.text();
          return r.statusCode === 200;
        } catch {
          return false;
        }
      };
      assert.equal(await one(), true);
      const rate = 1000;
      const seconds = 4;
      const results: Promise<boolean>[] = [];
      const start = Date.now();
      let killedAt = 0;
      let outAt = 0;
      // Open loop: request i is sent at start + i ms, whatever happened to the others.
      await new Promise<void>((resolve) => {
        const tick = setInterval(() => {
          const due = Math.min(rate * seconds, Math.floor(((Date.now() - start) * rate) / 1000));
          while (results.length < due) results.push(one());
          if (killedAt === 0 && Date.now() - start >= 1000) {
            (upstreams[0] as { child: ChildProcess }).child.kill('SIGKILL');
            killedAt = Date.now();
          }
          if (results.length >= rate * seconds) {
            clearInterval(tick);
            resolve();
          }
        }, 5);
        const poll = async (): Promise<void> => {
          while (outAt === 0 && Date.now() - start < seconds * 1000 + 2000) {
            if (killedAt !== 0) {
              const m = await request(`${gw.adminUrl}/metrics`).then((r) => r.body.text());
              if (
                /meshwork_gateway_upstream_instances\{service="failover",state="available"\} 2/.test(
                  m,
                )
              ) {
                outAt = Date.now();
              }
            }
            await new Promise((r) => setTimeout(r, 20));
          }
        };
        void poll();
      });
      const ok = (await Promise.all(results)).filter(Boolean).length;
      await until(() => outAt !== 0, 3_000, 'the dead instance to leave rotation');
      assert.ok(ok / results.length >= 0.999, `${ok} of ${results.length} succeeded`);
      assert.ok(outAt - killedAt <= 2000, `left rotation after ${outAt - killedAt} ms`);
    } finally {
      await pool.close();
      gw.child.kill('SIGKILL');
      for (const u of upstreams) u.child.kill('SIGKILL');
    }
  });
});
