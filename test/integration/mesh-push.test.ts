/**
 * The push protocol end to end over real sockets: the agent's HTTP server with the push routes,
 * fed by a snapshot source the test drives, and MeshSubscribers (the proxy side) on port 0.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import {
  MeshSubscriber,
  SNAPSHOT_FILE,
  type MeshSubscriberOptions,
} from '../../src/client/mesh-subscriber.js';
import type { MeshSnapshot, ProxyIdentity, ProxyStatus } from '../../src/protocol/mesh/snapshot.js';
import { FakeClock } from '../../src/testing/fake-clock.js';
import { PassThrough } from 'node:stream';
import { command as proxyStatus } from '../../src/cli/commands/proxy-status.js';
import { http } from '../helpers/agent.js';
import {
  DrivenSnapshotSource,
  nextEvent,
  openRawStream,
  snapshotOf,
  startPushAgent,
  type PushAgent,
} from '../helpers/mesh-push.js';

const GATEWAY: ProxyIdentity = {
  id: 'gw-1',
  kind: 'gateway',
  name: 'edge',
  namespace: 'default',
};

/** Resolves once `clock` has at least `n` timers pending (the code under test armed them). */
async function timersArmed(clock: FakeClock, n = 1): Promise<void> {
  while (clock.pendingTimers < n) await new Promise((r) => setImmediate(r));
}

async function proxies(agent: { url: string }, query = ''): Promise<ProxyStatus[]> {
  const r = await http(agent.url, 'GET', `/api/v1/mesh/proxies${query}`);
  assert.equal(r.status, 200, r.text);
  return r.body.proxies as ProxyStatus[];
}

/** A port nothing listens on (bound, then closed). */
async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'meshwork-push-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function agentWith(opts: Parameters<typeof startPushAgent>[0]): Promise<PushAgent> {
  const agent = await startPushAgent(opts);
  cleanups.push(() => agent.close());
  return agent;
}

function subscriber(
  opts: Partial<MeshSubscriberOptions> & Pick<MeshSubscriberOptions, 'registry'>,
): { sub: MeshSubscriber; applied: MeshSnapshot[] } {
  const applied: MeshSnapshot[] = [];
  const sub = new MeshSubscriber({
    proxy: GATEWAY,
    apply: (s) => {
      applied.push(s);
    },
    backoff: { initialMs: 5, maxMs: 40 },
    ...opts,
  });
  cleanups.push(() => sub.close());
  return { sub, applied };
}

