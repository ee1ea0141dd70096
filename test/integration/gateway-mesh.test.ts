// The gateway in mesh mode fed snapshots in-process (issue 18): real upstream servers on port 0,
// a real gateway, its routes and endpoints only from the snapshots it is given.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { SNAPSHOT_FILE } from '../../src/client/mesh-subscriber.js';
import { silentLogger } from '../../src/core/logger.js';
import { startGateway, type RunningGateway } from '../../src/gateway/gateway.js';
import { createMeshFeed } from '../../src/gateway/mesh-feed.js';
import { resolveGatewayOptions } from '../../src/gateway/options.js';
import type { MeshSnapshot, SnapshotCluster } from '../../src/protocol/mesh/snapshot.js';
import { call, describeOnEachHttp1, startUpstream, type Upstream } from '../helpers/gateway.js';
import { MESH_GATEWAY_FLAGS, startMeshGateway, TestFeed } from '../helpers/mesh-gateway.js';
import {
  meshSnapshot,
  snapshotCluster,
  snapshotEndpoint,
  snapshotRoute,
} from '../helpers/mesh-snapshot.js';

const snapshot = meshSnapshot;
const route = snapshotRoute;

/** A cluster of the upstreams' endpoints. */
const clusterOf = (name: string, upstreams: readonly Upstream[]): SnapshotCluster =>
  snapshotCluster(name, { endpoints: upstreams.map((u) => snapshotEndpoint(u.id, u.port)) });

async function json(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await request(url);
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
}

