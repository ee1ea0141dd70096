/** @module Tests of HttpCheckProbe against a real node:http server on 127.0.0.1, port 0. */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  HTTP_CHECK_MAX_OUTPUT_BYTES,
  createHttpCheckProbe,
} from '../../../../../src/registry/health/checks/http-check-probe.js';
import { checkDef } from '../health-fixtures.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const routes: Record<string, Handler> = {
  '/ok': (_req, res) => res.end('all good'),
  '/busy': (_req, res) => {
    res.statusCode = 429;
    res.end('slow down');
  },
  '/boom': (_req, res) => {
    res.statusCode = 500;
    res.end('exploded');
  },
  '/huge': (_req, res) => {
    res.setHeader('content-type', 'text/plain');
    res.end('x'.repeat(1024 * 1024));
  },
  '/hang': () => undefined,
  '/echo': (req, res) => res.end(`${req.method} ${req.headers['x-probe'] ?? ''}`),
};

describe('HttpCheckProbe', () => {
  let server: Server;
  let base: string;
  const probe = createHttpCheckProbe();
  const signal = new AbortController().signal;

  before(async () => {
    server = createServer((req, res) => (routes[req.url ?? ''] ?? routes['/boom'])?.(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    await probe.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const def = (
    path: string,
    overrides: { method?: string; headers?: Record<string, string>; timeoutMs?: number } = {},
  ) =>
    checkDef({
      // Long, so that a busy machine cannot turn an answer into a timeout; the timeout test
      // asks for a short one.
      timeoutMs: overrides.timeoutMs ?? 10_000,
      http: {
        url: `${base}${path}`,
        method: overrides.method ?? 'GET',
        headers: overrides.headers ?? {},
        tlsSkipVerify: false,
      },
    });

  it('is passing on a 2xx, naming the request and status', async () => {
    const r = await probe.probe(def('/ok'), signal);
    assert.equal(r.status, 'passing');
    assert.equal(r.output, `HTTP GET ${base}/ok: 200 OK Output: all good`);
  });

  it('is warning on a 429', async () => {
    const r = await probe.probe(def('/busy'), signal);
    assert.equal(r.status, 'warning');
    assert.match(r.output, /: 429 Too Many Requests Output: slow down$/);
  });

  it('is critical on a 500', async () => {
    const r = await probe.probe(def('/boom'), signal);
    assert.equal(r.status, 'critical');
    assert.match(r.output, /: 500 Internal Server Error Output: exploded$/);
  });

  it('caps the body it puts into the output', async () => {
    const r = await probe.probe(def('/huge'), signal);
    assert.equal(r.status, 'passing');
    const body = r.output.slice(r.output.indexOf('Output: ') + 'Output: '.length);
    assert.equal(body, `${'x'.repeat(HTTP_CHECK_MAX_OUTPUT_BYTES)} (truncated)`);
  });

  it('sends the configured method and headers', async () => {
    const r = await probe.probe(
      def('/echo', { method: 'put', headers: { 'X-Probe': 'yes' } }),
      signal,
    );
    assert.equal(r.output, `HTTP PUT ${base}/echo: 200 OK Output: PUT yes`);
  });

  it('is critical when the server does not answer within timeoutMs', async () => {
    const started = performance.now();
    const r = await probe.probe(def('/hang', { timeoutMs: 200 }), signal);
    assert.equal(r.status, 'critical');
    assert.match(r.output, /timed out after 200 ms$/);
    assert.ok(performance.now() - started < 2000);
  });

  it('is critical when the connection is refused', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const r = await probe.probe(
      checkDef({
        timeoutMs: 10_000,
        http: {
          url: `http://127.0.0.1:${port}/`,
          method: 'GET',
          headers: {},
          tlsSkipVerify: false,
        },
      }),
      signal,
    );
    assert.equal(r.status, 'critical');
    assert.match(r.output, /ECONNREFUSED/);
  });

  it('is critical, not rejected, when aborted by the caller', async () => {
    const controller = new AbortController();
    const pending = probe.probe(def('/hang'), controller.signal);
    controller.abort();
    const r = await pending;
    assert.equal(r.status, 'critical');
    assert.match(r.output, /aborted$/);
  });

  it('keeps credentials out of the output', async () => {
    const url = `${base.replace('http://', 'http://user:secret@')}/ok`;
    const r = await probe.probe(
      checkDef({
        timeoutMs: 10_000,
        http: { url, method: 'GET', headers: {}, tlsSkipVerify: false },
      }),
      signal,
    );
    assert.doesNotMatch(r.output, /secret/);
  });
});
