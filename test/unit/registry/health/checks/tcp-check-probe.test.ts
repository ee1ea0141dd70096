/** @module Tests of TcpCheckProbe against a real node:net server on 127.0.0.1, port 0. */
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { FakeClock } from '../../../../../src/testing/fake-clock.js';
import {
  createTcpCheckProbe,
  parseAddress,
} from '../../../../../src/registry/health/checks/tcp-check-probe.js';
import { checkDef } from '../health-fixtures.js';

describe('TcpCheckProbe', () => {
  let server: Server;
  let port: number;
  const probe = createTcpCheckProbe();
  const signal = new AbortController().signal;
  const def = (address: string, timeoutMs = 200) =>
    checkDef({ kind: 'tcp', timeoutMs, tcp: { address } });

  before(async () => {
    server = createServer((socket) => socket.end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('is passing when the connection opens', async () => {
    const r = await probe.probe(def(`127.0.0.1:${port}`), signal);
    assert.deepEqual(r, { status: 'passing', output: `TCP connect 127.0.0.1:${port}: Success` });
  });

  it('is critical with the error when the connection is refused', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const freePort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const r = await probe.probe(def(`127.0.0.1:${freePort}`), signal);
    assert.equal(r.status, 'critical');
    assert.match(r.output, /^TCP connect 127\.0\.0\.1:\d+: .*ECONNREFUSED/);
  });

  it('is critical when the connection does not open within timeoutMs', async () => {
    // A local kernel completes the TCP handshake even if the server never accepts, so a connect
    // cannot be made to hang here. Instead the deadline, which runs on the injected clock, fires
    // synchronously, before any connect outcome can arrive.
    const clock = new FakeClock();
    const slow = createTcpCheckProbe({ clock });
    const pending = slow.probe(def(`127.0.0.1:${port}`, 200), signal);
    clock.advance(199);
    clock.advance(1);
    const r = await pending;
    assert.deepEqual(r, {
      status: 'critical',
      output: `TCP connect 127.0.0.1:${port}: timed out after 200 ms`,
    });
    assert.equal(clock.pendingTimers, 0);
  });

  it('is critical, not rejected, when aborted by the caller', async () => {
    const controller = new AbortController();
    controller.abort();
    const r = await probe.probe(def(`127.0.0.1:${port}`), controller.signal);
    assert.deepEqual(r, { status: 'critical', output: `TCP connect 127.0.0.1:${port}: aborted` });
  });

  it('is critical on an address it cannot parse', async () => {
    const r = await probe.probe(def('no-port'), signal);
    assert.deepEqual(r, { status: 'critical', output: 'TCP connect no-port: invalid address' });
  });
});

describe('parseAddress', () => {
  it('splits host:port and [v6]:port', () => {
    assert.deepEqual(parseAddress('db.local:5432'), { host: 'db.local', port: 5432 });
    assert.deepEqual(parseAddress('[::1]:80'), { host: '::1', port: 80 });
  });

  it('rejects missing or out-of-range ports', () => {
    assert.equal(parseAddress('db.local'), undefined);
    assert.equal(parseAddress('db.local:0'), undefined);
    assert.equal(parseAddress('db.local:70000'), undefined);
  });
});
