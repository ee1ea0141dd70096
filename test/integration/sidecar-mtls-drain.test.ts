// The inbound drain of an mTLS sidecar (issue 20; the SIGTERM sequence of docs/sidecar.md: drain
// inbound, then stop the app). Over mTLS the inbound listener accepts TCP connections itself and
// hands them to the HTTP server only once their TLS handshake is done: a connection still in its
// handshake when the drain starts carries a request (its client sends it as soon as the
// handshake ends) that the drain must wait for, or the request reaches an app already stopped.
// Real parts: an in-process sidecar proxy with a test CA identity, a real app server, a real TLS
// client whose handshake a TCP relay holds half-way.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterEach, beforeEach, it } from 'node:test';
import { silentLogger } from '../../src/core/logger.js';
import {
  startSidecarProxy,
  type RunningSidecarProxy,
  type SidecarProxyOptions,
} from '../../src/sidecar/sidecar-proxy.js';
import { describeOnEachHttp1, startUpstream, type Upstream } from '../helpers/gateway.js';
import { createTestCa, serviceIdentity, type TestIdentity } from '../helpers/test-ca.js';
import { SIDECAR_PROXY_BASE } from '../helpers/sidecar.js';

/** Far longer than any step here: a drain that ends early did not wait for its deadline. */
const DRAIN_TIMEOUT_MS = 20_000;

const BASE: SidecarProxyOptions = {
  ...SIDECAR_PROXY_BASE,
  service: 'payments',
  connectTimeoutMs: 2_000,
  requestTimeoutMs: 10_000,
  drainTimeoutMs: DRAIN_TIMEOUT_MS,
};

/**
 * A TCP relay to `port` that forwards the client's first flight (a TLS ClientHello) and holds
 * everything the client sends after it until `release()`; the server's bytes pass freely.
 */
async function holdingRelay(port: number): Promise<{
  port: number;
  release(): void;
  close(): void;
}> {
  let released = false;
  const held: { upstream: Socket; chunks: Buffer[] }[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = netConnect({ host: '127.0.0.1', port });
    sockets.add(client).add(upstream);
    const entry = { upstream, chunks: [] as Buffer[] };
    held.push(entry);
    let first = true;
    client.on('data', (chunk: Buffer) => {
      if (first || released) upstream.write(chunk);
      else entry.chunks.push(chunk);
      first = false;
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as { port: number }).port,
    release: () => {
      released = true;
      for (const { upstream, chunks } of held) for (const c of chunks) upstream.write(c);
    },
    close: () => {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}

describeOnEachHttp1('sidecar mTLS inbound drain', (http1) => {
  let callerId: TestIdentity;
  let app: Upstream;
  let b: RunningSidecarProxy;

  beforeEach(async () => {
    const ca = await createTestCa();
    callerId = await serviceIdentity(ca, 'orders');
    app = await startUpstream('payments-app');
    b = await startSidecarProxy(
      { ...BASE, appPort: app.port, tls: await serviceIdentity(ca, 'payments') },
      silentLogger,
      http1.deps,
    );
  });

  afterEach(async () => {
    await b.close();
    await app.close();
  });

  it('waits for a connection in its TLS handshake, and its request reaches the app before the app stops', async () => {
    const relay = await holdingRelay(Number(new URL(b.inboundUrl).port));
    try {
      const socket = tlsConnect({
        host: '127.0.0.1',
        port: relay.port,
        secureContext: callerId.secureContext(),
        minVersion: 'TLSv1.3',
        servername: '',
        checkServerIdentity: () => undefined,
      });
      let answer = '';
      socket.setEncoding('latin1');
      socket.on('data', (d: string) => (answer += d));
      const ended = new Promise<void>((resolve, reject) => {
        socket.once('end', resolve);
        socket.once('close', () => resolve());
        socket.once('error', reject);
      });
      // The client has the server's flight (ClientHello answered) and sends its Finished and
      // the request at once: both held by the relay, so the server is still in the handshake.
      await once(socket, 'secureConnect');
      socket.write('GET /held HTTP/1.1\r\nHost: payments\r\nConnection: close\r\n\r\n');

      // The sidecar's SIGTERM sequence: the inbound drain, then the app stops.
      let drained = false;
      const draining = b.stopInbound().then(async () => {
        drained = true;
        await app.close();
      });
      // Several of the drain's polls (every 20 ms) pass: it still waits for the handshake.
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(drained, false, 'the drain ended with a connection in its TLS handshake');

      relay.release();
      await ended;
      assert.match(answer, /^HTTP\/1\.1 200 /);
      assert.match(answer, /\r\nx-upstream: payments-app\r\n/i);
      assert.equal(app.seen.at(-1)?.url, '/held');
      await draining;
    } finally {
      relay.close();
    }
  });

  it('does not wait for a connection whose TLS handshake failed', async () => {
    // No client certificate: the inbound side refuses the handshake.
    const refused = tlsConnect({
      host: '127.0.0.1',
      port: Number(new URL(b.inboundUrl).port),
      minVersion: 'TLSv1.3',
      servername: '',
      rejectUnauthorized: false,
    });
    refused.on('error', () => {});
    refused.resume();
    // Not events.once: it rejects on the 'error' (the server's alert) before 'close'.
    await new Promise((r) => refused.once('close', r));
    const started = Date.now();
    await b.stopInbound();
    assert.ok(
      Date.now() - started < DRAIN_TIMEOUT_MS / 2,
      'the drain waited for a failed handshake',
    );
  });

  it('does not wait for an accepted connection whose client sent nothing: it is closed as idle', async () => {
    const silent = netConnect({ host: '127.0.0.1', port: Number(new URL(b.inboundUrl).port) });
    await once(silent, 'connect');
    // Accepted by the listener (not only by the kernel) before the drain starts.
    await new Promise((r) => setTimeout(r, 50));
    const closed = once(silent, 'close');
    silent.on('error', () => {});
    const started = Date.now();
    await b.stopInbound();
    // Closed by the drain, well before its deadline (not by its end, nor the first-byte timeout).
    assert.ok(Date.now() - started < DRAIN_TIMEOUT_MS / 2, 'the drain waited for a silent client');
    await closed;
  });
});
