// The traffic policies of a mesh snapshot, enforced by a real gateway fed snapshots in-process
// (issue 19): fault injection, mirroring, connection-pool overflow, local rate limit, response
// cache. Real upstream servers on port 0; seeded random and a fake clock where counts and time
// matter.
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import type { RunningGateway } from '../../src/gateway/gateway.js';
import type { SnapshotCluster } from '../../src/protocol/mesh/snapshot.js';
import { FakeClock } from '../../src/testing/fake-clock.js';
import {
  call,
  describeOnEachHttp1,
  startUpstream,
  until,
  type Upstream,
} from '../helpers/gateway.js';
import { startMeshGateway, TestFeed } from '../helpers/mesh-gateway.js';
import {
  meshSnapshot as snapshot,
  snapshotCluster,
  snapshotEndpoint,
  snapshotRoute as route,
} from '../helpers/mesh-snapshot.js';
import { seededRandom } from '../helpers/seeded-random.js';

const clusterOf = (
  name: string,
  upstreams: readonly Upstream[],
  over: Partial<SnapshotCluster> = {},
): SnapshotCluster =>
  snapshotCluster(name, {
    endpoints: upstreams.map((u) => snapshotEndpoint(u.id, u.port)),
    ...over,
  });

/** `n` GETs of `path` from `workers` concurrent loops; each answer's status, code and time. */
async function load(
  url: string,
  n: number,
  workers = 32,
): Promise<{ status: number; code: string | undefined; ms: number }[]> {
  const out: { status: number; code: string | undefined; ms: number }[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (next < n) {
        next++;
        const t0 = performance.now();
        const r = await call(url, '/');
        const code =
          r.status >= 400
            ? (JSON.parse(r.text) as { error: { code: string } }).error.code
            : undefined;
        out.push({ status: r.status, code, ms: performance.now() - t0 });
      }
    }),
  );
  return out;
}

async function policyEvents(gw: RunningGateway): Promise<string> {
  return (await request(`${gw.adminUrl}/metrics`)).body.text();
}

