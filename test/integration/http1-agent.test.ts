/**
 * Http1Agent (the gateway's upstream client) against real upstreams on loopback: node:http
 * servers, and raw TCP servers that answer exact bytes (framings node:http would not send,
 * broken responses). Plus a fast-check property: any bytes an upstream sends end in exactly one
 * onComplete or onError, never a throw or a hang.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server } from 'node:net';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import type { Dispatcher } from 'undici';
import type { UpstreamHandler } from '../../src/proxy/contract.js';
import {
  Http1Agent,
  isHttp1AgentSupported,
  type Http1AgentOptions,
} from '../../src/proxy/http1/http1-agent.js';
import { until } from '../helpers/until.js';

interface Outcome {
  status?: number;
  headers: string[];
  body: string;
  error?: Error & { code?: string };
  completed: boolean;
}

/** Sends one request and collects what the raw handler hears. */
function send(
  agent: Http1Agent,
  origin: string,
  opts: Partial<Dispatcher.DispatchOptions> = {},
  onData?: (chunk: Buffer, resume: () => void) => boolean,
): Promise<Outcome> {
  return new Promise((resolve) => {
    const out: Outcome = { headers: [], body: '', completed: false };
    let resume: () => void = () => undefined;
    const handler: UpstreamHandler = {
      onConnect: () => undefined,
      onHeaders: (status: number, raw: readonly (Buffer | string)[], r: () => void) => {
        out.status = status;
        out.headers = raw.map(String);
        resume = r;
        return true;
      },
      onData: (chunk: Buffer) => {
        out.body += chunk.toString();
        return onData === undefined ? true : onData(chunk, resume);
      },
      onComplete: () => {
        out.completed = true;
        resolve(out);
      },
      onError: (err: Error) => {
        out.error = err;
        resolve(out);
      },
    };
    agent.dispatch({ origin, path: '/', method: 'GET', headers: [], ...opts }, handler);
  });
}

