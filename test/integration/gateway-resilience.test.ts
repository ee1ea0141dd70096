/**
 * The gateway's upstream path against real upstreams (issue 7): retries on 503 and connect
 * failures for idempotent methods only, the attempt header honoured, retries that stop at the
 * budget, timeouts answered 504, passive outlier ejection and return (fake clock), panic mode,
 * and client disconnects cancelling the upstream request.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createRegistryClient, type RegistryClient } from '../../src/client/registry-client.js';
import type { RunningGateway } from '../../src/gateway/gateway.js';
import { FakeClock } from '../../src/testing/fake-clock.js';
import { startTestAgent, type TestAgent } from '../helpers/agent.js';
import {
  call,
  describeOnEachHttp1,
  startTestGateway,
  startUpstream,
  until,
  type Upstream,
} from '../helpers/gateway.js';
import { deferred } from '../helpers/deferred.js';
import { RawClient } from '../helpers/wire.js';
import { seededRandom } from '../helpers/seeded-random.js';

/** A port nothing listens on (bound, then closed). */
async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

// Each test runs on the gateway's own HTTP/1 server and client, and on its fallback.
describeOnEachHttp1('gateway resilience', (http1) => {
  let agent: TestAgent;
  let registry: RegistryClient;
  const ups: Upstream[] = [];
  const gateways: RunningGateway[] = [];

  const service = async (name: string, n: number): Promise<Upstream[]> => {
    const list: Upstream[] = [];
    for (let i = 1; i <= n; i++) {
      const u = await startUpstream(`${name}-${i}`);
      ups.push(u);
      list.push(u);
      await registry.register({ service: name, id: u.id, address: '127.0.0.1', port: u.port });
    }
    return list;
  };
  const gw = async (config: Record<string, unknown>, deps = {}): Promise<RunningGateway> => {
    const g = await startTestGateway(agent.url, config, {
      random: seededRandom(7),
      ...http1.deps,
      ...deps,
    });
    gateways.push(g);
    return g;
  };

  before(async () => {
    agent = await startTestAgent();
    registry = createRegistryClient({ addresses: [agent.url] });
  });
  after(async () => {
    for (const g of gateways) await g.close();
    for (const u of ups) await u.close();
    await agent.stop();
  });

  describe('retries', () => {
    let list: Upstream[];
    let g: RunningGateway;
    before(async () => {
      list = await service('retry', 2);
      g = await gw({
        retry: {
          backoff: { baseMs: 0, maxMs: 0 },
          budget: { ratio: 1, minRetriesPerSecond: 1000, windowMs: 1000 },
        },
        outlierDetection: { consecutiveFailures: 10_000 },
      });
    });
    beforeEach(() => {
      for (const u of list) {
        u.hits = 0;
        u.status = 200;
      }
    });

    it('retries a GET answered 503 on the other instance, numbering the attempts', async () => {
      (list[0] as Upstream).status = 503;
      for (let i = 0; i < 6; i++) {
        const r = await call(g.url, '/', { headers: { host: 'retry.mesh.local' } });
        assert.equal(r.status, 200);
        assert.equal(r.text, 'retry-2');
      }
      const retried = (list[1] as Upstream).seen.filter(
        (s) => s.headers['x-meshwork-attempt'] === '2',
      );
      assert.ok(retried.length >= 1, 'some requests reached retry-2 as attempt 2');
    });

    it('does not retry a POST answered 503', async () => {
      for (const u of list) u.status = 503;
      const r = await call(g.url, '/', {
        method: 'POST',
        body: 'x',
        headers: { host: 'retry.mesh.local' },
      });
      assert.equal(r.status, 503);
      assert.equal((list[0] as Upstream).hits + (list[1] as Upstream).hits, 1);
    });

    it('does not retry what a caller already retried (x-meshwork-attempt > 1)', async () => {
      for (const u of list) u.status = 503;
      const r = await call(g.url, '/', {
        headers: { host: 'retry.mesh.local', 'x-meshwork-attempt': '2' },
      });
      assert.equal(r.status, 503);
      assert.equal((list[0] as Upstream).hits + (list[1] as Upstream).hits, 1);
      assert.equal(
        (list[0] as Upstream).seen.concat((list[1] as Upstream).seen).at(-1)?.headers[
          'x-meshwork-attempt'
        ],
        '2',
      );
    });

    it('stops at maxAttempts when every instance fails', async () => {
      for (const u of list) u.status = 503;
      const r = await call(g.url, '/', { headers: { host: 'retry.mesh.local' } });
      assert.equal(r.status, 503);
      assert.equal((list[0] as Upstream).hits + (list[1] as Upstream).hits, 3);
    });
  });

  it('stops retrying when the retry budget is spent', async () => {
    const list = await service('budget', 2);
    for (const u of list) u.status = 503;
    const g = await gw({
      retry: {
        backoff: { baseMs: 0, maxMs: 0 },
        budget: { ratio: 0.1, minRetriesPerSecond: 0, windowMs: 60_000 },
      },
      outlierDetection: { consecutiveFailures: 10_000 },
    });
    for (let i = 0; i < 40; i++) {
      const r = await call(g.url, '/', { headers: { host: 'budget.mesh.local' } });
      assert.equal(r.status, 503);
    }
    const sent = list.reduce((a, u) => a + u.hits, 0);
    // 40 requests, 10% budget: at most 4 retries on top (the budget counts requests first).
    assert.ok(sent >= 40 && sent <= 44, `sent ${sent}`);
    // Each request not retried was refused by the budget once (issue 21: counted).
    const m = await call(g.adminUrl, '/metrics');
    const exhausted = Number(
      /^meshwork_gateway_retry_budget_exhausted_total\{service="budget"\} (\d+)$/m.exec(
        m.text,
      )?.[1],
    );
    assert.ok(exhausted >= 40 - (sent - 40) && exhausted <= 40, `exhausted ${exhausted}`);
    assert.match(
      m.text,
      new RegExp(
        `^meshwork_gateway_policy_events_total\\{service="budget",event="retry_budget_exhausted"\\} ${exhausted}$`,
        'm',
      ),
    );
  });

  it('retries a connect failure, body and all, on another instance', async () => {
    const [live] = await service('refused', 1);
    await registry.register({
      service: 'refused',
      id: 'refused-dead',
      address: '127.0.0.1',
      port: await deadPort(),
    });
    const g = await gw({ retry: { backoff: { baseMs: 0, maxMs: 0 } } });
    (live as Upstream).handler = (req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => res.end(`got ${body}`));
    };
    for (let i = 0; i < 4; i++) {
      const r = await call(g.url, '/', {
        method: 'PUT',
        body: 'payload',
        headers: { host: 'refused.mesh.local' },
      });
      assert.equal(r.status, 200);
      assert.equal(r.text, 'got payload');
    }
  });

  it('answers 504 with a JSON body when the upstream is too slow, within the route timeout', async () => {
    const [slow] = await service('slow', 1);
    (slow as Upstream).handler = () => undefined; // never answers
    const g = await gw({
      routes: [{ name: 'slow', match: { path: { prefix: '/' } }, service: 'slow', timeoutMs: 300 }],
      retry: { maxAttempts: 1 },
    });
    const started = Date.now();
    const r = await call(g.url, '/');
    const tookMs = Date.now() - started;
    assert.equal(r.status, 504);
    assert.equal(JSON.parse(r.text).error.code, 'MESHWORK_ERR_PROXY_UPSTREAM_TIMEOUT');
    assert.ok(tookMs >= 250 && tookMs < 1500, `took ${tookMs} ms`);
  });

  it('honours the caller deadline (x-meshwork-deadline-ms) and passes what is left on', async () => {
    const [slow] = await service('deadline', 1);
    const u = slow as Upstream;
    u.handler = () => undefined; // never answers
    const g = await gw({ retry: { maxAttempts: 1 } });
    await call(g.url, '/', {
      headers: { host: 'deadline.mesh.local', 'x-meshwork-deadline-ms': '50' },
    });
    const started = Date.now();
    const r = await call(g.url, '/', {
      headers: { host: 'deadline.mesh.local', 'x-meshwork-deadline-ms': '200' },
    });
    const tookMs = Date.now() - started;
    assert.equal(r.status, 504);
    assert.ok(tookMs >= 150 && tookMs < 900, `took ${tookMs} ms`);
    const left = Number(u.seen.at(-1)?.headers['x-meshwork-deadline-ms']);
    assert.ok(left > 0 && left <= 200, `the upstream was told ${left} ms`);
  });

  it('answers 502 naming the failure when every instance refuses', async () => {
    await registry.register({
      service: 'gone',
      id: 'gone-1',
      address: '127.0.0.1',
      port: await deadPort(),
    });
    const g = await gw({ retry: { backoff: { baseMs: 0, maxMs: 0 } } });
    const r = await call(g.url, '/', { headers: { host: 'gone.mesh.local' } });
    assert.equal(r.status, 502);
    const body = JSON.parse(r.text);
    assert.equal(body.error.code, 'MESHWORK_ERR_PROXY_UPSTREAM_RESET');
    assert.equal(body.error.reason, 'ECONNREFUSED');
  });

  it('ejects an instance after consecutive 5xx and lets it back after the ejection time', async () => {
    const clock = new FakeClock();
    const list = await service('outlier', 3);
    const bad = list[0] as Upstream;
    bad.status = 500;
    const g = await gw(
      {
        retry: { maxAttempts: 1 },
        outlierDetection: {
          consecutiveFailures: 3,
          baseEjectionMs: 1_000,
          maxEjectionMs: 10_000,
        },
      },
      { clock },
    );
    // Round-robin over 3: after 9 requests the bad one failed 3 times in a row and is out.
    for (let i = 0; i < 9; i++) await call(g.url, '/', { headers: { host: 'outlier.mesh.local' } });
    assert.equal(bad.hits, 3);
    const cluster = [...g.clusters()].find((c) => c.service === 'outlier');
    assert.ok(cluster?.outliers.ejected.has('outlier-1'));
    for (let i = 0; i < 10; i++) {
      const r = await call(g.url, '/', { headers: { host: 'outlier.mesh.local' } });
      assert.equal(r.status, 200);
    }
    assert.equal(bad.hits, 3, 'no traffic while ejected');
    const m = await call(g.adminUrl, '/metrics');
    assert.match(m.text, /meshwork_gateway_ejections_total\{service="outlier"\} 1/);
    bad.status = 200;
    clock.advance(1_000);
    for (let i = 0; i < 6; i++) await call(g.url, '/', { headers: { host: 'outlier.mesh.local' } });
    assert.ok(bad.hits > 3, 'back in rotation after the ejection time');
    assert.equal(cluster?.outliers.state('outlier-1'), 'closed');
  });

  it('never ejects more than half of a service', async () => {
    const list = await service('half', 2);
    for (const u of list) u.status = 500;
    const g = await gw({
      retry: { maxAttempts: 1 },
      outlierDetection: { consecutiveFailures: 2 },
    });
    for (let i = 0; i < 20; i++) await call(g.url, '/', { headers: { host: 'half.mesh.local' } });
    const cluster = [...g.clusters()].find((c) => c.service === 'half');
    assert.equal(cluster?.outliers.ejected.size, 1);
    assert.equal(
      list.reduce((a, u) => a + u.hits, 0),
      20,
    );
  });

  it('enters panic mode when too few instances are healthy, spreading over all, visible in metrics', async () => {
    const list = await service('panic', 2);
    const [bad, good] = list as [Upstream, Upstream];
    bad.status = 500;
    const g = await gw({
      retry: { maxAttempts: 1 },
      outlierDetection: { consecutiveFailures: 2, baseEjectionMs: 60_000, maxEjectionMs: 60_000 },
      panicThresholdPercent: 80,
    });
    for (let i = 0; i < 4; i++) await call(g.url, '/', { headers: { host: 'panic.mesh.local' } });
    const cluster = [...g.clusters()].find((c) => c.service === 'panic');
    assert.ok(cluster?.outliers.ejected.has('panic-1'));
    assert.equal(cluster?.panic, true);
    bad.hits = 0;
    good.hits = 0;
    for (let i = 0; i < 10; i++) await call(g.url, '/', { headers: { host: 'panic.mesh.local' } });
    assert.ok(bad.hits >= 3, `the ejected instance takes traffic in panic (${bad.hits})`);
    const m = await call(g.adminUrl, '/metrics');
    assert.match(m.text, /meshwork_gateway_panic\{service="panic"\} 1/);
    assert.match(
      m.text,
      /meshwork_gateway_upstream_instances\{service="panic",state="available"\} 1/,
    );
  });

  it('answers 503 saying how many instances there are when none may take traffic (panic off)', async () => {
    const u = await startUpstream('unwell-1');
    ups.push(u);
    // A TTL check starts critical: the instance is registered, and unhealthy.
    await registry.register({
      service: 'unwell',
      id: u.id,
      address: '127.0.0.1',
      port: u.port,
      checks: [{ ttl: '60s' }],
    });
    const g = await gw({ panicThresholdPercent: 0 });
    const r = await call(g.url, '/', { headers: { host: 'unwell.mesh.local' } });
    assert.equal(r.status, 503);
    const body = JSON.parse(r.text);
    assert.equal(body.error.code, 'MESHWORK_ERR_PROXY_NO_HEALTHY_UPSTREAM');
    assert.equal(body.error.instances, 1);
    assert.equal(
      body.error.message,
      'no instance of "unwell" may take traffic (1 registered: unhealthy or ejected)',
    );
    assert.equal(u.hits, 0);
  });

  it('answers pipelined requests with bodies in order, and serves on after clients cut off', async () => {
    const [u] = await service('pipelined', 1);
    (u as Upstream).handler = (req, res) => {
      let n = 0;
      req.on('data', (d: Buffer) => (n += d.length));
      req.on('end', () => {
        const body = `${req.method} ${req.url} ${n}`;
        res.writeHead(200, { 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
    };
    const g = await gw({});
    const port = Number(new URL(g.url).port);
    // Eight requests on one connection, written at once: GETs, and POSTs of up to ~500 KB
    // (more than the buffers between, so reading pauses on both sides); the last one closes.
    const batch = (c: number): { bytes: string; expected: string[] } => {
      let bytes = '';
      const expected: string[] = [];
      for (let i = 0; i < 8; i++) {
        const path = `/c${c}/r${i}`;
        const last = i === 7 ? 'Connection: close\r\n' : '';
        if (i % 2 === 0) {
          bytes += `GET ${path} HTTP/1.1\r\nHost: pipelined.mesh.local\r\n${last}\r\n`;
          expected.push(`GET ${path} 0`);
        } else {
          const size = 10_000 * i * i;
          bytes += `POST ${path} HTTP/1.1\r\nHost: pipelined.mesh.local\r\nContent-Length: ${size}\r\n${last}\r\n${'p'.repeat(size)}`;
          expected.push(`POST ${path} ${size}`);
        }
      }
      return { bytes, expected };
    };
    const client = async (
      c: number,
      cutOff: boolean,
    ): Promise<{ got: string[]; expected: string[] }> => {
      const { bytes, expected } = batch(c);
      const raw = await RawClient.connect(port);
      // Cut off: gone as soon as the first answer starts coming.
      if (cutOff) raw.socket.once('data', () => raw.socket.destroy());
      void raw.write(bytes).catch(() => undefined); // a cut-off client may not finish writing
      if (cutOff) {
        await raw.closedPromise;
        return { got: [], expected };
      }
      // Whole responses only, to the close (a cut one ends anywhere, so is not parsed).
      const got = (await raw.readToClose()).map((r) => r.body.toString());
      return { got, expected };
    };
    const results = await Promise.all(Array.from({ length: 12 }, (_, c) => client(c, c % 3 === 2)));
    for (const [c, r] of results.entries()) {
      if (c % 3 === 2) continue;
      assert.deepEqual(r.got, r.expected, `client ${c}`);
    }
    // The cut-off clients left nothing stuck: a new request is answered at once.
    const r = await call(g.url, '/final', { headers: { host: 'pipelined.mesh.local' } });
    assert.equal(r.status, 200);
    assert.equal(r.text, 'GET /final 0');
  });

  it('cancels the upload and serves on when the client disconnects mid-upload', async () => {
    const [u] = await service('upload-cut', 1);
    let uploadGone = false;
    const started = deferred<void>();
    (u as Upstream).handler = (req) => {
      req.on('data', () => started.resolve());
      req.on('close', () => (uploadGone = true));
    };
    const g = await gw({});
    const port = Number(new URL(g.url).port);
    const client = await RawClient.connect(port);
    await client.write(
      'POST /up HTTP/1.1\r\nHost: upload-cut.mesh.local\r\nContent-Length: 100000\r\n\r\n',
    );
    await client.write('x'.repeat(1_000));
    // The upload is streaming to the upstream: now the client goes.
    await started.promise;
    client.socket.destroy();
    await until(() => uploadGone, 5_000, 'the upstream upload to be cut');
    // An aborted body's error nobody hears any more must not crash the gateway.
    (u as Upstream).handler = undefined;
    const r = await call(g.url, '/', { headers: { host: 'upload-cut.mesh.local' } });
    assert.equal(r.status, 200);
    assert.equal(r.text, 'upload-cut-1');
  });

  it('cancels the upstream request when the client disconnects', async () => {
    const [u] = await service('cancel', 1);
    let upstreamClosed = false;
    (u as Upstream).handler = (req, res) => {
      res.writeHead(200);
      res.write('partial');
      res.on('close', () => (upstreamClosed = true));
    };
    const g = await gw({});
    const ac = new AbortController();
    const { request } = await import('undici');
    const res = await request(`${g.url}/`, {
      headers: { host: 'cancel.mesh.local' },
      signal: ac.signal,
    });
    assert.equal(res.statusCode, 200);
    ac.abort();
    await res.body.text().catch(() => undefined);
    await until(() => upstreamClosed, 5_000, 'the upstream request to be cancelled');
  });
});