describe('mesh push', () => {
  after(() => undefined);

  it('pushes the current snapshot, which the proxy applies, persists and ACKs (SYNCED)', async () => {
    const source = new DrivenSnapshotSource('v1');
    const agent = await agentWith({ source });
    const dataDir = tempDir();
    const { sub, applied } = subscriber({ registry: [agent.url], dataDir });
    const answered = nextEvent(sub, 'answered');
    assert.equal(await sub.start(), 'agent');
    assert.deepEqual(await answered, [{ id: 'gw-1', version: 'v1' }]);
    assert.deepEqual(
      applied.map((s) => s.version),
      ['v1'],
    );
    assert.equal(sub.current?.version, 'v1');
    const persisted = JSON.parse(readFileSync(join(dataDir, SNAPSHOT_FILE), 'utf8'));
    assert.equal(persisted.version, 'v1');
    const [status] = await proxies(agent);
    assert.deepEqual(
      { ...status, connectedAt: 0 },
      {
        ...GATEWAY,
        agent: 'node-a',
        connectedAt: 0,
        sent: 'v1',
        acked: 'v1',
        state: 'SYNCED',
      },
    );

    // A new version: pushed, applied, ACKed.
    const second = nextEvent(sub, 'answered', (a) => a.version === 'v2');
    source.publish('v2');
    await second;
    assert.equal(sub.current?.version, 'v2');
    assert.equal(JSON.parse(readFileSync(join(dataDir, SNAPSHOT_FILE), 'utf8')).version, 'v2');
    assert.deepEqual(
      (await proxies(agent)).map((p) => [p.sent, p.acked, p.state]),
      [['v2', 'v2', 'SYNCED']],
    );
    const metrics = await agent.metrics.metrics();
    assert.match(metrics, /meshwork_mesh_proxies_connected\{kind="gateway"\} 1/);
    assert.match(metrics, /meshwork_mesh_pushes_total 2/);
    assert.match(metrics, /meshwork_mesh_acks_total\{result="ack"\} 2/);
    assert.match(metrics, /meshwork_mesh_push_ack_seconds_count 2/);
  });

  it('NACKs a snapshot apply refuses, keeps the last good one, and shows NACKED', async () => {
    const source = new DrivenSnapshotSource('v1');
    const agent = await agentWith({ source });
    const dataDir = tempDir();
    const { sub } = subscriber({
      registry: [agent.url],
      dataDir,
      apply: (s) => {
        if (s.routes[0]?.name.includes('bad')) throw new Error('regex "(" does not compile');
      },
    });
    const first = nextEvent(sub, 'answered');
    await sub.start();
    await first;
    const nack = nextEvent(sub, 'nack');
    const answered = nextEvent(sub, 'answered', (a) => a.version === 'v2');
    source.publish('v2', 'bad');
    assert.deepEqual(await nack, ['v2', 'regex "(" does not compile']);
    assert.deepEqual(await answered, [
      { id: 'gw-1', version: 'v2', error: 'regex "(" does not compile' },
    ]);
    assert.equal(sub.current?.version, 'v1');
    assert.equal(JSON.parse(readFileSync(join(dataDir, SNAPSHOT_FILE), 'utf8')).version, 'v1');
    const [status] = await proxies(agent);
    assert.equal(status?.state, 'NACKED');
    assert.equal(status?.sent, 'v2');
    assert.equal(status?.acked, 'v1');
    assert.equal(status?.nackedVersion, 'v2');
    assert.equal(status?.error, 'regex "(" does not compile');
    assert.match(await agent.metrics.metrics(), /meshwork_mesh_acks_total\{result="nack"\} 1/);

    // A good version after it: SYNCED again, the NACK forgotten.
    const fixed = nextEvent(sub, 'answered', (a) => a.version === 'v3');
    source.publish('v3', 'good');
    await fixed;
    const [again] = await proxies(agent);
    assert.equal(again?.state, 'SYNCED');
    assert.equal(again?.error, undefined);
  });

  it('reconnects when the agent goes away and resyncs from the version it holds', async () => {
    const source = new DrivenSnapshotSource('v1');
    const first = await startPushAgent({ source });
    const { sub, applied } = subscriber({ registry: [first.url] });
    const acked = nextEvent(sub, 'answered');
    await sub.start();
    await acked;
    const gone = nextEvent(sub, 'disconnected');
    await first.close();
    await gone;

    // The same snapshot on the agent that comes back: not sent again, recorded as ACKed.
    const connected = nextEvent(sub, 'connected');
    const back = await agentWith({ source, port: first.port });
    await connected;
    const [status] = await proxies(back);
    assert.deepEqual([status?.sent, status?.acked, status?.state], ['v1', 'v1', 'SYNCED']);
    assert.deepEqual(
      applied.map((s) => s.version),
      ['v1'],
    );

    // And what changed while it was away comes in on the next stream.
    const gone2 = nextEvent(sub, 'disconnected');
    await back.close();
    cleanups.pop();
    await gone2;
    source.publish('v2');
    const resynced = nextEvent(sub, 'answered', (a) => a.version === 'v2');
    const third = await agentWith({ source, port: first.port });
    await resynced;
    assert.deepEqual(
      applied.map((s) => s.version),
      ['v1', 'v2'],
    );
    assert.equal((await proxies(third))[0]?.state, 'SYNCED');
  });

  it('resyncs through a new stream when an ACK does not get through', async () => {
    const source = new DrivenSnapshotSource('v1');
    let drop = 1;
    const agent = await agentWith({ source, failAck: () => drop-- > 0 });
    const { sub, applied } = subscriber({ registry: [agent.url] });
    const dropped = nextEvent(sub, 'disconnected');
    // Registered as soon as the stream drops, well before the backoff's timer fires.
    const reconnected = dropped.then(() => nextEvent(sub, 'connected'));
    await sub.start();
    const [, reason] = await dropped;
    assert.match(reason, /^ACK failed \(HTTP 503: .*ACK dropped/);
    await reconnected;
    // The new stream said "version=v1": recorded as ACKed, nothing sent again.
    assert.deepEqual(
      (await proxies(agent)).map((p) => [p.sent, p.acked, p.state]),
      [['v1', 'v1', 'SYNCED']],
    );
    assert.deepEqual(
      applied.map((s) => s.version),
      ['v1'],
    );
  });

  it('rotates through the agent URLs until one answers', async () => {
    const source = new DrivenSnapshotSource('v1');
    const agent = await agentWith({ source });
    const dead = `http://127.0.0.1:${await deadPort()}`;
    const { sub } = subscriber({ registry: [dead, agent.url] });
    const connected = nextEvent(sub, 'connected');
    assert.equal(await sub.start(), 'agent');
    assert.deepEqual(await connected, [agent.url]);
  });

  it('replaces the stream of a proxy id that connects again', async () => {
    const source = new DrivenSnapshotSource('v1');
    const agent = await agentWith({ source });
    const query = 'id=gw-1&kind=gateway&name=edge';
    const a = await openRawStream(agent.url, query);
    await a.until(1);
    const b = await openRawStream(agent.url, `${query}&namespace=prod`);
    cleanups.push(() => b.close());
    await a.ended;
    await b.until(1);
    const list = await proxies(agent);
    assert.equal(list.length, 1);
    assert.equal(list[0]?.namespace, 'prod');
    assert.equal(source.watchers, 1);
    assert.match(
      await agent.metrics.metrics(),
      /meshwork_mesh_proxies_connected\{kind="gateway"\} 1/,
    );
  });

  it('starts from the persisted snapshot when no agent answers', async () => {
    const dataDir = tempDir();
    writeFileSync(join(dataDir, SNAPSHOT_FILE), JSON.stringify(snapshotOf(GATEWAY, 'v7')));
    const dead = `http://127.0.0.1:${await deadPort()}`;
    const { sub, applied } = subscriber({
      registry: [dead],
      dataDir,
      // Another run of the same gateway: another id, the same name.
      proxy: { ...GATEWAY, id: 'gw-2' },
    });
    assert.equal(await sub.start(), 'disk');
    assert.equal(sub.current?.version, 'v7');
    assert.deepEqual(
      applied.map((s) => s.version),
      ['v7'],
    );

    // Once an agent answers, it says which version it holds: v7 is not sent again.
    const source = new DrivenSnapshotSource('v7');
    const agent = await agentWith({ source });
    const second = subscriber({
      registry: [agent.url],
      dataDir,
      proxy: { ...GATEWAY, id: 'gw-3' },
    });
    const connected = nextEvent(second.sub, 'connected');
    assert.equal(await second.sub.start(), 'disk');
    await connected;
    assert.deepEqual(
      (await proxies(agent)).map((p) => [p.id, p.sent, p.acked, p.state]),
      [['gw-3', 'v7', 'v7', 'SYNCED']],
    );
    assert.deepEqual(
      second.applied.map((s) => s.version),
      ['v7'],
    );
  });

  it('ignores a persisted file of another gateway, or one that is not a snapshot', async () => {
    const dataDir = tempDir();
    const dead = `http://127.0.0.1:${await deadPort()}`;
    for (const content of [
      JSON.stringify(snapshotOf({ ...GATEWAY, name: 'other' }, 'v1')),
      '{"version":"v1"',
      JSON.stringify({ version: 'v1', routes: {} }),
    ]) {
      writeFileSync(join(dataDir, SNAPSHOT_FILE), content);
      const clock = new FakeClock();
      const { sub, applied } = subscriber({
        registry: [dead],
        dataDir,
        clock,
        startTimeoutMs: 1000,
      });
      const started = sub.start();
      await timersArmed(clock);
      clock.advance(1000);
      assert.equal(await started, 'none', content);
      assert.equal(applied.length, 0);
      await sub.close();
    }
  });

  it('treats a stream silent for three ping intervals as dead, and reconnects', async () => {
    // The agent's clock never moves: no pings. The subscriber's does.
    const source = new DrivenSnapshotSource('v1');
    const agent = await agentWith({ source, clock: new FakeClock(), pingIntervalMs: 1000 });
    const clock = new FakeClock();
    const { sub } = subscriber({
      registry: [agent.url],
      clock,
      backoff: { initialMs: 10, maxMs: 10 },
    });
    const answered = nextEvent(sub, 'answered');
    await sub.start();
    await answered;
    const dropped = nextEvent(sub, 'disconnected');
    clock.advance(2999);
    assert.equal(agent.push.book.size, 1);
    clock.advance(1);
    assert.deepEqual(await dropped, [agent.url, 'no frame for 3000 ms']);
    const reconnected = nextEvent(sub, 'connected');
    await timersArmed(clock);
    clock.advance(10);
    await reconnected;
  });

  it('sends a ping frame after each quiet interval', async () => {
    const clock = new FakeClock();
    const source = new DrivenSnapshotSource('v1');
    const agent = await agentWith({ source, clock, pingIntervalMs: 500 });
    const s = await openRawStream(
      agent.url,
      'id=s1&kind=sidecar&name=orders&upstreams=payments,users',
    );
    cleanups.push(() => s.close());
    assert.equal(s.status, 200);
    assert.match(String(s.headers['content-type']), /^application\/x-ndjson/);
    assert.equal(s.headers['x-meshwork-ping-interval-ms'], '500');
    await s.until(1);
    clock.advance(500);
    await s.until(2);
    clock.advance(500);
    await s.until(3);
    assert.deepEqual(
      s.frames.map((f) => f.type),
      ['snapshot', 'ping', 'ping'],
    );
    const first = s.frames[0];
    assert.ok(first?.type === 'snapshot');
    assert.deepEqual(first.snapshot.proxy.upstreams, ['payments', 'users']);
  });

  it('sends nothing while the version the proxy holds is current', async () => {
    const clock = new FakeClock();
    const source = new DrivenSnapshotSource('v1');
    const agent = await agentWith({ source, clock, pingIntervalMs: 500 });
    const s = await openRawStream(agent.url, 'id=g&kind=gateway&name=edge&version=v1');
    cleanups.push(() => s.close());
    clock.advance(500);
    await s.until(1);
    source.publish('v2');
    await s.until(2);
    assert.deepEqual(
      s.frames.map((f) => (f.type === 'ping' ? 'ping' : f.snapshot.version)),
      ['ping', 'v2'],
    );
  });

  it('keeps only the newest snapshot for a proxy that does not read', async () => {
    const source = new DrivenSnapshotSource('v0');
    const agent = await agentWith({ source });
    const { Socket } = await import('node:net');
    const stalled = new Socket();
    await new Promise<void>((r) => stalled.connect(agent.port, '127.0.0.1', () => r()));
    stalled.pause();
    stalled.write(
      `GET /api/v1/mesh/stream?id=slow&kind=gateway&name=edge HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`,
    );
    cleanups.push(() => void stalled.destroy());
    while (agent.push.book.size === 0) await new Promise((r) => setImmediate(r));
    // 1 MB a snapshot: the socket's buffers (the kernel's included) fill after a few.
    const big = 'x'.repeat(1_000_000);
    for (let i = 1; i <= 100; i++) {
      source.publish(`v${i}`, big);
      await new Promise((r) => setImmediate(r));
    }
    const [status] = await proxies(agent);
    assert.notEqual(status?.sent, 'v100', 'the stalled proxy was not written every version');

    // Once it reads, it gets the newest, and far fewer frames than versions.
    let text = '';
    stalled.on('data', (d: Buffer) => (text += d.toString('latin1')));
    stalled.resume();
    while (!text.includes('"version":"v100"')) await once(stalled, 'data');
    const versions = [...text.matchAll(/"version":"(v\d+)"/g)].map((m) => m[1]);
    assert.ok(versions.length < 50, `${versions.length} frames for 100 versions`);
    assert.equal(versions.at(-1), 'v100');
    assert.equal((await proxies(agent))[0]?.sent, 'v100');
  });

  it('ends every stream when the agent shuts down', async () => {
    const source = new DrivenSnapshotSource('v1');
    const agent = await startPushAgent({ source });
    const { sub } = subscriber({
      registry: [agent.url],
      backoff: { initialMs: 60_000, maxMs: 60_000 },
    });
    const answered = nextEvent(sub, 'answered');
    await sub.start();
    await answered;
    const gone = nextEvent(sub, 'disconnected');
    await agent.close();
    assert.deepEqual(await gone, [agent.url, 'the agent ended the stream']);
    assert.equal(source.watchers, 0);
  });

  it('refuses a bad stream query with 400 naming the parameter', async () => {
    const agent = await agentWith({ source: new DrivenSnapshotSource() });
    const cases: [string, string][] = [
      ['kind=gateway&name=edge', 'id'],
      ['id=a&kind=proxy&name=edge', 'kind'],
      ['id=a&kind=gateway', 'name'],
      ['id=a&kind=gateway&name=edge&upstreams=a,,b', 'upstreams'],
      ['id=a&kind=gateway&name=edge&upstream=a', 'upstream'],
      ['id=a&id=b&kind=gateway&name=edge', 'id'],
      ['id=a&kind=gateway&name=edge&version=', 'version'],
      ['id=a%01&kind=gateway&name=edge', 'id'],
    ];
    for (const [query, field] of cases) {
      const r = await http(agent.url, 'GET', `/api/v1/mesh/stream?${query}`);
      assert.equal(r.status, 400, query);
      assert.equal(r.body.error.code, 'MESHWORK_ERR_API_VALIDATION', query);
      assert.equal(r.body.error.field, field, query);
    }
    assert.equal(
      (await http(agent.url, 'GET', '/api/v1/mesh/proxies?local=yes')).body.error.field,
      'local',
    );
    // The request guard applies to these routes too.
    const foreign = await http(agent.url, 'GET', '/api/v1/mesh/proxies', undefined, {
      host: 'evil.example',
    });
    assert.equal(foreign.status, 403);
    assert.equal(foreign.body.error.code, 'MESHWORK_ERR_API_HOST_NOT_ALLOWED');
  });

  it('refuses a bad ACK body with 400 naming the field, and an unknown proxy with 404', async () => {
    const agent = await agentWith({ source: new DrivenSnapshotSource() });
    const cases: [unknown, string][] = [
      [{ version: 'v1' }, 'id'],
      [{ id: 'g', version: '' }, 'version'],
      [{ id: 'g', version: 'v1', error: '' }, 'error'],
      [{ id: 'g', version: 'v1', extra: 1 }, 'extra'],
      [{ id: 'g', version: 7 }, 'version'],
      ['[]', ''],
    ];
    for (const [body, field] of cases) {
      const r = await http(agent.url, 'POST', '/api/v1/mesh/ack', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.body.error.field ?? '', field, JSON.stringify(body));
    }
    const malformed = await http(agent.url, 'POST', '/api/v1/mesh/ack', '{"id":', {
      'content-type': 'application/json',
    });
    assert.equal(malformed.status, 400);
    assert.equal(malformed.body.error.code, 'MESHWORK_ERR_API_MALFORMED_BODY');
    const unknown = await http(agent.url, 'POST', '/api/v1/mesh/ack', {
      id: 'nobody',
      version: 'v1',
    });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'MESHWORK_ERR_MESH_PROXY_NOT_CONNECTED');
    assert.equal(unknown.body.error.field, 'id');
  });

  it('lists the proxies of every agent of the cluster, and reports a member that does not answer', async () => {
    const source = new DrivenSnapshotSource('v1');
    const urls: Record<string, string> = {};
    const members = async () =>
      Object.entries(urls).map(([nodeName, url]) => ({
        nodeName,
        url,
        joinedAt: 0,
        status: 'alive' as const,
      }));
    const a = await agentWith({ source, nodeName: 'node-a', members });
    const b = await agentWith({ source, nodeName: 'node-b', members });
    // A port nothing listens on, found once both agents listen: found before, the OS could give
    // it to one of them, and the "dead" member would answer (a duplicate in the list).
    const deadUrl = `http://127.0.0.1:${await deadPort()}`;
    urls['node-a'] = a.url;
    urls['node-b'] = b.url;
    urls['node-c'] = deadUrl;
    const sa = await openRawStream(a.url, 'id=z-gw&kind=gateway&name=edge');
    const sb = await openRawStream(b.url, 'id=a-sc&kind=sidecar&name=orders');
    cleanups.push(
      () => sa.close(),
      () => sb.close(),
    );
    await Promise.all([sa.until(1), sb.until(1)]);
    const r = await http(a.url, 'GET', '/api/v1/mesh/proxies');
    assert.equal(r.status, 200);
    assert.deepEqual(
      r.body.proxies.map((p: ProxyStatus) => [p.id, p.agent, p.state]),
      [
        ['a-sc', 'node-b', 'STALE'],
        ['z-gw', 'node-a', 'STALE'],
      ],
    );
    assert.equal(r.body.unreachable.length, 1);
    assert.equal(r.body.unreachable[0].agent, 'node-c');
    assert.deepEqual(
      (await proxies(a, '?local=true')).map((p) => p.id),
      ['z-gw'],
    );
  });

  it('answers start() with none when neither the disk nor an agent has a snapshot in time', async () => {
    const clock = new FakeClock();
    const dataDir = tempDir();
    const dead = `http://127.0.0.1:${await deadPort()}`;
    const { sub } = subscriber({ registry: [dead], dataDir, clock, startTimeoutMs: 5000 });
    const started = sub.start();
    await timersArmed(clock);
    clock.advance(5000);
    assert.equal(await started, 'none');
    assert.equal(sub.current, undefined);
    assert.equal(existsSync(join(dataDir, SNAPSHOT_FILE)), false);
  });

  it('prints the proxies as a table or JSON with meshwork proxy-status', async () => {
    const source = new DrivenSnapshotSource('0123456789abcdef0123');
    const deadUrl = `http://127.0.0.1:${await deadPort()}`;
    const a = await agentWith({
      source,
      members: async () => [
        { nodeName: 'node-a', url: a.url, joinedAt: 0, status: 'alive' },
        { nodeName: 'node-z', url: deadUrl, joinedAt: 0, status: 'alive' },
      ],
    });
    const { sub } = subscriber({
      registry: [a.url],
      apply: (s) => {
        if (s.version === 'v2') throw new Error('bad\nregex');
      },
    });
    const acked = nextEvent(sub, 'answered');
    await sub.start();
    await acked;
    const nacked = nextEvent(sub, 'answered', (x) => x.version === 'v2');
    source.publish('v2');
    await nacked;
    const run = async (...argv: string[]): Promise<{ code: number; out: string; err: string }> => {
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      let out = '';
      let err = '';
      stdout.on('data', (d: Buffer) => (out += d.toString()));
      stderr.on('data', (d: Buffer) => (err += d.toString()));
      const code = await proxyStatus.run(argv, { stdout, stderr, env: {} });
      return { code, out, err };
    };
    const t = await run('--registry', a.url);
    assert.equal(t.code, 0);
    assert.deepEqual(t.out.split('\n'), [
      'ID    KIND     NAME  NAMESPACE  SENT  ACKED         STATE   AGENT   ERROR',
      'gw-1  gateway  edge  default    v2    0123456789ab  NACKED  node-a  bad regex',
      '',
    ]);
    assert.match(t.err, /agent node-z \(http:\/\/127\.0\.0\.1:\d+\) did not answer/);
    const j = await run('--json', '--registry', a.url);
    const body = JSON.parse(j.out);
    assert.equal(body.proxies[0].acked, '0123456789abcdef0123');
    assert.equal(body.proxies[0].error, 'bad\nregex');
    assert.equal(body.unreachable[0].agent, 'node-z');
  });
});
