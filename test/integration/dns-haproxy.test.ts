/**
 * @module HAProxy 2.6 (Debian bookworm) filling a `server-template` backend from the agent's SRV
 * answers, as docs/dns.md shows: every slot gets its instance, also when instances share an IP.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { http, startTestAgent, type TestAgent } from '../helpers/agent.js';
import { freePort } from '../helpers/ports.js';
import { until } from '../helpers/until.js';

const HAPROXY = '/usr/sbin/haproxy';
const SLOTS = 3;
/**
 * HAProxy's mask of the maintenance admin states (src/server.h: forced 0x01, inherited 0x02,
 * resolution failed 0x20). A slot without an address stays in 0x20; 0x40, the slot's FQDN set
 * from an SRV record, is the normal state of a filled slot.
 */
const SRV_ADMF_MAINT = 0x23;

/** The config: resolution every 100 ms, so a change shows within a fraction of a second. */
function haproxyConfig(dnsPort: number, frontendPort: number, socket: string): string {
  return `global
  stats socket ${socket} mode 600 level admin

resolvers meshwork
  nameserver agent 127.0.0.1:${dnsPort}
  accepted_payload_size 8192
  resolve_retries 3
  timeout resolve 100ms
  timeout retry 100ms
  hold valid 100ms

defaults
  mode http
  timeout connect 2s
  timeout client 5s
  timeout server 5s

frontend web
  bind 127.0.0.1:${frontendPort}
  default_backend same

backend same
  balance roundrobin
  server-template srv ${SLOTS} _same._tcp.service.consul resolvers meshwork resolve-prefer ipv4 init-addr none
`;
}

/** Sends one command to HAProxy's stats socket and answers its whole reply. */
function statsCommand(socket: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const conn = connect(socket);
    let out = '';
    conn.setEncoding('utf8');
    conn.on('data', (d: string) => (out += d));
    conn.on('end', () => resolve(out));
    conn.on('error', reject);
    conn.end(`${command}\n`);
  });
}

/** Per slot of `backend same`: `address:port` and the admin state (`show servers state`). */
async function slots(socket: string): Promise<{ addr: string; admin: number }[]> {
  const out = await statsCommand(socket, 'show servers state same');
  // Columns: be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state ... srv_port (19th).
  return out
    .split('\n')
    .filter((l) => /^\d+ same /.test(l))
    .map((l) => l.split(' '))
    .map((c) => ({ addr: `${c[4]}:${c[18]}`, admin: Number(c[6]) }));
}

interface Haproxy {
  readonly child: ChildProcess;
  readonly port: number;
  readonly exited: Promise<void>;
}

/**
 * Starts haproxy on a port found free just before; another process may take it in between, so
 * a start that fails to bind is retried on another port.
 */
async function startHaproxy(dir: string, dnsPort: number): Promise<Haproxy> {
  const socket = join(dir, 'stats.sock');
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const config = join(dir, 'haproxy.cfg');
    writeFileSync(config, haproxyConfig(dnsPort, port, socket));
    const child = spawn(HAPROXY, ['-db', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const up = await until(
      async () => {
        if (child.exitCode !== null) return 'exited';
        try {
          await statsCommand(socket, 'show info');
          return 'up';
        } catch {
          return undefined; // the socket is not there yet
        }
      },
      10_000,
      'haproxy answering on its stats socket',
    ).catch(async (err: unknown) => {
      child.kill('SIGKILL');
      await exited;
      throw err;
    });
    if (up === 'up') return { child, port, exited };
    if (attempt >= 3 || !/cannot bind|Address already in use/i.test(stderr)) {
      throw new Error(`haproxy exited: ${stderr}`);
    }
  }
}

/** An HTTP server on 127.0.0.1:0 answering its own name. */
async function upstream(name: string): Promise<Server> {
  const server = createServer((_req, res) => res.end(name));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

describe('HAProxy server-template from SRV answers', () => {
  let agent: TestAgent;
  let dir: string;
  let haproxy: Haproxy | undefined;
  const upstreams: Server[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshwork-haproxy-'));
    agent = await startTestAgent();
    for (const name of ['one', 'two', 'three']) upstreams.push(await upstream(name));
    for (const [n, server] of upstreams.entries()) {
      const r = await http(agent.url, 'PUT', '/api/v1/instances', {
        service: 'same',
        id: `same-${n}`,
        address: '127.0.0.1',
        port: (server.address() as AddressInfo).port,
      });
      assert.ok(r.status === 200 || r.status === 201, r.text);
    }
    haproxy = await startHaproxy(dir, agent.dns?.port ?? 0);
  });

  after(async () => {
    if (haproxy !== undefined && haproxy.child.exitCode === null) {
      haproxy.child.kill('SIGKILL');
      await haproxy.exited;
    }
    await Promise.all(upstreams.map((s) => new Promise((r) => s.close(r))));
    await agent?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('fills one slot per instance when the instances share an IP, and reaches each', async () => {
    const socket = join(dir, 'stats.sock');
    const expected = upstreams.map((s) => `127.0.0.1:${(s.address() as AddressInfo).port}`).sort();
    // Resolution runs every 100 ms; 10 s bounds a slow, shared machine.
    const filled = await until(
      async () => {
        const now = await slots(socket);
        const ok = now.length === SLOTS && now.every((s) => (s.admin & SRV_ADMF_MAINT) === 0);
        const addrs = now.map((s) => s.addr).sort();
        return ok && addrs.join() === expected.join() ? addrs : undefined;
      },
      10_000,
      `all ${SLOTS} slots filled`,
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}; last state: ${JSON.stringify(await slots(socket))}`);
    });
    assert.deepEqual(filled, expected);

    const seen = new Set<string>();
    for (let n = 0; n < 4 * SLOTS && seen.size < SLOTS; n++) {
      const res = await request(`http://127.0.0.1:${haproxy?.port ?? 0}/`);
      assert.equal(res.statusCode, 200);
      seen.add(await res.body.text());
    }
    assert.deepEqual([...seen].sort(), ['one', 'three', 'two']);
  });
});