describeOnEachHttp1('gateway in mesh mode', (http1) => {
  let v1: Upstream;
  let v2: Upstream;
  let feed: TestFeed;
  let gw: RunningGateway;

  before(async () => {
    v1 = await startUpstream('v1');
    v2 = await startUpstream('v2');
    feed = new TestFeed();
    gw = await startMeshGateway(feed, http1.deps);
  });
  after(async () => {
    await gw.close();
    assert.equal(feed.closed, true, 'closing the gateway closes its feed');
    await Promise.all([v1.close(), v2.close()]);
  });

  it('is not ready and routes nothing before its first snapshot', async () => {
    const ready = await json(`${gw.adminUrl}/ready`);
    assert.equal(ready.status, 503);
    assert.equal(ready.body.status, 'no-snapshot');
    assert.equal((await call(gw.url, '/')).status, 404);
    const dump = await json(`${gw.adminUrl}/config_dump`);
    assert.equal(dump.body.version, null);
  });

  it('routes by the first route whose host and match fit, and shows the snapshot in /config_dump', async () => {
    const s = snapshot(
      [
        route('default/shop/0', {
          hosts: ['shop.example.com'],
          match: [{ path: { prefix: '/v2' } }],
          backends: [{ cluster: 'web|v2', weight: 100 }],
        }),
        route('default/shop/1', { hosts: ['shop.example.com'] }),
        route('default/shop/2', {
          match: [{ path: { prefix: '/v2' } }],
          backends: [{ cluster: 'web|v1', weight: 100 }],
        }),
      ],
      [clusterOf('web', [v1]), clusterOf('web|v1', [v1]), clusterOf('web|v2', [v2])],
    );
    assert.equal(feed.push(s), undefined);
    const host = { host: 'shop.example.com' };
    assert.equal((await call(gw.url, '/v2/x', { headers: host })).text, 'v2');
    assert.equal((await call(gw.url, '/other', { headers: host })).text, 'v1');
    assert.equal((await call(gw.url, '/v2/x', { headers: { host: 'x.example' } })).text, 'v1');
    // No host routing in mesh mode: only the snapshot's routes route.
    assert.equal((await call(gw.url, '/', { headers: { host: 'web.mesh.local' } })).status, 404);
    assert.equal((await json(`${gw.adminUrl}/ready`)).status, 200);
    const dump = await json(`${gw.adminUrl}/config_dump`);
    assert.equal(dump.body.version, s.version);
    assert.equal(dump.body.name, 'meshwork-gateway');
    assert.deepEqual(dump.body.snapshot, JSON.parse(JSON.stringify(s)));
  });

  it('splits by weight exactly over a window of 100 requests, then follows a new split without restart', async () => {
    const split = (w1: number, w2: number): MeshSnapshot =>
      snapshot(
        [
          route('split', {
            backends: [
              { cluster: 'web|v1', weight: w1 },
              { cluster: 'web|v2', weight: w2 },
            ],
          }),
        ],
        [clusterOf('web|v1', [v1]), clusterOf('web|v2', [v2])],
      );
    assert.equal(feed.push(split(90, 10)), undefined);
    const count = async (): Promise<Record<string, number>> => {
      const seen: Record<string, number> = {};
      for (let i = 0; i < 100; i++) {
        const { text } = await call(gw.url, '/');
        seen[text] = (seen[text] ?? 0) + 1;
      }
      return seen;
    };
    assert.deepEqual(await count(), { v1: 90, v2: 10 });
    assert.equal(feed.push(split(0, 100)), undefined);
    assert.deepEqual(await count(), { v2: 100 });
  });

  it('sends a subset cluster only to its endpoints', async () => {
    assert.equal(
      feed.push(
        snapshot(
          [route('r', { backends: [{ cluster: 'web|v2', weight: 100 }] })],
          [clusterOf('web|v2', [v2])],
        ),
      ),
      undefined,
    );
    const before = v1.hits;
    for (let i = 0; i < 10; i++) assert.equal((await call(gw.url, '/')).text, 'v2');
    assert.equal(v1.hits, before);
  });

  it('rewrites the path and authority and edits request and response headers', async () => {
    assert.equal(
      feed.push(
        snapshot(
          [
            route('r', {
              match: [{ path: { prefix: '/api/' } }],
              rewrite: { uri: '/', authority: 'web.internal' },
              requestHeaders: {
                set: { 'x-route': 'r' },
                add: { 'x-tag': 'gw' },
                remove: ['x-drop'],
              },
              responseHeaders: { set: { 'x-served-by': 'gateway' } },
              backends: [
                {
                  cluster: 'web',
                  weight: 100,
                  requestHeaders: { set: { 'x-backend': 'web' } },
                  responseHeaders: { add: { 'x-backend-seen': '1' } },
                },
              ],
            }),
          ],
          [clusterOf('web', [v1])],
        ),
      ),
      undefined,
    );
    const res = await call(gw.url, '/api/users?id=7', {
      headers: { 'x-drop': 'secret', 'x-tag': 'client' },
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers['x-served-by'], 'gateway');
    assert.equal(res.headers['x-backend-seen'], '1');
    const seen = v1.seen.at(-1);
    assert.equal(seen?.url, '/users?id=7');
    assert.equal(seen?.headers.host, 'web.internal');
    assert.equal(seen?.headers['x-route'], 'r');
    assert.equal(seen?.headers['x-backend'], 'web');
    assert.equal(seen?.headers['x-drop'], undefined);
    assert.equal(seen?.headers['x-tag'], 'client, gw');
    assert.equal(seen?.headers['x-forwarded-host'], '127.0.0.1:' + new URL(gw.url).port);
  });

  it("retries on the route's retryOn (a 500 with 5xx) on another endpoint, marking the attempt", async () => {
    v1.status = 500;
    try {
      assert.equal(
        feed.push(
          snapshot(
            [route('r', { retries: { attempts: 2, retryOn: ['5xx'] } })],
            [clusterOf('web', [v1, v2])],
          ),
        ),
        undefined,
      );
      const v1Before = v1.hits;
      for (let i = 0; i < 10; i++) assert.equal((await call(gw.url, '/')).text, 'v2');
      assert.ok(v1.hits > v1Before, 'some first attempts went to the failing endpoint');
      assert.ok(v2.seen.some((s) => s.headers['x-meshwork-attempt'] === '2'));
      // Without 5xx in retryOn, a 500 is an answer.
      assert.equal(
        feed.push(
          snapshot(
            [route('r', { retries: { attempts: 2, retryOn: ['gateway-error'] } })],
            [clusterOf('web', [v1])],
          ),
        ),
        undefined,
      );
      assert.equal((await call(gw.url, '/')).status, 500);
    } finally {
      v1.status = 200;
    }
  });

  it('routes a cluster with its own connect timeout (a DestinationRule connectTimeout) through a pool of its own', async () => {
    const c = clusterOf('web', [v1]);
    assert.equal(
      feed.push(snapshot([route('r')], [{ ...c, connectionPool: { connectTimeoutMs: 250 } }])),
      undefined,
    );
    const cluster = [...gw.clusters()][0];
    assert.equal(cluster?.connectTimeoutMs, 250);
    assert.notEqual(cluster?.dispatcher, undefined);
    assert.equal((await call(gw.url, '/')).text, 'v1');
  });

  it('hashes on a header: one user, one endpoint', async () => {
    const c = { ...clusterOf('web', [v1, v2]) };
    assert.equal(
      feed.push(
        snapshot(
          [route('r')],
          [{ ...c, loadBalancer: { type: 'ring-hash', hashOn: { header: 'x-user' } } }],
        ),
      ),
      undefined,
    );
    for (const user of ['ann', 'bob', 'cy']) {
      const first = (await call(gw.url, '/', { headers: { 'x-user': user } })).text;
      for (let i = 0; i < 5; i++)
        assert.equal((await call(gw.url, '/', { headers: { 'x-user': user } })).text, first);
    }
  });

  it('rebuilds the snapshot in force with new options on a reload (SIGHUP)', async () => {
    const s = snapshot([route('r')], [clusterOf('web', [v1])]);
    assert.equal(feed.push(s), undefined);
    assert.equal([...gw.clusters()][0]?.balancer.kind, 'round-robin');
    const next = resolveGatewayOptions({ flags: { ...MESH_GATEWAY_FLAGS, balancer: 'random' } });
    assert.deepEqual(gw.reload(next).restartNeeded, []);
    assert.equal([...gw.clusters()][0]?.balancer.kind, 'random');
    assert.equal(gw.snapshot()?.version, s.version);
    assert.equal((await call(gw.url, '/')).text, 'v1');
  });

  it('refuses a snapshot it cannot run (NACK with the route and field) and keeps routing on the last good one', async () => {
    const good = snapshot(
      [route('r', { backends: [{ cluster: 'web|v2', weight: 100 }] })],
      [clusterOf('web|v2', [v2])],
    );
    assert.equal(feed.push(good), undefined);
    const bad = snapshot(
      [
        route('default/shop/0', {
          match: [{ path: { regex: '/(?=lookahead)' } }],
          backends: [{ cluster: 'web|v1', weight: 100 }],
        }),
        route('default/shop/1', {
          fault: { abort: { status: 99, percent: 100 } },
          backends: [{ cluster: 'web|v1', weight: 100 }],
        }),
      ],
      [clusterOf('web|v1', [v1])],
    );
    const nack = feed.push(bad);
    assert.match(
      nack ?? '',
      /routes\[0\] \(default\/shop\/0\)\.match\[0\]\.uri\.regex: not an RE2/,
    );
    assert.match(
      nack ?? '',
      /routes\[1\] \(default\/shop\/1\)\.fault\.abort\.status: must be an HTTP status/,
    );
    for (let i = 0; i < 5; i++) assert.equal((await call(gw.url, '/')).text, 'v2');
    assert.equal((await json(`${gw.adminUrl}/config_dump`)).body.version, good.version);
    const metrics = await (await request(`${gw.adminUrl}/metrics`)).body.text();
    assert.match(metrics, /meshwork_gateway_snapshots_total\{result="refused"\} 1/);
  });
});

describe('gateway in mesh mode, started from a feed that has a snapshot (a persisted one)', () => {
  it('routes from it as soon as it listens', async () => {
    const up = await startUpstream('persisted');
    const feed = new TestFeed(snapshot([route('r')], [clusterOf('web', [up])]));
    const gw = await startMeshGateway(feed);
    try {
      assert.equal((await call(gw.url, '/')).text, 'persisted');
      assert.equal((await json(`${gw.adminUrl}/ready`)).status, 200);
    } finally {
      await gw.close();
      await up.close();
    }
  });
});

describe('gateway in mesh mode with the MeshSubscriber feed, no agent answering', () => {
  it('routes from the snapshot persisted in its data dir', async () => {
    const up = await startUpstream('from-disk');
    const dataDir = await mkdtemp(join(tmpdir(), 'meshwork-gw-'));
    // An address where nothing listens: the subscriber keeps retrying in the background.
    const closed = createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const options = resolveGatewayOptions({
      flags: {
        mesh: true,
        listen: '127.0.0.1:0',
        admin: '127.0.0.1:0',
        registry: [`http://127.0.0.1:${port}`],
        dataDir,
        logLevel: 'silent',
        // mtls auto (the default): no agent answers for its CA either; it starts without mTLS.
        mtlsStartTimeoutMs: 300,
      },
    });
    const persisted = snapshot([route('r')], [clusterOf('web', [up])]);
    await writeFile(join(dataDir, SNAPSHOT_FILE), JSON.stringify(persisted));
    const gw = await startGateway(options, silentLogger, {
      snapshotFeed: createMeshFeed(options, silentLogger),
    });
    try {
      assert.equal((await call(gw.url, '/')).text, 'from-disk');
      const dump = (await json(`${gw.adminUrl}/config_dump`)).body;
      assert.equal(dump.version, persisted.version);
      assert.equal(gw.mtls.state, 'off');
      assert.match((dump.mtls as { reason: string }).reason, /^no agent answered within 300 ms/);
    } finally {
      await gw.close();
      await up.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('gateway in mesh mode that cannot start', () => {
  it('lets go of its snapshot feed when its admin port is taken', async () => {
    const taken = createServer();
    taken.listen(0, '127.0.0.1');
    await once(taken, 'listening');
    const port = (taken.address() as AddressInfo).port;
    const feed = new TestFeed();
    try {
      const options = resolveGatewayOptions({
        flags: { ...MESH_GATEWAY_FLAGS, admin: `127.0.0.1:${port}` },
      });
      await assert.rejects(startGateway(options, silentLogger, { snapshotFeed: feed }), {
        code: 'EADDRINUSE',
      });
      assert.equal(feed.closed, true, 'the feed is closed, as on a normal close');
    } finally {
      await new Promise((r) => taken.close(r));
    }
  });
});
