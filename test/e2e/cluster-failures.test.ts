/**
 * Cluster mode failure tests (issue 3), with real processes: a 3-member etcd cluster (Debian
 * etcd-server) and `meshwork agent --store etcd` binaries, killed with SIGKILL.
 *
 * 1. Register through agent A, read and watch through agent B.
 * 2. Kill -9 A: its instances stay, its checks move to B within 5 s, clients keep working.
 * 3. An instance whose heartbeats stop, registered through an agent that died, goes critical on
 *    schedule.
 * 4. Kill -9 the etcd leader during a burst of registrations: every acknowledged one is there
 *    afterwards, once.
 * 5. Stop every etcd member: last-known reads, 503 on writes, not ready; recovery by itself.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { http, type JsonResponse } from '../helpers/agent.js';
import { until } from '../helpers/until.js';
import { spawnAgent, type AgentProcess } from '../helpers/cli.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd.js';
import { collectSse } from '../helpers/sse.js';

/** An HTTP check target that records which agent probed which path, and when. */
interface ProbeLog {
  readonly url: string;
  /** Probes of `/check/<id>` since `sinceMs` (Date.now()), as [agent, at]. */
  since(id: string, sinceMs: number): { agent: string; at: number }[];
  close(): Promise<void>;
}

async function startProbeTarget(): Promise<ProbeLog> {
  const probes = new Map<string, { agent: string; at: number }[]>();
  const server: Server = createServer((req, res) => {
    const id = (req.url ?? '').replace(/^\/check\//, '');
    const agent = String(req.headers['x-meshwork-agent'] ?? '?');
    let list = probes.get(id);
    if (list === undefined) probes.set(id, (list = []));
    list.push({ agent, at: Date.now() });
    res.end('ok');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    since: (id, sinceMs) => (probes.get(id) ?? []).filter((p) => p.at >= sinceMs),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Sends the request to the first agent that answers (a client configured with every agent). */
async function failover(
  agents: readonly AgentProcess[],
  method: string,
  path: string,
  body?: unknown,
): Promise<JsonResponse> {
  let last: unknown;
  for (const a of agents) {
    try {
      return await http(a.url, method, path, body);
    } catch (err) {
      last = err; // connection refused: that agent is gone, try the next
    }
  }
  throw last;
}

const ids = (r: JsonResponse): string[] => r.body.instances.map((i: { id: string }) => i.id);

describe('a cluster of agents over a 3-member etcd, under failures', { timeout: 240_000 }, () => {
  let etcd: EtcdCluster;
  let target: ProbeLog;
  const agents: AgentProcess[] = [];
  let a: AgentProcess;
  let b: AgentProcess;

  const agent = async (name: string): Promise<AgentProcess> => {
    const p = await spawnAgent(
      ['--store', 'etcd', '--etcd-endpoints', etcd.endpoints.join(','), '--node-name', name],
      // The checks below probe every 250 ms, under the default 1 s floor.
      {
        MESHWORK_AGENT__ETCD_PREFIX: `/failures-${process.pid}/`,
        MESHWORK_CHECKS__MIN_INTERVAL_MS: '100',
      },
    );
    agents.push(p);
    return p;
  };
  const members = async (via: AgentProcess): Promise<string[]> =>
    (await http(via.url, 'GET', '/api/v1/agents')).body.agents.map(
      (m: { nodeName: string }) => m.nodeName,
    );

  before(async () => {
    etcd = await startEtcdCluster(3);
    target = await startProbeTarget();
    a = await agent('agent-a');
    b = await agent('agent-b');
    await until(
      async () => (await members(a)).length === 2 && (await members(b)).length === 2,
      10_000,
      'two members seen by both agents',
    );
  });
  after(async () => {
    for (const p of agents) p.child.kill('SIGKILL');
    await Promise.all(agents.map((p) => p.exited));
    await target?.close();
    await etcd?.stop();
  });

  it('serves through B, and tells B’s watchers, what was registered through A', async () => {
    const watch = await collectSse<{ type: string; index: number }>(
      `${b.url}/api/v1/watch?service=web`,
    );
    try {
      await watch.until(1);
      const reg = await http(a.url, 'PUT', '/api/v1/instances', {
        service: 'web',
        id: 'web-0',
        address: '10.0.0.1',
        port: 80,
      });
      assert.equal(reg.status, 200, reg.text);
      await watch.until(2);
      assert.equal(watch.events[1]?.type, 'upsert');
      assert.equal(watch.events[1]?.index, reg.body.index);
      const read = await http(b.url, 'GET', '/api/v1/services/web/instances');
      assert.deepEqual(ids(read), ['web-0']);
    } finally {
      await watch.close();
    }
  });

  it('moves the checks of a killed agent to the other one within 5 s', async (t) => {
    const checked = Array.from({ length: 12 }, (_, i) => `web-${i + 1}`);
    for (const id of checked) {
      const reg = await http(a.url, 'PUT', '/api/v1/instances', {
        service: 'web',
        id,
        address: '127.0.0.1',
        port: 80,
        checks: [{ http: `${target.url}/check/${id}`, interval: '250ms', timeout: '1s' }],
      });
      assert.equal(reg.status, 200, reg.text);
    }
    // Steady state: every check runs, each on exactly one agent, and both agents have a share.
    const owners = (sinceMs: number): Map<string, Set<string>> =>
      new Map(checked.map((id) => [id, new Set(target.since(id, sinceMs).map((p) => p.agent))]));
    const steady = (sinceMs: number): boolean =>
      [...owners(sinceMs).values()].every((s) => s.size === 1);
    await until(() => steady(Date.now() - 1_000), 15_000, 'one owner per check');
    const from = Date.now();
    await until(
      () => checked.every((id) => target.since(id, from).length >= 3),
      10_000,
      'every check run three times',
    );
    const byOwner = owners(from);
    assert.ok(steady(from), 'no check runs on two agents at once');
    const ofA = checked.filter((id) => byOwner.get(id)?.has('agent-a'));
    assert.ok(ofA.length > 0 && ofA.length < checked.length, 'the checks are shared out');

    a.child.kill('SIGKILL');
    const killedAt = Date.now();
    await a.exited;
    const takenOver = await until(
      () => {
        const firsts = ofA.map((id) =>
          target.since(id, killedAt).find((p) => p.agent === 'agent-b'),
        );
        return firsts.every((p) => p !== undefined) ? firsts.map((p) => p.at) : undefined;
      },
      10_000,
      'every check of agent-a run by agent-b',
    );
    const takeoverMs = Math.max(...takenOver) - killedAt;
    t.diagnostic(`${ofA.length} checks of agent-a moved to agent-b in ${takeoverMs} ms`);
    assert.ok(takeoverMs < 5_000, `checks moved in ${takeoverMs} ms`);
    // None orphaned, none doubled: agent-b runs them all now.
    const after = Date.now();
    await until(
      () => checked.every((id) => target.since(id, after).length >= 2),
      5_000,
      'every check run by the survivor',
    );
    assert.ok(checked.every((id) => [...(owners(after).get(id) ?? [])].join() === 'agent-b'));

    // The instances registered through A stay, and stay healthy; a client given both agents
    // keeps working, for reads and writes.
    const read = await failover([a, b], 'GET', '/api/v1/services/web/instances?status=passing');
    assert.equal(read.status, 200);
    assert.deepEqual(ids(read).sort(), ['web-0', ...checked].sort());
    const write = await failover([a, b], 'PUT', '/api/v1/instances', {
      service: 'web',
      id: 'web-after',
      address: '10.0.0.9',
      port: 80,
    });
    assert.equal(write.status, 200, write.text);
    assert.deepEqual(await members(b), ['agent-b']);
  });

  it('turns critical on schedule an instance whose agent died and whose heartbeats stopped', async (t) => {
    const c = await agent('agent-c');
    await until(async () => (await members(b)).length === 2, 10_000, 'agent-c seen by agent-b');
    const ttlMs = 3_000;
    const reg = await http(c.url, 'PUT', '/api/v1/instances', {
      service: 'beat',
      id: 'beat-1',
      address: '10.0.1.1',
      port: 80,
      checks: [{ ttl: `${ttlMs}ms` }],
    });
    assert.equal(reg.status, 200, reg.text);
    const first = await http(c.url, 'PUT', '/api/v1/instances/beat-1/heartbeat');
    assert.equal(first.body.status, 'passing', first.text);
    // A heartbeat to any agent keeps the one deadline; one that keeps the status writes nothing.
    let lastBeat = 0;
    for (const via of [b, c, b]) {
      const hb = await http(via.url, 'PUT', '/api/v1/instances/beat-1/heartbeat');
      lastBeat = Date.now();
      assert.equal(hb.status, 200, hb.text);
      assert.equal(
        hb.body.index,
        first.body.index,
        'a heartbeat that changes nothing is not written',
      );
    }
    c.child.kill('SIGKILL');
    await c.exited;
    const status = async (): Promise<string> =>
      (await http(b.url, 'GET', '/api/v1/instances/beat-1')).body.instance.status;
    assert.equal(await status(), 'passing');
    await until(async () => (await status()) === 'critical', 15_000, 'critical');
    const afterMs = Date.now() - lastBeat;
    t.diagnostic(`critical ${afterMs} ms after the last heartbeat (TTL ${ttlMs} ms)`);
    // etcd leases count whole seconds and etcd looks for expired ones twice a second.
    assert.ok(afterMs >= ttlMs - 100, `critical ${afterMs} ms after the last heartbeat: too early`);
    assert.ok(
      afterMs <= ttlMs + 3_000,
      `critical ${afterMs} ms after the last heartbeat: too late`,
    );
  });

  it('keeps every acknowledged registration, once, when the etcd leader is killed mid-burst', async (t) => {
    const c = await agent('agent-d');
    const live = [b, c];
    const total = 300;
    const acked = new Set<string>();
    let next = 0;
    let refused = 0;
    let killed: Promise<void> | undefined;
    const register = async (i: number): Promise<void> => {
      const id = `burst-${i}`;
      const deadline = Date.now() + 60_000;
      // A client that retries until its registration is acknowledged: the write is idempotent.
      for (let attempt = 0; ; attempt++) {
        const via = live[(i + attempt) % live.length] as AgentProcess;
        const r = await http(via.url, 'PUT', '/api/v1/instances', {
          service: 'burst',
          id,
          address: `10.1.${i >> 8}.${i & 255}`,
          port: 80,
        }).catch(() => undefined);
        if (r?.status === 200) {
          acked.add(id);
          return;
        }
        assert.ok(r === undefined || r.status === 503, `unexpected ${r?.status}: ${r?.text}`);
        refused++;
        if (Date.now() > deadline) throw new Error(`${id} never acknowledged`);
        await new Promise((res) => setTimeout(res, 100));
      }
    };
    const worker = async (): Promise<void> => {
      while (next < total) {
        const i = next++;
        if (i === 60) killed = etcd.leader().then((m) => m.kill());
        await register(i);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    await killed;
    t.diagnostic(
      `${total} registrations acknowledged; ${refused} attempts refused during the election`,
    );
    assert.equal(acked.size, total);
    // Both agents hold every registration, once, at the same index.
    const [onB, onC] = await Promise.all(
      live.map((via) => http(via.url, 'GET', '/api/v1/services/burst/instances')),
    );
    const expected = Array.from({ length: total }, (_, i) => `burst-${i}`).sort();
    assert.deepEqual(ids(onB as JsonResponse).sort(), expected);
    assert.deepEqual(ids(onC as JsonResponse).sort(), expected);
    assert.equal(onB?.headers['x-meshwork-index'], onC?.headers['x-meshwork-index']);
    // The killed member comes back and catches up (the next test needs all three).
    await Promise.all(etcd.members.filter((m) => !m.running).map((m) => m.restart()));
    await etcd.waitHealthy();
  });

  it('serves last-known reads and refuses writes while every etcd member is down, then recovers', async () => {
    const before = await http(b.url, 'GET', '/api/v1/services/burst/instances');
    assert.equal(before.status, 200);
    await Promise.all(etcd.members.map((m) => m.kill()));

    const refused = await http(b.url, 'PUT', '/api/v1/instances', {
      service: 'late',
      address: '10.2.0.1',
      port: 80,
    });
    assert.equal(refused.status, 503, refused.text);
    assert.equal(refused.body.error.code, 'MESHWORK_ERR_STORE_UNAVAILABLE');
    await until(
      async () => (await http(b.url, 'GET', '/health/ready')).status === 503,
      10_000,
      'not ready',
    );
    const read = await http(b.url, 'GET', '/api/v1/services/burst/instances');
    assert.equal(read.status, 200);
    assert.deepEqual(ids(read), ids(before));

    await Promise.all(etcd.members.map((m) => m.restart()));
    await etcd.waitHealthy();
    await until(
      async () => (await http(b.url, 'GET', '/health/ready')).status === 200,
      30_000,
      'ready again',
    );
    const again = await http(b.url, 'PUT', '/api/v1/instances', {
      service: 'late',
      id: 'late-1',
      address: '10.2.0.1',
      port: 80,
    });
    assert.equal(again.status, 200, again.text);
  });
});
