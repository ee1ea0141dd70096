/**
 * MeshworkClient against a real agent and real upstream servers (issue 6): calls by service name
 * through `client.fetch` and through the undici dispatcher, balancing, retries on other
 * instances with the attempt headers, the retry budget under a failing upstream, and errors.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { fetch, request } from 'undici';
import { FakeClock } from '../../src/testing/fake-clock.js';
import { isMeshError, ERROR_CODES } from '../../src/core/errors.js';
import { createMeshworkClient, type MeshworkClient } from '../../src/client/mesh-client.js';
import { startTestAgent, type TestAgent } from '../helpers/agent.js';

interface Upstream {
  readonly id: string;
  readonly server: Server;
  readonly port: number;
  hits: number;
  status: number;
  readonly seen: IncomingHttpHeaders[];
}

async function upstream(id: string, status = 200): Promise<Upstream> {
  const u: Partial<Upstream> & { hits: number; status: number; seen: IncomingHttpHeaders[] } = {
    id,
    hits: 0,
    status,
    seen: [],
  };
  const server = createServer((req, res) => {
    u.hits++;
    u.seen.push(req.headers);
    if (u.seen.length > 50) u.seen.shift();
    req.resume();
    req.on('end', () => {
      res.writeHead(u.status, { 'content-type': 'text/plain' });
      res.end(id);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return Object.assign(u, {
    server,
    port: (server.address() as { port: number }).port,
  }) as Upstream;
}

describe('MeshworkClient', () => {
  let agent: TestAgent;
  let client: MeshworkClient;
  const upstreams: Upstream[] = [];

  const register = async (service: string, u: Upstream): Promise<void> => {
    await client.registry.register({ service, id: u.id, address: '127.0.0.1', port: u.port });
  };

  before(async () => {
    agent = await startTestAgent();
    client = createMeshworkClient({
      registry: agent.url,
      retry: { backoff: { baseMs: 1, maxMs: 2 } },
      // The budget test below fails every request: keep the breakers out of its way.
      outlierDetection: { consecutiveFailures: 10_000 },
    });
    for (const n of [1, 2, 3]) {
      const u = await upstream(`payments-${n}`);
      upstreams.push(u);
      await register('payments', u);
    }
  });
  after(async () => {
    await client.close();
    for (const u of upstreams) u.server.close();
    await agent.stop();
  });

  it('spreads calls by service name over every instance, round-robin', async () => {
    for (const u of upstreams) u.hits = 0;
    const bodies: string[] = [];
    for (let i = 0; i < 30; i++) {
      const res = await client.fetch('http://payments/charge', { method: 'PUT', body: '{}' });
      assert.equal(res.status, 200);
      bodies.push(await res.text());
    }
    assert.deepEqual(
      upstreams.map((u) => u.hits),
      [10, 10, 10],
    );
    assert.equal(new Set(bodies).size, 3);
    const seen = upstreams[0]?.seen.at(-1);
    assert.equal(seen?.host, 'payments', 'the upstream sees the service name as Host');
    assert.equal(seen?.['x-meshwork-attempt'], '1');
  });

  it('serves undici request() given the dispatcher, and leaves other hosts alone', async () => {
    const res = await request('http://payments/x', { dispatcher: client.dispatcher });
    assert.equal(res.statusCode, 200);
    assert.match(await res.body.text(), /^payments-\d$/);
    const direct = await request(`http://127.0.0.1:${upstreams[2]?.port}/`, {
      dispatcher: client.dispatcher,
    });
    assert.equal(await direct.body.text(), 'payments-3');
  });

  it('retries a 503 on another instance, marking the attempt', async () => {
    const [bad] = upstreams;
    bad!.status = 503;
    try {
      for (const u of upstreams) {
        u.hits = 0;
        u.seen.length = 0;
      }
      for (let i = 0; i < 12; i++) {
        const res = await client.fetch('http://payments/charge');
        assert.equal(res.status, 200, 'every call lands on a healthy instance');
        await res.text();
      }
      assert.ok(bad!.hits > 0);
      const retried = upstreams.slice(1).flatMap((u) => u.seen);
      assert.ok(retried.some((h) => h['x-meshwork-attempt'] === '2'));
    } finally {
      bad!.status = 200;
    }
  });

  it('keeps attempts within 1.25x the requests plus the budget floor when every instance fails', async (t) => {
    const failing = createMeshworkClient({
      registry: agent.url,
      retry: { backoff: { baseMs: 1, maxMs: 2 } },
      outlierDetection: { consecutiveFailures: 10_000 },
    });
    const down = await upstream('flaky-1', 503);
    try {
      await failing.registry.register({
        service: 'flaky',
        id: 'flaky-1',
        address: '127.0.0.1',
        port: down.port,
      });
      const requests = 1_000;
      const started = performance.now();
      for (let i = 0; i < requests; i++) {
        const res = await failing.fetch('http://flaky/x');
        assert.equal(res.status, 503, 'the caller gets the last answer when retries run out');
        await res.text();
      }
      const { ratio, minRetriesPerSecond, windowMs } = failing.retry.options.budget;
      // The floor is a rate: each window of the run grants it again, so a run slowed by a busy
      // machine (several windows long) is granted it once per window it spans.
      const windows = Math.max(1, Math.ceil((performance.now() - started) / windowMs));
      const floor = ((minRetriesPerSecond * windowMs) / 1000) * windows;
      t.diagnostic(`${down.hits} upstream attempts for ${requests} requests (floor ${floor})`);
      assert.ok(
        down.hits <= requests * 1.25 + floor && down.hits <= requests * (1 + ratio) + floor,
        `${down.hits} attempts for ${requests} requests`,
      );
      assert.ok(down.hits > requests, 'some retries were allowed');
    } finally {
      await failing.close();
      down.server.close();
    }
  });

  it('goes to the remaining instances when one stops accepting connections', async () => {
    const gone = await upstream('payments-4');
    await register('payments', gone);
    await client.discover('payments');
    gone.server.close();
    gone.server.closeAllConnections();
    const ids = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const res = await client.fetch('http://payments/y');
      assert.equal(res.status, 200);
      ids.add(await res.text());
    }
    assert.ok(!ids.has('payments-4'));
    await client.registry.deregister('payments-4');
  });

  it('fails with NO_HEALTHY_INSTANCE for a service nobody runs', async () => {
    await assert.rejects(client.fetch('http://ghost/x'), (err: Error) =>
      isMeshError(err, ERROR_CODES.CLIENT_NO_HEALTHY_INSTANCE),
    );
  });

  it('serves existing fetch code given the dispatcher, streamed bodies included', async () => {
    const res = await fetch('http://payments/stream', {
      method: 'PUT',
      body: new Blob(['a streamed body']).stream(),
      duplex: 'half',
      dispatcher: client.dispatcher,
    } as never);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /^payments-\d$/);
  });

  it('bounds concurrent calls per service with a bulkhead, and answers the fallback instead of failing', async () => {
    let hold: (() => void)[] = [];
    const slow = createServer((req, res) => {
      hold.push(() => res.end('slow'));
    });
    slow.listen(0, '127.0.0.1');
    await once(slow, 'listening');
    const bounded = createMeshworkClient({
      registry: agent.url,
      bulkhead: { maxConcurrent: 2 },
      fallback: (service, err) =>
        new Response(`fallback for ${service}: ${(err as Error & { code?: string }).code}`, {
          status: 503,
        }),
    });
    try {
      await bounded.registry.register({
        service: 'slow',
        id: 'slow-1',
        address: '127.0.0.1',
        port: (slow.address() as { port: number }).port,
      });
      await bounded.discover('slow', { status: ['passing', 'warning', 'critical', 'starting'] });
      const first = [bounded.fetch('http://slow/a'), bounded.fetch('http://slow/b')];
      const third = await bounded.fetch('http://slow/c');
      assert.equal(third.status, 503);
      assert.equal(await third.text(), 'fallback for slow: MESHWORK_ERR_CLIENT_BULKHEAD_FULL');
      while (hold.length < 2) await new Promise((r) => setTimeout(r, 5));
      for (const h of hold) h();
      hold = [];
      for (const r of await Promise.all(first)) assert.equal(await r.text(), 'slow');
      // The slots are free again.
      const again = bounded.fetch('http://slow/d');
      while (hold.length < 1) await new Promise((r) => setTimeout(r, 5));
      hold[0]?.();
      assert.equal(await (await again).text(), 'slow');
    } finally {
      await bounded.close();
      slow.closeAllConnections();
      slow.close();
    }
  });

  it('rate-limits calls per service with a token bucket', async () => {
    const clock = new FakeClock();
    const limited = createMeshworkClient({
      registry: agent.url,
      rateLimit: { ratePerSecond: 10, burst: 2 },
      clock,
    });
    try {
      await limited.discover('payments');
      for (let i = 0; i < 2; i++)
        assert.equal((await limited.fetch('http://payments/r')).status, 200);
      await assert.rejects(limited.fetch('http://payments/r'), (err: Error) =>
        isMeshError(err, ERROR_CODES.CLIENT_RATE_LIMITED),
      );
      clock.advance(100); // one token back
      assert.equal((await limited.fetch('http://payments/r')).status, 200);
    } finally {
      await limited.close();
    }
  });

  it('streams a large body of unknown length through client.fetch, and honours an abort', async () => {
    const chunk = Buffer.alloc(64 * 1024, 'x');
    let slowStarted: (() => void) | undefined;
    const big = createServer((req, res) => {
      if (req.url === '/slow') {
        res.writeHead(200);
        res.write('partial');
        slowStarted?.();
        return; // never ends: the caller aborts
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream' }); // chunked: no length
      let n = 0;
      const more = (): void => {
        while (n < 32) {
          n++;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
        res.end();
      };
      more();
    });
    big.listen(0, '127.0.0.1');
    await once(big, 'listening');
    try {
      await client.registry.register({
        service: 'big',
        id: 'big-1',
        address: '127.0.0.1',
        port: (big.address() as { port: number }).port,
      });
      await client.discover('big', { status: ['passing', 'warning', 'critical', 'starting'] });
      const res = await client.fetch('http://big/data');
      assert.ok(res instanceof Response);
      assert.equal(res.headers.get('content-type'), 'application/octet-stream');
      let bytes = 0;
      for await (const c of res.body!) bytes += c.length;
      assert.equal(bytes, 32 * chunk.length);

      const controller = new AbortController();
      const started = new Promise<void>((r) => (slowStarted = r));
      const pending = client.fetch('http://big/slow', { signal: controller.signal });
      const slow = await pending;
      await started;
      controller.abort(new Error('caller gave up'));
      await assert.rejects(slow.text(), /caller gave up|aborted/);
    } finally {
      big.closeAllConnections();
      big.close();
    }
  });

  it('gives up a try at its per-try timeout, on the policy clock, and retries elsewhere', async () => {
    const clock = new FakeClock();
    let arrived: (() => void) | undefined;
    const hang = createServer(() => arrived?.()); // never answers
    hang.listen(0, '127.0.0.1');
    await once(hang, 'listening');
    const ok = await upstream('tick-ok');
    const timed = createMeshworkClient({
      registry: agent.url,
      clock,
      balancer: 'round-robin',
      retry: { perTryTimeoutMs: 150, backoff: { baseMs: 1, maxMs: 1 } },
    });
    try {
      const port = (hang.address() as { port: number }).port;
      await timed.registry.register({
        service: 'tick',
        id: 'tick-hang',
        address: '127.0.0.1',
        port,
      });
      await timed.registry.register({
        service: 'tick',
        id: 'tick-ok',
        address: '127.0.0.1',
        port: ok.port,
      });
      await timed.discover('tick', { status: ['passing', 'warning', 'critical', 'starting'] });
      // Round-robin: one of the first two calls lands on the hanging instance.
      for (let n = 0; n < 2; n++) {
        const reached = new Promise<void>((r) => (arrived = r));
        const call = timed.fetch('http://tick/x');
        const first = await Promise.race([reached.then(() => 'hang'), call.then(() => 'ok')]);
        if (first === 'hang') {
          clock.advance(150); // the try's deadline passes: abort, and retry on tick-ok
          clock.advance(1); // the retry's backoff
        }
        const res = await call;
        assert.equal(res.status, 200);
        assert.equal(await res.text(), 'tick-ok');
      }
      assert.equal(ok.hits, 2);
    } finally {
      await timed.close();
      hang.closeAllConnections();
      hang.close();
      ok.server.close();
    }
  });
});