async function httpServer(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ origin: string; close(): Promise<void>; connections: () => number }> {
  let connections = 0;
  const server = createServer(handler);
  server.on('connection', () => connections++);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections: () => connections,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/** A TCP server that answers every request head with `reply(requestText)` (then maybe closes). */
async function rawServer(
  reply: (request: string) => { bytes: string | Buffer; close?: boolean },
): Promise<{ origin: string; server: Server }> {
  const server = createTcpServer((socket) => {
    let buf = '';
    socket.on('error', () => undefined);
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      let end: number;
      while ((end = buf.indexOf('\r\n\r\n')) >= 0) {
        const head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        const r = reply(head);
        if (r.close === true) socket.end(r.bytes);
        else socket.write(r.bytes);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

for (const nativeReads of [true, false])
  describe(`Http1Agent (${nativeReads ? 'bytes read natively' : "bytes through 'data' events"})`, () => {
    const agent = new Http1Agent({
      connectTimeoutMs: 1_000,
      keepAliveTimeoutMs: 4_000,
      connections: 0,
      nativeReads,
    });
    const closers: (() => Promise<void> | void)[] = [];
    after(async () => {
      await agent.close();
      for (const c of closers) await c();
    });
    /** An agent of the test's own (its connections counted alone), closed after the suite. */
    const ownAgent = (options: Partial<Http1AgentOptions> = {}): Http1Agent => {
      const own = new Http1Agent({
        connectTimeoutMs: 1_000,
        keepAliveTimeoutMs: 4_000,
        connections: 0,
        nativeReads,
        ...options,
      });
      closers.push(() => own.close());
      return own;
    };

    it('is supported on the Node versions Meshwork runs on (else the gateway uses undici)', () => {
      assert.equal(isHttp1AgentSupported(), true);
    });

    it('sends method, path and headers, adds host, and reuses the keep-alive connection', async () => {
      const seen: { method?: string; url?: string; host?: string; x?: string | string[] }[] = [];
      const up = await httpServer((req, res) => {
        seen.push({
          method: req.method,
          url: req.url,
          host: req.headers.host,
          x: req.headers['x-a'],
        });
        res.setHeader('X-Upstream', 'one');
        res.end('hello');
      });
      closers.push(up.close);
      for (let i = 0; i < 3; i++) {
        const r = await send(agent, up.origin, {
          method: 'DELETE',
          path: '/p?q=1',
          headers: ['x-a', 'b'],
        });
        assert.equal(r.status, 200);
        assert.equal(r.body, 'hello');
        assert.ok(r.completed);
        assert.deepEqual(r.headers.slice(0, 2), ['X-Upstream', 'one'], 'names as sent');
      }
      assert.deepEqual(seen[0], {
        method: 'DELETE',
        url: '/p?q=1',
        host: new URL(up.origin).host,
        x: 'b',
      });
      assert.equal(up.connections(), 1, 'one connection for three requests');
    });

    it('streams a request body of unknown length chunked, and of a known length as it is', async () => {
      const up = await httpServer((req, res) => {
        let body = '';
        req.on('data', (d: Buffer) => (body += d.toString()));
        req.on('end', () =>
          res.end(`${req.headers['transfer-encoding'] ?? req.headers['content-length']}:${body}`),
        );
      });
      closers.push(up.close);
      const chunked = await send(agent, up.origin, {
        method: 'POST',
        body: Readable.from([Buffer.from('ab'), Buffer.from('cd')]),
      });
      assert.equal(chunked.body, 'chunked:abcd');
      const sized = await send(agent, up.origin, {
        method: 'PUT',
        headers: ['content-length', '4'],
        body: Readable.from([Buffer.from('wxyz')]),
      });
      assert.equal(sized.body, '4:wxyz');
      const empty = await send(agent, up.origin, { method: 'POST' });
      assert.equal(empty.body, '0:', 'a POST without a body says content-length: 0');
    });

    it('reads chunked, close-delimited, HEAD, 204 and 1xx-preceded answers', async () => {
      const { origin, server } = await rawServer((head) => {
        const path = head.split(' ')[1];
        if (path === '/chunked')
          return {
            bytes:
              'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n',
          };
        if (path === '/close')
          return { bytes: 'HTTP/1.1 200 OK\r\n\r\nuntil the end', close: true };
        if (path === '/head') return { bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n' };
        if (path === '/204') return { bytes: 'HTTP/1.1 204 No Content\r\n\r\n' };
        return {
          bytes:
            'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok',
        };
      });
      closers.push(() => void server.close());
      assert.equal((await send(agent, origin, { path: '/chunked' })).body, 'abcde');
      const closed = await send(agent, origin, { path: '/close' });
      assert.equal(closed.body, 'until the end');
      assert.ok(closed.completed, 'the end of the connection completes it');
      const head = await send(agent, origin, { path: '/head', method: 'HEAD' });
      assert.ok(head.completed);
      assert.equal(head.body, '');
      assert.equal((await send(agent, origin, { path: '/204' })).status, 204);
      const interim = await send(agent, origin, { path: '/1xx' });
      assert.equal(interim.status, 201, 'interim answers are skipped');
      assert.equal(interim.body, 'ok');
    });

    it('passes on a head of many headers in full', async () => {
      const up = await httpServer((_req, res) => {
        for (let i = 0; i < 80; i++) res.setHeader(`x-h${i}`, String(i));
        res.end();
      });
      closers.push(up.close);
      const r = await send(agent, up.origin);
      const names = r.headers.filter((_, i) => i % 2 === 0).filter((n) => n.startsWith('x-h'));
      assert.equal(names.length, 80);
    });

    it('fails with codes the retry policy knows: refused, reset before the head, broken bytes', async () => {
      const dead = createTcpServer();
      dead.listen(0, '127.0.0.1');
      await once(dead, 'listening');
      const port = (dead.address() as AddressInfo).port;
      await new Promise((r) => dead.close(r));
      assert.equal((await send(agent, `http://127.0.0.1:${port}`)).error?.code, 'ECONNREFUSED');

      const { origin, server } = await rawServer((head) =>
        head.includes('/reset')
          ? { bytes: '', close: true }
          : { bytes: 'HTTP/1.1 2x0 What\r\n\r\n', close: true },
      );
      closers.push(() => void server.close());
      assert.equal((await send(agent, origin, { path: '/reset' })).error?.code, 'ECONNRESET');
      const broken = await send(agent, origin, { path: '/broken' });
      assert.match(String(broken.error?.code), /^HPE_/);
    });

    it('times out a body that stays silent past bodyTimeout', async () => {
      const up = await httpServer((_req, res) => {
        res.writeHead(200, { 'content-length': '10' });
        res.write('12345'); // and never the rest
      });
      closers.push(up.close);
      const r = await send(agent, up.origin, { bodyTimeout: 100 });
      assert.equal(r.error?.code, 'UND_ERR_BODY_TIMEOUT');
      assert.equal(r.body, '12345');
    });

    it('lets a body last past bodyTimeout in all while each chunk comes within it', async () => {
      const up = await httpServer((_req, res) => {
        res.writeHead(200, { 'content-length': '24' });
        let sent = 0;
        const tick = setInterval(() => {
          res.write('x');
          if (++sent === 24) {
            clearInterval(tick);
            res.end();
          }
        }, 25);
      });
      closers.push(up.close);
      // 24 chunks 25 ms apart: ~600 ms in all, each silence far below 400 ms.
      const r = await send(agent, up.origin, { bodyTimeout: 400 });
      assert.equal(r.error, undefined);
      assert.equal(r.body, 'x'.repeat(24));
    });

    for (const [what, stray] of [
      ['a whole head', 'HTTP/1.1 204 No Content\r\n\r\n'],
      ['part of a head', 'HTTP/1.1 200 OK\r\n'],
    ] as const)
      it(`drops a connection on which the upstream sends ${what} with no request waiting`, async () => {
        let accepted = 0;
        const server = createTcpServer((socket) => {
          accepted++;
          socket.on('error', () => undefined);
          socket.once('data', () => {
            socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
            // Then a second answer nobody asked for, once the first has been read.
            setTimeout(() => socket.write(stray), 20);
          });
        });
        server.listen(0, '127.0.0.1');
        await once(server, 'listening');
        closers.push(() => void server.close());
        const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
        const own = ownAgent();
        assert.equal((await send(own, origin)).body, 'ok');
        assert.equal(own.connections, 1);
        await until(
          () => own.connections === 0,
          2_000,
          'the connection with the stray answer closed',
        );
        assert.equal((await send(own, origin)).body, 'ok');
        assert.equal(accepted, 2);
      });

    it('pauses the upstream while onData answers false, and resumes on resume()', async () => {
      const big = Buffer.alloc(256 * 1024, 'x');
      const up = await httpServer((_req, res) => res.end(big));
      closers.push(up.close);
      let paused = 0;
      let whilePaused = 0;
      let pausedNow = false;
      const r = await send(agent, up.origin, { bodyTimeout: 150 }, (_chunk, resume) => {
        if (pausedNow) whilePaused++;
        paused++;
        pausedNow = true;
        // Resume after longer than bodyTimeout: a paused body is not a silent one.
        setTimeout(() => {
          pausedNow = false;
          resume();
        }, 250);
        return false;
      });
      assert.equal(r.error, undefined);
      assert.equal(r.body.length, big.length);
      assert.ok(paused > 1);
      // Nothing more is read while paused (each read is one chunk).
      assert.equal(whilePaused, 0);
    });

    it('reads the next answer on a connection whose last one ended while paused', async () => {
      // The whole answer comes in one read: onData pauses, and the answer completes before
      // anyone resumes (a client that went away never drains). The connection goes back to the
      // pool; the next request on it must be read.
      const up = await httpServer((req, res) => res.end(`body of ${req.url}`));
      closers.push(up.close);
      const own = ownAgent();
      const first = await send(own, up.origin, { path: '/1' }, () => false);
      assert.equal(first.body, 'body of /1');
      assert.equal(first.completed, true);
      const second = await Promise.race([
        send(own, up.origin, { path: '/2' }),
        new Promise<Outcome>((resolve) => {
          const noAnswer = {
            headers: [],
            body: '',
            completed: false,
            error: new Error('no answer'),
          };
          setTimeout(() => resolve(noAnswer), 2_000).unref();
        }),
      ]);
      assert.equal(second.error, undefined);
      assert.equal(second.body, 'body of /2');
      assert.equal(up.connections(), 1);
    });

    it('closes connections idle past keepAliveTimeoutMs, and opens a new one after', async () => {
      const short = ownAgent({ keepAliveTimeoutMs: 40 });
      const up = await httpServer((_req, res) => res.end('hi'));
      closers.push(up.close);
      assert.equal((await send(short, up.origin)).body, 'hi');
      assert.equal(short.connections, 1);
      await until(() => short.connections === 0, 2_000, 'the idle connection closed');
      assert.equal((await send(short, up.origin)).body, 'hi');
      assert.equal(up.connections(), 2);
    });

    it('closes a connection after maxRequestsPerConnection requests, and opens a new one', async () => {
      const capped = ownAgent({ maxRequestsPerConnection: 2 });
      const up = await httpServer((req, res) => res.end(req.url));
      closers.push(up.close);
      for (const path of ['/1', '/2', '/3', '/4', '/5'])
        assert.equal((await send(capped, up.origin, { path })).body, path);
      assert.equal(up.connections(), 3, 'five requests, two per connection');
    });

    it('queues requests beyond `connections` and serves them on the freed connection', async () => {
      const limited = ownAgent({ connections: 1 });
      const up = await httpServer((req, res) => setTimeout(() => res.end(req.url), 5));
      closers.push(up.close);
      const rs = await Promise.all(
        ['/1', '/2', '/3'].map((path) => send(limited, up.origin, { path })),
      );
      assert.deepEqual(
        rs.map((r) => r.body),
        ['/1', '/2', '/3'],
      );
      assert.equal(up.connections(), 1);
    });

    it('aborts a request on the handler’s abort, and closes its connection', async () => {
      const up = await httpServer(() => undefined); // never answers
      closers.push(up.close);
      const err = await new Promise<Error>((resolve) => {
        agent.dispatch(
          { origin: up.origin, path: '/', method: 'GET', headers: [] },
          {
            onConnect: (abort: (e?: Error) => void) =>
              setTimeout(() => abort(new Error('gone')), 20),
            onHeaders: () => true,
            onData: () => true,
            onComplete: () => undefined,
            onError: resolve,
          },
        );
      });
      assert.equal(err.message, 'gone');
    });

    it('ends every request in exactly one onComplete or onError, whatever bytes come back', async () => {
      let next: Buffer = Buffer.alloc(0);
      const { origin, server } = await rawServer(() => ({ bytes: next, close: true }));
      closers.push(() => void server.close());
      const prefix = fc.constantFrom(
        '',
        'HTTP/1.1 200 OK\r\n',
        'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n',
      );
      await fc.assert(
        fc.asyncProperty(prefix, fc.uint8Array({ maxLength: 200 }), async (p, bytes) => {
          next = Buffer.concat([Buffer.from(p, 'latin1'), Buffer.from(bytes)]);
          let ends = 0;
          const out = await new Promise<string>((resolve) => {
            agent.dispatch(
              { origin, path: '/', method: 'GET', headers: [] },
              {
                onConnect: () => undefined,
                onHeaders: () => true,
                onData: () => true,
                onComplete: () => {
                  ends++;
                  resolve('complete');
                },
                onError: () => {
                  ends++;
                  resolve('error');
                },
              },
            );
          });
          await new Promise((r) => setImmediate(r));
          assert.equal(ends, 1, `one end (${out})`);
        }),
        { numRuns: 150, seed: 7 },
      );
    });
  });