describeOnEachHttp1('gateway mesh policies', (http1) => {
  let web: Upstream;
  let shadow: Upstream;
  let feed: TestFeed;
  let gw: RunningGateway;
  const clock = new FakeClock();

  before(async () => {
    web = await startUpstream('web');
    shadow = await startUpstream('shadow');
    feed = new TestFeed();
    gw = await startMeshGateway(feed, { ...http1.deps, random: seededRandom(42), clock });
  });
  after(async () => {
    await gw.close();
    await Promise.all([web.close(), shadow.close()]);
  });

  it("aborts about the route's percentage with its status and the fault error code", async () => {
    const s = snapshot(
      [route('r', { fault: { abort: { status: 418, percent: 20 } } })],
      [clusterOf('web', [web])],
    );
    assert.equal(feed.push(s), undefined);
    const answers = await load(gw.url, 2000);
    const aborted = answers.filter((a) => a.status === 418);
    assert.ok(aborted.every((a) => a.code === 'MESHWORK_ERR_PROXY_FAULT_ABORT'));
    assert.ok(Math.abs(aborted.length / 2000 - 0.2) <= 0.03, `aborted ${aborted.length}`);
    assert.equal(answers.filter((a) => a.status === 200).length, 2000 - aborted.length);
  });

  it("delays about the route's percentage by its delay, and lets the rest through at once", async () => {
    const s = snapshot(
      [route('r', { fault: { delay: { ms: 300, percent: 10 } } })],
      [clusterOf('web', [web])],
    );
    assert.equal(feed.push(s), undefined);
    const answers = await load(gw.url, 2000, 64);
    assert.ok(answers.every((a) => a.status === 200));
    const delayed = answers.filter((a) => a.ms >= 290).length;
    assert.ok(Math.abs(delayed / 2000 - 0.1) <= 0.03, `delayed ${delayed}`);
  });

  it('mirrors to the mirror cluster with Host <service>-shadow; the caller gets only the original', async () => {
    const s = snapshot(
      [route('r', { mirror: { cluster: 'shadow', percent: 100 } })],
      [clusterOf('web', [web]), clusterOf('shadow', [shadow])],
    );
    assert.equal(feed.push(s), undefined);
    const before = shadow.hits;
    const r = await call(gw.url, '/m?x=1', { headers: { host: 'shop.example.com' } });
    assert.equal(r.text, 'web');
    await until(() => shadow.hits > before, 5_000, 'the mirror gets its copy');
    const copy = shadow.seen.at(-1);
    assert.equal(copy?.url, '/m?x=1');
    assert.equal(copy?.headers.host, 'shadow-shadow');
    // A request with a body is not copied.
    const posted = await call(gw.url, '/p', { method: 'POST', body: 'payload' });
    assert.equal(posted.text, 'web');
    assert.match(
      await policyEvents(gw),
      /policy_events_total\{service="shadow",event="mirror_skipped"\} 1/,
    );
  });

  it('never slows or fails the original when the mirror hangs or is gone', async () => {
    const held: ServerResponse[] = [];
    shadow.handler = (_req: IncomingMessage, res: ServerResponse) => held.push(res);
    const s = snapshot(
      [route('r', { mirror: { cluster: 'shadow', percent: 100 } })],
      [
        clusterOf('web', [web]),
        clusterOf('shadow', [shadow]),
        snapshotCluster('gone', { endpoints: [snapshotEndpoint('gone-1', 1)] }),
      ],
    );
    assert.equal(feed.push(s), undefined);
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      assert.equal((await call(gw.url, '/')).text, 'web');
      assert.ok(performance.now() - t0 < 1_000);
    }
    await until(() => held.length >= 5, 5_000, 'the mirror holds its copies');
    for (const res of held) res.destroy();
    shadow.handler = undefined;
    // A mirror on a port nothing listens on: the copy fails, counted; the original is fine.
    assert.equal(
      feed.push(
        snapshot(
          [route('r', { mirror: { cluster: 'gone', percent: 100 } })],
          [
            clusterOf('web', [web]),
            snapshotCluster('gone', { endpoints: [snapshotEndpoint('gone-1', 1)] }),
          ],
        ),
      ),
      undefined,
    );
    for (let i = 0; i < 3; i++) assert.equal((await call(gw.url, '/')).status, 200);
    await until(
      async () =>
        /policy_events_total\{service="gone",event="mirror_failed"\} 3/.test(
          await policyEvents(gw),
        ),
      5_000,
      'three failed copies counted',
    );
  });

  it('answers 503 overflow at once past maxConnections + maxPendingRequests, and serves again after', async () => {
    const held: ServerResponse[] = [];
    web.handler = (req: IncomingMessage, res: ServerResponse) => {
      req.resume();
      held.push(res);
    };
    const s = snapshot(
      [route('r')],
      [clusterOf('web', [web], { connectionPool: { maxConnections: 1, maxPendingRequests: 1 } })],
    );
    assert.equal(feed.push(s), undefined);
    const first = call(gw.url, '/1');
    const second = call(gw.url, '/2');
    const limits = () => [...gw.clusters()].find((c) => c.name === 'web')?.limits;
    await until(
      () => limits()?.inFlight === 2 && held.length === 1,
      5_000,
      'two in flight, one on the wire',
    );
    const t0 = performance.now();
    const over = await call(gw.url, '/3');
    assert.equal(over.status, 503);
    assert.ok(performance.now() - t0 < 1_000);
    assert.equal(
      (JSON.parse(over.text) as { error: { code: string } }).error.code,
      'MESHWORK_ERR_PROXY_OVERFLOW',
    );
    const release = (): void => {
      for (const res of held.splice(0)) res.end('held');
    };
    release();
    await until(() => held.length === 1, 5_000, 'the pending one goes on the wire');
    release();
    assert.deepEqual([(await first).status, (await second).status], [200, 200]);
    web.handler = undefined;
    assert.equal((await call(gw.url, '/4')).status, 200);
    assert.match(await policyEvents(gw), /policy_events_total\{service="web",event="overflow"\} 1/);
  });

  it('answers 429 with retry-after when the bucket is empty, and again after it refills', async () => {
    const s = snapshot(
      [route('r')],
      [
        clusterOf('web', [web], {
          rateLimit: { maxTokens: 2, tokensPerFill: 1, fillIntervalMs: 10_000 },
        }),
      ],
    );
    assert.equal(feed.push(s), undefined);
    assert.equal((await call(gw.url, '/')).status, 200);
    assert.equal((await call(gw.url, '/')).status, 200);
    const limited = await call(gw.url, '/');
    assert.equal(limited.status, 429);
    assert.equal(limited.headers['retry-after'], '10');
    assert.equal(
      (JSON.parse(limited.text) as { error: { code: string } }).error.code,
      'MESHWORK_ERR_PROXY_RATE_LIMITED',
    );
    clock.advance(10_000);
    assert.equal((await call(gw.url, '/')).status, 200);
    assert.equal((await call(gw.url, '/')).status, 429);
  });

  it('answers a fresh GET from its cache (hit, age), bypasses on no-cache, and asks again once expired', async () => {
    let served = 0;
    web.handler = (req: IncomingMessage, res: ServerResponse) => {
      req.resume();
      served++;
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=30' });
      res.end(`answer ${served}`);
    };
    const s = snapshot(
      [route('r')],
      [clusterOf('web', [web], { cache: { maxEntries: 10, maxBodyBytes: 1024 } })],
    );
    assert.equal(feed.push(s), undefined);
    const miss = await call(gw.url, '/c');
    assert.equal(miss.headers['x-meshwork-cache'], 'miss');
    assert.equal(miss.text, 'answer 1');
    clock.advance(5_000);
    const hit = await call(gw.url, '/c');
    assert.equal(hit.headers['x-meshwork-cache'], 'hit');
    assert.equal(hit.headers.age, '5');
    assert.equal(hit.headers['content-type'], 'text/plain');
    assert.equal(hit.text, 'answer 1');
    const bypass = await call(gw.url, '/c', { headers: { 'cache-control': 'no-cache' } });
    assert.equal(bypass.headers['x-meshwork-cache'], 'bypass');
    assert.equal(bypass.text, 'answer 2');
    clock.advance(25_000);
    const expired = await call(gw.url, '/c');
    assert.equal(expired.headers['x-meshwork-cache'], 'miss');
    assert.equal(expired.text, 'answer 3');
    assert.equal(served, 3);
    web.handler = undefined;
  });
});

describe('gateway mesh policies: a snapshot with every policy is applied, not refused', () => {
  it('ACKs fault, mirror, pool limits, rate limit and cache together', async () => {
    const up = await startUpstream('all');
    const feed = new TestFeed();
    const gw = await startMeshGateway(feed);
    try {
      const nack = feed.push(
        snapshot(
          [
            route('r', {
              fault: { delay: { ms: 1, percent: 0 }, abort: { status: 503, percent: 0 } },
              mirror: { cluster: 'web', percent: 0 },
            }),
          ],
          [
            clusterOf('web', [up], {
              connectionPool: {
                maxConnections: 10,
                maxPendingRequests: 10,
                maxRequests: 20,
                maxRetries: 2,
                idleTimeoutMs: 5_000,
                connectTimeoutMs: 500,
              },
              rateLimit: { maxTokens: 100, tokensPerFill: 100, fillIntervalMs: 1000 },
              cache: { maxEntries: 10, maxBodyBytes: 1024, defaultTtlMs: 1000 },
            }),
          ],
        ),
      );
      assert.equal(nack, undefined);
      assert.equal((await call(gw.url, '/')).text, 'all');
    } finally {
      await gw.close();
      await up.close();
    }
  });
});
