/**
 * Http1Server (the gateway's downstream HTTP/1.1 server) on real loopback sockets: raw TCP
 * clients that write exact bytes and read exact bytes back (framings, pipelining, broken
 * requests, half-closes, upgrades), and undici where a real HTTP client is the natural check.
 * Plus fast-check properties: any bytes a client sends end in well-formed responses or a
 * clientError, never a crash or a hung connection, and the server serves new connections after.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { connect, type AddressInfo, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { afterEach, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { Client } from 'undici';
import type { Http1Request } from '../../src/proxy/http1/http1-request.js';
import type { Http1Response } from '../../src/proxy/http1/http1-response.js';
import {
  Http1Server,
  isHttp1ServerSupported,
  type Http1ServerOptions,
} from '../../src/proxy/http1/http1-server.js';
import { deferred } from '../helpers/deferred.js';
import { header, parseResponses, RawClient, type WireResponse } from '../helpers/wire.js';
import { until } from '../helpers/until.js';

/** Every test gets this long; the timeout tests wait for events, never for the clock. */
const T = { timeout: 10_000 };

type Handler = (req: Http1Request, res: Http1Response) => void;

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

async function readBody(req: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of req) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

function get(path: string, extra = '', version = '1.1'): string {
  return `GET ${path} HTTP/${version}\r\nHost: test\r\n${extra}\r\n`;
}

const HTTP_DATE =
  /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/;

interface TestServer {
  server: Http1Server;
  port: number;
  origin: string;
  /** Every clientError, with the code; the listener answers 400 and closes (as the gateway). */
  clientErrors: (Error & { code?: string })[];
  /** clientErrors reported for a socket the server had already ended (none should be). */
  lateClientErrors: number;
  nextClientError(): Promise<Error & { code?: string }>;
  /** The server side of every connection accepted, and a promise of its close. */
  accepted: { socket: Socket; closed: Promise<void> }[];
  requests: number;
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

async function startServer(
  handler: Handler,
  options: Partial<Http1ServerOptions> = {},
  { clientErrorListener = true } = {},
): Promise<TestServer> {
  const server = new Http1Server({
    maxHeaderSize: 16_384,
    headersTimeoutMs: 5_000,
    keepAliveTimeoutMs: 5_000,
    nativeReads,
    ...options,
  });
  const t: TestServer = {
    server,
    port: 0,
    origin: '',
    clientErrors: [],
    lateClientErrors: 0,
    nextClientError: () => once(server, 'clientError').then(([err]) => err as Error),
    accepted: [],
    requests: 0,
  };
  server.on('request', (req: Http1Request, res: Http1Response) => {
    t.requests++;
    handler(req, res);
  });
  if (clientErrorListener)
    server.on('clientError', (err: Error & { code?: string }, socket: Socket) => {
      t.clientErrors.push(err);
      if (!socket.writable) {
        t.lateClientErrors++;
        socket.destroy();
        return;
      }
      socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
    });
  server.on('connection', (socket: Socket) => {
    // Not events.once: it would reject on the 'error' a destroy(err) emits before 'close'.
    t.accepted.push({ socket, closed: new Promise((r) => socket.once('close', () => r())) });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.port = (server.address() as AddressInfo).port;
  t.origin = `http://127.0.0.1:${t.port}`;
  closers.push(async () => {
    for (const a of t.accepted) a.socket.destroy();
    await new Promise((r) => server.close(r));
  });
  return t;
}

/** Answers `text` with a content-length. */
function reply(res: Http1Response, text: string | Buffer, status = 200): void {
  const body = typeof text === 'string' ? Buffer.from(text) : text;
  res.writeHead(status, undefined, ['content-length', String(body.length)]);
  res.end(body);
}

/** Reads the body, then answers `<method> <url> <body>`. */
const echo: Handler = (req, res) => {
  readBody(req.body).then(
    (body) => reply(res, `${req.method} ${req.url} ${body.toString('latin1')}`),
    () => undefined, // aborted: nobody to answer
  );
};

async function client(t: TestServer, allowHalfOpen = false): Promise<RawClient> {
  const c = await RawClient.connect(t.port, allowHalfOpen);
  closers.push(async () => void c.socket.destroy());
  return c;
}

/** Each suite below runs twice: the parser reading the sockets natively, and through 'data'. */
let nativeReads = true;

for (const native of [true, false])
  describe(`Http1Server (${native ? 'bytes read natively' : "bytes through 'data' events"})`, () => {
    before(() => {
      nativeReads = native;
    });

    it('is supported on the Node versions Meshwork runs on (else the gateway uses node:http)', () => {
      assert.equal(isHttp1ServerSupported(), true);
    });

    describe('keep-alive', () => {
      it('answers two HTTP/1.1 requests on one connection and keeps it open', T, async () => {
        const t = await startServer((req, res) => reply(res, `hi ${req.url}`));
        const c = await client(t);
        await c.write(get('/a'));
        await c.read(1);
        await c.write(get('/b'));
        const [a, b] = await c.read(2);
        assert.equal(a?.body.toString(), 'hi /a');
        assert.equal(b?.body.toString(), 'hi /b');
        assert.equal(header(b as WireResponse, 'connection'), undefined, 'keep-alive is implied');
        assert.equal(c.closed, false);
        assert.equal(t.accepted.length, 1);
        assert.equal(t.accepted[0]?.socket.destroyed, false, 'the server kept it open');

        // A real client reuses it too.
        const u = new Client(t.origin, { pipelining: 1 });
        for (const path of ['/x', '/y', '/z']) {
          const r = await u.request({ path, method: 'GET' });
          assert.equal(r.statusCode, 200);
          assert.equal(await r.body.text(), `hi ${path}`);
        }
        await u.close();
        assert.equal(t.accepted.length, 2, 'one connection for undici’s three requests');
      });

      it(
        'closes an HTTP/1.0 connection after its response, without Connection: keep-alive',
        T,
        async () => {
          const t = await startServer((_req, res) => reply(res, 'old'));
          const c = await client(t);
          await c.write('GET / HTTP/1.0\r\n\r\n');
          const [r] = await c.readToClose();
          assert.equal(r?.body.toString(), 'old');
          assert.equal(header(r as WireResponse, 'connection'), 'close');
          await t.accepted[0]?.closed;
        },
      );

      it(
        'keeps an HTTP/1.0 connection with Connection: keep-alive open, and says so',
        T,
        async () => {
          const t = await startServer((req, res) => reply(res, req.url));
          const c = await client(t);
          await c.write('GET /1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
          await c.read(1);
          await c.write('GET /2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
          const rs = await c.read(2);
          assert.deepEqual(
            rs.map((r) => [r.body.toString(), header(r, 'connection')]),
            [
              ['/1', 'keep-alive'],
              ['/2', 'keep-alive'],
            ],
          );
          assert.equal(c.closed, false);
        },
      );
    });

    describe('pipelining', () => {
      it('answers three requests written at once in order, the first one late', T, async () => {
        const served: string[] = [];
        const t = await startServer((req, res) => {
          served.push(req.url);
          if (req.url === '/1') {
            void Promise.resolve()
              .then(tick)
              .then(tick)
              .then(() => reply(res, 'one (late)'));
          } else reply(res, `at once ${req.url}`);
        });
        const c = await client(t);
        await c.write(get('/1') + get('/2') + get('/3'));
        const rs = await c.read(3);
        assert.deepEqual(
          rs.map((r) => r.body.toString()),
          ['one (late)', 'at once /2', 'at once /3'],
        );
        assert.deepEqual(served, ['/1', '/2', '/3']);
        assert.equal(c.closed, false);
      });

      it(
        'reads the body of a pipelined request that arrives after the request was queued',
        T,
        async () => {
          // /1 is answered late, so the POST's head is queued; its body comes in a later write.
          const t = await startServer(echo);
          const c = await client(t);
          await c.write(
            `${get('/1')}POST /2 HTTP/1.1\r\nHost: test\r\nContent-Length: 6\r\n\r\nab`,
          );
          await c.read(1);
          await c.write('cdef');
          const rs = await c.read(2);
          assert.deepEqual(
            rs.map((r) => r.body.toString()),
            ['GET /1 ', 'POST /2 abcdef'],
          );
        },
      );

      it('serves nothing pipelined after a response that closes the connection', T, async () => {
        const t = await startServer((req, res) => reply(res, req.url)); // at once
        const c = await client(t);
        await c.write(get('/1', 'Connection: close\r\n') + get('/2') + 'GARBAGE\r\n\r\n');
        const rs = await c.readToClose();
        assert.deepEqual(
          rs.map((r) => [r.body.toString(), header(r, 'connection')]),
          [['/1', 'close']],
        );
        assert.equal(t.requests, 1);
        assert.equal(t.clientErrors.length, 0, 'what follows is not read as an error either');
      });
    });

    describe('request bodies', () => {
      it(
        'reads the next request after one answered without reading its whole, already sent body',
        T,
        async () => {
          // 20 KiB in one read, more than the body stream buffers: reading pauses, and the body
          // completes in that same read. The handler answers later without reading it;
          // keep-alive must read on to the next request.
          const t = await startServer((req, res) => {
            setTimeout(() => reply(res, `answered ${req.url}`), 20);
          });
          const c = await client(t);
          const body = 'x'.repeat(20 * 1024);
          await c.write(
            `POST /1 HTTP/1.1\r\nHost: test\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
          );
          const [first] = await c.read(1);
          assert.equal(first?.body.toString(), 'answered /1');
          await c.write(get('/2'));
          const rs = await c.read(2);
          assert.equal(rs[1]?.body.toString(), 'answered /2');
        },
      );

      it(
        'drops the rest of a body its response ended before, serves on, and fails a late reader',
        T,
        async () => {
          let early: Http1Request | undefined;
          const t = await startServer((req, res) => {
            if (req.url !== '/upload') return reply(res, `answered ${req.url}`);
            early = req;
            reply(res, 'early'); // before the body's second half was sent
          });
          const c = await client(t);
          await c.write(
            'POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: 20\r\n\r\n0123456789',
          );
          const [first] = await c.read(1);
          assert.equal(first?.body.toString(), 'early');
          assert.ok(early !== undefined);
          assert.equal(early.bodyState, 'dropped');
          // The rest of the body is read through and thrown away, not taken for a request.
          await c.write(`abcdefghij${get('/2')}`);
          const rs = await c.read(2);
          assert.equal(rs[1]?.body.toString(), 'answered /2');
          assert.equal(early.bodyState, 'dropped', 'its end read, the body is not whole');
          const err = await readBody(early.body).then(
            () => undefined,
            (e: unknown) => e as { code?: string },
          );
          assert.equal(err?.code, 'ERR_STREAM_PREMATURE_CLOSE', 'a late reader hears it was cut');
        },
      );

      it(
        'delivers a Content-Length body and a chunked body (with extensions) whole',
        T,
        async () => {
          const t = await startServer(echo);
          const c = await client(t);
          await c.write('POST /cl HTTP/1.1\r\nHost: test\r\nContent-Length: 11\r\n\r\nhello world');
          await c.read(1);
          await c.write(
            'POST /chunked HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n' +
              '5;name=value\r\nhello\r\n1;flag\r\n \r\n',
          );
          await c.write('A\r\nchunked-wo\r\n3\r\nrld\r\n0\r\n\r\n');
          const rs = await c.read(2);
          assert.deepEqual(
            rs.map((r) => r.body.toString()),
            ['POST /cl hello world', 'POST /chunked hello chunked-world'],
          );
        },
      );

      it(
        'streams a 5 MB body with backpressure to a slow reader, intact',
        { timeout: 20_000 },
        async () => {
          const size = 5 * 1024 * 1024;
          const body = Buffer.allocUnsafe(size);
          let x = 7; // a seeded xorshift fill, so a lost or moved byte changes the hash
          for (let i = 0; i < size; i += 4) {
            x ^= x << 13;
            x ^= x >>> 17;
            x ^= x << 5;
            body.writeInt32LE(x | 0, i);
          }
          const expected = createHash('sha256').update(body).digest('hex');
          let maxBuffered = 0;
          let chunks = 0;
          const t = await startServer((req, res) => {
            void (async () => {
              const hash = createHash('sha256');
              for await (const chunk of req.body) {
                hash.update(chunk as Buffer);
                chunks++;
                maxBuffered = Math.max(maxBuffered, req.body.readableLength);
                await tick(); // slower than loopback
                await tick();
              }
              reply(res, hash.digest('hex'));
            })();
          });
          const u = new Client(t.origin);
          const r = await u.request({ path: '/upload', method: 'PUT', body });
          assert.equal(r.statusCode, 200);
          assert.equal(await r.body.text(), expected);
          await u.close();
          assert.ok(chunks > 10, `streamed in parts (${chunks})`);
          // Unpaused, most of the 5 MB would wait in the request's buffer.
          assert.ok(maxBuffered < 512 * 1024, `at most ${maxBuffered} bytes buffered`);
        },
      );
    });

    describe('response framing', () => {
      it('writes a Content-Length response exactly, small and large', T, async () => {
        const large = Buffer.alloc(40_000, 'L');
        const t = await startServer((req, res) => {
          if (req.url === '/small') {
            res.writeHead(201, undefined, ['X-A', '1', 'Content-Length', '5']);
            res.end('hello');
          } else {
            res.writeHead(200, 'Fine', ['content-length', String(large.length)]);
            res.write(large.subarray(0, 20_000));
            res.end(large.subarray(20_000));
          }
        });
        const c = await client(t);
        await c.write(get('/small'));
        await c.read(1);
        assert.match(
          c.text,
          /^HTTP\/1\.1 201 Created\r\nX-A: 1\r\ncontent-length: 5\r\ndate: [^\r\n]+\r\n\r\nhello$/,
        );
        await c.write(get('/large'));
        const [, r] = await c.read(2);
        assert.equal(r?.reason, 'Fine');
        assert.equal(r?.framing, 'length');
        assert.ok(r?.body.equals(large));
        const { used } = parseResponses(c.data, false);
        assert.equal(used, c.data.length, 'not a byte more');
      });

      it(
        'chunks a response of unknown length to an HTTP/1.1 client, ending 0\\r\\n\\r\\n',
        T,
        async () => {
          const big = Buffer.alloc(20_000, 'b');
          const t = await startServer((req, res) => {
            res.writeHead(200, undefined, ['content-type', 'text/plain']);
            res.write('abc');
            res.write('');
            res.write(Buffer.from('de'));
            res.write('ü€'); // 5 bytes in UTF-8: the chunk size counts bytes
            if (req.url === '/big') res.write(big);
            res.end('!');
          });
          const c = await client(t);
          await c.write(get('/'));
          await c.read(1);
          assert.match(
            c.data.toString('utf8'),
            /^HTTP\/1\.1 200 OK\r\ncontent-type: text\/plain\r\ntransfer-encoding: chunked\r\ndate: [^\r\n]+\r\n\r\n3\r\nabc\r\n2\r\nde\r\n5\r\nü€\r\n1\r\n!\r\n0\r\n\r\n$/,
          );
          const u = new Client(t.origin);
          const r = await u.request({ path: '/big', method: 'GET' });
          assert.equal(r.headers['transfer-encoding'], 'chunked');
          assert.equal(await r.body.text(), `abcdeü€${big.toString()}!`);
          await u.close();
        },
      );

      it(
        'writes a chunked answer ended in the I/O turn of its last chunk once, and one ended later twice',
        T,
        async () => {
          const writes: number[] = [];
          const t = await startServer((req, res) => {
            const socket = req.socket;
            const write = socket.write.bind(socket) as (...a: unknown[]) => boolean;
            let n = 0;
            socket.write = ((...a: unknown[]) => {
              n++;
              return write(...a);
            }) as typeof socket.write;
            res.writeHead(200, undefined, []);
            res.write('abc');
            const done = (): void => {
              res.end();
              writes.push(n);
              socket.write = write as typeof socket.write;
            };
            if (req.url === '/later') setImmediate(done);
            else done();
          });
          const c = await client(t);
          for (const path of ['/now', '/later']) {
            await c.write(get(path));
            const [r] = await c.read(1);
            assert.equal(r?.framing, 'chunked');
            assert.equal(r?.body.toString(), 'abc');
            c.data = Buffer.alloc(0);
          }
          assert.deepEqual(writes, [1, 2], 'head, chunk and last-chunk in one write; then two');
        },
      );

      it(
        'sends a chunk of an answer still being written without waiting for its end',
        T,
        async () => {
          let finish: () => void = () => undefined;
          const ended = new Promise<void>((resolve) => (finish = resolve));
          const t = await startServer((_req, res) => {
            res.writeHead(200, undefined, []);
            res.write('first');
            void ended.then(() => res.end('last'));
          });
          const c = await client(t);
          await c.write(get('/'));
          await c.until(() => c.text.includes('5\r\nfirst\r\n'), 'the first chunk');
          assert.ok(!c.text.includes('0\r\n\r\n'), 'not ended yet');
          finish();
          const [r] = await c.read(1);
          assert.equal(r?.body.toString(), 'firstlast');
        },
      );

      it(
        'sends a response of unknown length to an HTTP/1.0 client until the close',
        T,
        async () => {
          const t = await startServer((_req, res) => {
            res.writeHead(200, undefined, []);
            res.write('to the ');
            res.end('end');
          });
          const c = await client(t);
          await c.write('GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
          const [r] = await c.readToClose();
          assert.equal(r?.framing, 'close');
          assert.equal(r?.body.toString(), 'to the end');
          assert.equal(header(r as WireResponse, 'connection'), 'close');
          assert.equal(header(r as WireResponse, 'transfer-encoding'), undefined);
        },
      );

      it('writes no body for HEAD, 204 and 304, even when the handler writes one', T, async () => {
        const t = await startServer((req, res) => {
          const status = req.url === '/204' ? 204 : req.url === '/304' ? 304 : 200;
          const headers = req.url === '/sized' ? ['content-length', '4'] : [];
          res.writeHead(status, undefined, headers);
          res.write('nope');
          res.end('nope');
        });
        const c = await client(t);
        const methods = ['HEAD', 'HEAD', 'GET', 'GET', 'GET'];
        await c.write(
          'HEAD /sized HTTP/1.1\r\nHost: test\r\n\r\nHEAD /chunky HTTP/1.1\r\nHost: test\r\n\r\n' +
            get('/204') +
            get('/304'),
        );
        await c.read(4, methods);
        await c.write('GET /sized HTTP/1.1\r\nHost: test\r\n\r\n');
        const rs = await c.read(5, methods);
        assert.deepEqual(
          rs.map((r) => r.status),
          [200, 200, 204, 304, 200],
        );
        assert.equal(header(rs[0] as WireResponse, 'content-length'), '4', 'HEAD keeps its length');
        assert.equal(header(rs[1] as WireResponse, 'transfer-encoding'), undefined);
        assert.equal(header(rs[2] as WireResponse, 'transfer-encoding'), undefined);
        assert.equal(rs[4]?.body.toString(), 'nope', 'the GET after them frames right');
        assert.equal(c.text.split('nope').length - 1, 1, 'only the GET carries body bytes');
        assert.equal(parseResponses(c.data, false, methods).used, c.data.length);
      });

      it('adds a date header when missing, and keeps a given one single', T, async () => {
        const given = 'Wed, 01 Jan 2031 00:00:00 GMT';
        const t = await startServer((req, res) => {
          res.writeHead(200, undefined, [
            'content-length',
            '0',
            ...(req.url === '/dated' ? ['Date', given] : []),
          ]);
          res.end();
        });
        const c = await client(t);
        await c.write(get('/') + get('/dated'));
        const [plain, dated] = await c.read(2);
        assert.match(header(plain as WireResponse, 'date') ?? '', HTTP_DATE);
        assert.equal(header(dated as WireResponse, 'date'), given); // header() asserts one
      });

      it(
        'throws ERR_INVALID_CHAR for a header value with CR or LF, and writes nothing',
        T,
        async () => {
          const codes: unknown[] = [];
          const t = await startServer((_req, res) => {
            for (const bad of ['a\r\nx-injected: 1', 'a\nb', 'a\rb']) {
              assert.throws(
                () => res.writeHead(200, undefined, ['content-length', '0', 'x-bad', bad]),
                (err: Error & { code?: string }) => (codes.push(err.code), true),
              );
            }
            assert.throws(
              () => res.writeHead(200, undefined, ['date', 'x\r\n\r\nHTTP/1.1 200 OK']),
              (err: Error & { code?: string }) => (codes.push(err.code), true),
            );
            assert.equal(res.headersSent, false);
            reply(res, 'after', 500);
          });
          const c = await client(t);
          await c.write(get('/'));
          const [r] = await c.read(1);
          await tick();
          assert.deepEqual(codes, [
            'ERR_INVALID_CHAR',
            'ERR_INVALID_CHAR',
            'ERR_INVALID_CHAR',
            'ERR_INVALID_CHAR',
          ]);
          assert.equal(r?.status, 500);
          assert.equal(r?.body.toString(), 'after');
          assert.doesNotMatch(c.text, /x-bad|x-injected/i);
          assert.equal(
            parseResponses(c.data, false).used,
            c.data.length,
            'one response, nothing else',
          );
        },
      );

      it('throws ERR_INVALID_HTTP_TOKEN for a header name that is not a token', T, async () => {
        const codes: unknown[] = [];
        const t = await startServer((_req, res) => {
          for (const bad of ['x-bad\r\nx-injected', 'x bad', 'x:bad', '']) {
            assert.throws(
              () => res.writeHead(200, undefined, ['connection', 'close', bad, 'v']),
              (err: Error & { code?: string }) => (codes.push(err.code), true),
            );
          }
          // A refused head changes nothing: not even the connection: close before the bad name.
          assert.equal(res.shouldKeepAlive, true);
          reply(res, 'after');
        });
        const c = await client(t);
        await c.write(get('/'));
        const [r] = await c.read(1);
        assert.deepEqual(codes, Array(4).fill('ERR_INVALID_HTTP_TOKEN'));
        assert.equal(r?.body.toString(), 'after');
        assert.equal(header(r as WireResponse, 'connection'), undefined);
        assert.doesNotMatch(c.text, /x-injected|x bad/i);
      });

      it('destroys the connection when the body outgrows its content-length', T, async () => {
        const t = await startServer((_req, res) => {
          res.writeHead(200, undefined, ['content-length', '4']);
          res.write('ab');
          res.write('cdef');
          res.end();
        });
        const c = await client(t);
        await c.write(get('/') + get('/next'));
        await c.closedPromise;
        assert.doesNotMatch(c.text, /cd|ef/, 'the extra bytes are not sent');
        assert.equal(parseResponses(c.data, true).finals, 0, 'no complete response');
        assert.equal(t.requests, 1, 'the pipelined request is not served');
      });
    });

    describe('Expect', () => {
      it(
        'answers Expect: 100-continue with 100 Continue before the final response',
        T,
        async () => {
          const t = await startServer(echo);
          const c = await client(t);
          await c.write(
            'PUT /up HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n',
          );
          await c.until(() => c.text === 'HTTP/1.1 100 Continue\r\n\r\n', '100 Continue');
          await c.write('data');
          const [interim, final] = await c.read(1);
          assert.equal(interim?.status, 100);
          assert.equal(final?.status, 200);
          assert.equal(final?.body.toString(), 'PUT /up data');
        },
      );

      it('answers another Expect with 417, without calling the handler', T, async () => {
        const t = await startServer(echo);
        const c = await client(t);
        await c.write(
          'PUT /up HTTP/1.1\r\nHost: test\r\nExpect: something-else\r\nContent-Length: 4\r\n\r\n',
        );
        const [r] = await c.readToClose();
        assert.equal(r?.status, 417);
        assert.equal(t.requests, 0);
      });
    });

    describe('client errors', () => {
      it('refuses an HTTP/1.1 request without Host with ERR_MISSING_HOST', T, async () => {
        const t = await startServer((_req, res) => reply(res, 'no'));
        const c = await client(t);
        const err = t.nextClientError();
        await c.write('GET / HTTP/1.1\r\n\r\n');
        assert.equal((await err).code, 'ERR_MISSING_HOST');
        const [r] = await c.readToClose();
        assert.equal(r?.status, 400, 'the listener’s answer');
        assert.equal(t.requests, 0);

        const old = await client(t);
        await old.write('GET / HTTP/1.0\r\n\r\n');
        assert.equal((await old.readToClose())[0]?.status, 200, 'HTTP/1.0 needs no Host');
      });

      it('reports malformed heads and chunk sizes with HPE_ codes, and serves on', T, async () => {
        const t = await startServer(echo);
        const cases = [
          'GARBAGE\r\n\r\n',
          'GET / HTTP/9.9\r\nHost: test\r\n\r\n',
          'GET / HTTP/1.1\r\nHost: test\r\nBad Header: x\r\n\r\n',
          'POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n',
          'POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
        ];
        for (const bytes of cases) {
          const c = await client(t);
          const err = t.nextClientError();
          await c.write(bytes);
          assert.match(String((await err).code), /^HPE_/, JSON.stringify(bytes));
          await c.closedPromise;
        }
        const c = await client(t);
        await c.write(get('/fine'));
        assert.equal((await c.read(1))[0]?.body.toString(), 'GET /fine ');
      });

      it(
        'refuses a head over maxHeaderSize with HPE_HEADER_OVERFLOW, and serves on',
        T,
        async () => {
          const t = await startServer((_req, res) => reply(res, 'ok'), { maxHeaderSize: 1_024 });
          const c = await client(t);
          const err = t.nextClientError();
          await c.write(get('/', `X-Big: ${'x'.repeat(2_000)}\r\n`));
          assert.equal((await err).code, 'HPE_HEADER_OVERFLOW');
          await c.closedPromise;

          const fits = await client(t);
          await fits.write(get('/', `X-Big: ${'x'.repeat(500)}\r\n`));
          assert.equal((await fits.read(1))[0]?.body.toString(), 'ok');
        },
      );

      it('answers a pipelined malformed request after the responses before it', T, async () => {
        const t = await startServer(echo); // answers after a tick (it reads the body first)
        const chunked = 'POST /bad HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n';
        for (const bad of ['GARBAGE\r\n\r\n', `${chunked}zz\r\n`]) {
          const c = await client(t);
          const err = t.nextClientError();
          await c.write(`${get('/1')}${get('/2')}${bad}`);
          assert.match(String((await err).code), /^HPE_/);
          const rs = await c.readToClose();
          assert.deepEqual(
            rs.map((r) => `${r.status} ${r.body.toString()}`),
            ['200 GET /1 ', '200 GET /2 ', '400 '],
            'those before are answered, then the clientError listener',
          );
        }
        assert.equal(t.requests, 4, 'the malformed POST is not served');
      });

      it(
        'refuses a malformed body of the request being served, aborting its response',
        T,
        async () => {
          const events: string[] = [];
          const t = await startServer((req, res) => {
            res.on('close', () => events.push(`close ${req.url}`));
            req.body.on('error', (e: Error & { code?: string }) => events.push(`error ${e.code}`));
            req.body.resume();
            if (req.url === '/started') {
              res.writeHead(200, undefined, ['content-length', '10']);
              res.write('12345');
            }
          });
          const head = (path: string): string =>
            `POST ${path} HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n`;

          const c = await client(t);
          await c.write(head('/waiting'));
          const err = t.nextClientError();
          await c.write('zz\r\n');
          assert.equal((await err).code, 'HPE_INVALID_CHUNK_SIZE');
          assert.deepEqual(
            (await c.readToClose()).map((r) => r.status),
            [400],
          );
          assert.deepEqual(events.sort(), ['close /waiting', 'error ECONNRESET']);

          // Its head already went out: no room for the 400, the connection is cut.
          events.length = 0;
          const started = await client(t);
          await started.write(head('/started'));
          await started.until(() => started.text.endsWith('12345'), 'the first part');
          await started.write('zz\r\n');
          await started.closedPromise;
          assert.ok(started.text.endsWith('\r\n\r\n12345'), 'nothing after the part');
          assert.deepEqual(events.sort(), ['close /started', 'error ECONNRESET']);
          assert.equal(t.clientErrors.length, 1);
        },
      );

      it('reports one clientError for a connection, whatever bytes follow', T, async () => {
        const t = await startServer(echo);
        const c = await client(t);
        await c.write('GET / HTTP/1.1\r\n\r\nGARBAGE\r\n\r\n' + get('/after'));
        const rs = await c.readToClose();
        assert.deepEqual(
          t.clientErrors.map((e) => e.code),
          ['ERR_MISSING_HOST'],
        );
        assert.equal(t.lateClientErrors, 0);
        assert.deepEqual(
          rs.map((r) => r.status),
          [400],
        );
        assert.equal(t.requests, 0);
      });

      it(
        'destroys the socket of a client error when nobody listens for clientError',
        T,
        async () => {
          const t = await startServer(echo, {}, { clientErrorListener: false });
          const c = await client(t);
          await c.write('GARBAGE\r\n\r\n');
          await c.closedPromise;
          assert.equal(c.data.length, 0);
        },
      );
    });

    describe('timeouts and closing', () => {
      it('reports ERR_HEADERS_TIMEOUT for a head that never completes', T, async () => {
        const t = await startServer(echo, { headersTimeoutMs: 200, keepAliveTimeoutMs: 5_000 });
        const c = await client(t);
        const started = Date.now();
        const err = t.nextClientError();
        await c.write('GET / HTTP/1.1\r\nHost: test\r\n');
        assert.equal((await err).code, 'ERR_HEADERS_TIMEOUT');
        const elapsed = Date.now() - started;
        assert.ok(elapsed >= 100 && elapsed < 5_000, `after ${elapsed} ms`);
        await c.closedPromise;
      });

      it('closes an idle keep-alive connection after keepAliveTimeoutMs', T, async () => {
        const t = await startServer(echo, { headersTimeoutMs: 5_000, keepAliveTimeoutMs: 200 });
        const c = await client(t);
        await c.write(get('/'));
        await c.read(1);
        const started = Date.now();
        await c.closedPromise;
        const elapsed = Date.now() - started;
        assert.ok(elapsed >= 100 && elapsed < 5_000, `after ${elapsed} ms`);
        assert.equal(t.clientErrors.length, 0);
      });

      it(
        'closeIdleConnections() closes idle connections, not one with a request in progress',
        T,
        async () => {
          const release = deferred();
          const t = await startServer((req, res) => {
            if (req.url === '/slow') void release.promise.then(() => reply(res, 'slow'));
            else reply(res, 'quick');
          });
          const idle = await client(t);
          await idle.write(get('/quick'));
          await idle.read(1);
          const busy = await client(t);
          await busy.write(get('/slow'));
          await new Promise<void>((resolve) => {
            const check = (): void => (t.requests === 2 ? resolve() : void setImmediate(check));
            check();
          });
          t.server.closeIdleConnections();
          await idle.closedPromise;
          assert.equal(busy.closed, false);
          release.resolve();
          assert.equal((await busy.read(1))[0]?.body.toString(), 'slow');
          assert.equal(busy.closed, false);
        },
      );

      it(
        'closeIdleConnections() leaves an idle connection open until its last response is written out',
        T,
        async () => {
          // Far more than the socket buffers take: most of it waits in the server's socket while
          // the client does not read, after the response ended (the connection is idle). A TLS
          // socket is the same for a while after every response: its write completes later.
          const size = 16 * 1024 * 1024;
          const t = await startServer((_req, res) => {
            res.writeHead(200, undefined, ['content-length', String(size)]);
            res.end(Buffer.alloc(size, 0x61));
          });
          const socket = connect({ host: '127.0.0.1', port: t.port });
          await once(socket, 'connect');
          const chunks: Buffer[] = [];
          socket.on('data', (d: Buffer) => chunks.push(d));
          const closed = once(socket, 'close');
          socket.pause();
          socket.write(get('/large'));
          await until(
            () => t.requests === 1 && (t.accepted[0]?.socket.writableLength ?? 0) > 0,
            5_000,
            'the response ended, its bytes waiting',
          );
          t.server.closeIdleConnections();
          await tick();
          assert.equal(t.accepted[0]?.socket.destroyed, false, 'cut with its response unsent');
          socket.resume();
          // Written out: now it is idle enough to close.
          await until(() => t.accepted[0]?.socket.writableLength === 0, 5_000, 'written out');
          t.server.closeIdleConnections();
          await closed;
          const all = Buffer.concat(chunks);
          const headEnd = all.indexOf('\r\n\r\n');
          assert.match(all.subarray(0, headEnd).toString('latin1'), /^HTTP\/1\.1 200 /);
          assert.equal(all.length - headEnd - 4, size);
        },
      );

      it('close() closes idle keep-alive connections at once, as node:http does', T, async () => {
        // Longer than the test's timeout: only close() can end this connection in time.
        const t = await startServer((_req, res) => reply(res, 'hi'), {
          keepAliveTimeoutMs: 60_000,
        });
        const c = await client(t);
        await c.write(get('/'));
        await c.read(1);
        const closed = new Promise((r) => t.server.close(r));
        await c.closedPromise;
        await closed;
      });

      it('after close(), the response in progress carries connection: close', T, async () => {
        const release = deferred();
        const t = await startServer(
          (_req, res) => void release.promise.then(() => reply(res, 'bye')),
        );
        const c = await client(t);
        await c.write(get('/'));
        await new Promise<void>((resolve) => {
          const check = (): void => (t.requests === 1 ? resolve() : void setImmediate(check));
          check();
        });
        const closed = new Promise((r) => t.server.close(r));
        release.resolve();
        const [r] = await c.readToClose();
        assert.equal(r?.body.toString(), 'bye');
        assert.equal(header(r as WireResponse, 'connection'), 'close');
        await closed; // the server closes once its last connection did
      });
    });

    describe('aborts', () => {
      it('calls the response’s close listener when the client goes mid-response', T, async () => {
        const aborted = deferred();
        const t = await startServer((_req, res) => {
          res.writeHead(200, undefined, ['content-length', '100']);
          res.write('part');
          res.on('close', () => aborted.resolve());
        });
        const c = await client(t);
        await c.write(get('/'));
        await c.until(() => c.text.endsWith('part'), 'the first part');
        c.socket.destroy();
        await aborted.promise;
      });

      it('destroys the request body when the client goes mid-upload', T, async () => {
        const gone = deferred<Error | undefined>();
        let received = 0;
        const t = await startServer((req, res) => {
          req.body.on('data', (d: Buffer) => (received += d.length));
          req.body.on('error', (err) => gone.resolve(err));
          req.body.on('close', () => gone.resolve(undefined));
          res.on('close', () => undefined);
        });
        const c = await client(t);
        await c.write('POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 1000\r\n\r\n');
        await c.write('x'.repeat(100));
        await new Promise<void>((resolve) => {
          const check = (): void => (received === 100 ? resolve() : void setImmediate(check));
          check();
        });
        c.socket.destroy();
        const err = (await gone.promise) as (Error & { code?: string }) | undefined;
        assert.equal(err?.code, 'ECONNRESET');
      });

      it(
        'aborts a complete request when the client half-closes (as node:http by default)',
        T,
        async () => {
          const aborted = deferred();
          const t = await startServer((_req, res) => res.on('close', () => aborted.resolve()));
          const c = await client(t);
          await c.write(get('/'));
          c.socket.end();
          await aborted.promise;
          await c.closedPromise;
          await t.accepted[0]?.closed;
        },
      );
    });

    describe('letting go', () => {
      const big = `${'x'.repeat(200_000)}`;
      it('closes a connection it ended while the body’s reader was behind', T, async () => {
        // 413 at once, the body never read: the unread rest fills the request's buffer.
        const t = await startServer((_req, res) => {
          res.writeHead(413, undefined, ['content-length', '0', 'connection', 'close']);
          res.end();
        });
        const c = await client(t);
        await c.write(`PUT / HTTP/1.1\r\nHost: test\r\nContent-Length: 400000\r\n\r\n${big}`);
        const [r] = await c.read(1);
        assert.equal(r?.status, 413);
        c.socket.end(); // the client is done too
        await c.closedPromise;
        await t.accepted[0]?.closed; // the server's side as well
      });

      it('closes a refused connection whose unread body filled its buffers', T, async () => {
        const t = await startServer(echo);
        const c = await client(t);
        await c.write(`PUT / HTTP/1.1\r\nContent-Length: 400000\r\n\r\n${big}`); // no Host
        const [r] = await c.read(1);
        assert.equal(r?.status, 400);
        c.socket.end();
        await c.closedPromise;
        await t.accepted[0]?.closed;
      });

      it(
        'closes a connection whose client never half-closes after connection: close',
        T,
        async () => {
          const t = await startServer((_req, res) => reply(res, 'bye'), {
            keepAliveTimeoutMs: 200,
          });
          const c = await client(t, true); // keeps its side open after the server's FIN
          await c.write(get('/', 'Connection: close\r\n'));
          await c.read(1);
          await once(c.socket, 'end');
          await c.write('more bytes, read and dropped');
          await t.accepted[0]?.closed; // after about keepAliveTimeoutMs
        },
      );
    });

    describe('upgrade', () => {
      it('hands the socket and the bytes after the head to the upgrade listener', T, async () => {
        const t = await startServer((_req, res) => reply(res, 'not an upgrade'));
        const upgraded = deferred<{ url: string; head: string; upgrade: string | undefined }>();
        t.server.on('upgrade', (req: Http1Request, socket: Socket, head: Buffer) => {
          upgraded.resolve({ url: req.url, head: head.toString(), upgrade: req.headers.upgrade });
          socket.write(
            'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
          );
          socket.write(`head:${head.toString()}|`);
          socket.on('data', (d: Buffer) => socket.write(`echo:${d.toString()}|`));
        });
        const c = await client(t);
        await c.write(
          'GET /ws HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n' +
            'first-bytes',
        );
        assert.deepEqual(await upgraded.promise, {
          url: '/ws',
          head: 'first-bytes',
          upgrade: 'websocket',
        });
        await c.until(() => c.text.endsWith('head:first-bytes|'), 'the head echoed');
        // Not HTTP any more: the server's parser must not see this.
        await c.write('GET / HTTP/1.1\r\n\r\n');
        await c.until(() => c.text.endsWith('echo:GET / HTTP/1.1\r\n\r\n|'), 'raw echo');
        assert.ok(c.text.startsWith('HTTP/1.1 101 Switching Protocols\r\n'));
        assert.equal(t.requests, 0);
        assert.equal(t.clientErrors.length, 0);
      });

      it('destroys an Upgrade request when nobody listens for upgrades', T, async () => {
        const t = await startServer((_req, res) => reply(res, 'no'));
        const c = await client(t);
        await c.write(
          'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
        );
        await c.closedPromise;
        assert.equal(c.data.length, 0);
        assert.equal(t.requests, 0);
      });

      it('destroys a CONNECT request', T, async () => {
        const t = await startServer((_req, res) => reply(res, 'no'));
        let upgrades = 0;
        t.server.on('upgrade', () => upgrades++);
        const c = await client(t);
        await c.write('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
        await c.closedPromise;
        assert.equal(c.data.length, 0);
        assert.equal(upgrades, 0);
        assert.equal(t.requests, 0);
      });
    });

    describe('properties', () => {
      /** `input` cut at the given offsets (taken modulo its length), in order, no empty piece. */
      function cutAt(input: Buffer, at: readonly number[]): Buffer[] {
        const points = [...new Set(at.map((n) => n % (input.length + 1)))].sort((a, b) => a - b);
        return [0, ...points]
          .map((from, i) => input.subarray(from, [...points, input.length][i]))
          .filter((p) => p.length > 0);
      }

      /** Writes `pieces` on a new connection, half-closes, and waits for both ends to close. */
      async function run(
        t: TestServer,
        pieces: readonly Buffer[],
        end: boolean,
      ): Promise<{ c: RawClient; errors: number }> {
        const before = t.clientErrors.length;
        const c = await RawClient.connect(t.port);
        const accepted = await new Promise<TestServer['accepted'][number]>((resolve) => {
          const check = (): void => {
            const a = t.accepted.at(-1);
            if (a !== undefined && a.socket.remotePort === c.socket.localPort) resolve(a);
            else setImmediate(check);
          };
          check();
        });
        for (const p of pieces) {
          if (c.closed) break; // refused early: the rest has nowhere to go
          await c.write(p).catch(() => undefined); // EPIPE if refused meanwhile
          await tick(); // most often a packet of its own
        }
        if (end) c.socket.end();
        await c.closedPromise;
        await accepted.closed; // and the server let go of it
        return { c, errors: t.clientErrors.length - before };
      }

      async function stillServes(t: TestServer): Promise<void> {
        const c = await RawClient.connect(t.port);
        await c.write(`GET /health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n`);
        const [r] = await c.readToClose();
        assert.equal(r?.body.toString(), 'GET /health ');
      }

      it(
        'ends any bytes in well-formed responses or a clientError, and serves on',
        { timeout: 25_000 },
        async () => {
          const t = await startServer(echo, { maxHeaderSize: 256 });
          const piece = fc.constantFrom(
            'GET / HTTP/1.1\r\n',
            'POST /p HTTP/1.1\r\n',
            'HEAD / HTTP/1.1\r\n',
            'GET / HTTP/1.0\r\n',
            'Host: test\r\n',
            'Content-Length: 3\r\n',
            'Content-Length: 70000\r\n',
            'Transfer-Encoding: chunked\r\n',
            'Connection: close\r\n',
            'Expect: 100-continue\r\n',
            'Expect: nope\r\n',
            '\r\n',
            'abc',
            '3\r\nabc\r\n',
            '0\r\n\r\n',
            ': \r\n',
            ' ',
            '\n',
            '\0',
          );
          const bytes = fc.oneof(
            fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
            fc.array(piece, { maxLength: 16 }).map((ps) => Buffer.from(ps.join(''), 'latin1')),
            fc
              .tuple(fc.array(piece, { maxLength: 8 }), fc.uint8Array({ maxLength: 40 }))
              .map(([ps, tail]) => Buffer.concat([Buffer.from(ps.join(''), 'latin1'), tail])),
          );
          const cuts = fc.array(fc.nat(), { maxLength: 4 });
          await fc.assert(
            fc.asyncProperty(bytes, cuts, async (input, at) => {
              const { c, errors } = await run(t, cutAt(input, at), true);
              const { responses, used } = parseResponses(c.data, true);
              assert.equal(used, c.data.length, `whole responses: ${JSON.stringify(c.text)}`);
              assert.equal(t.lateClientErrors, 0, 'no clientError for a connection already ended');
              assert.ok(errors <= 1, `at most one clientError, not ${errors}`);
              const finals = responses.filter((r) => r.status >= 200);
              assert.ok(
                finals.length > 0 || errors > 0 || !/[^\r\n]/.test(input.toString('latin1')),
                `answered or refused: ${JSON.stringify(input.toString('latin1'))}`,
              );
            }),
            { numRuns: 120, seed: 7 },
          );
          await stillServes(t);
        },
      );

      it(
        'answers valid requests cut in arbitrary pieces, in order',
        { timeout: 25_000 },
        async () => {
          const t = await startServer(echo);
          const request = fc.record({
            kind: fc.constantFrom('GET', 'HEAD', 'POST', 'CHUNKED', 'HTTP10'),
            path: fc.stringMatching(/^\/[a-z0-9]{0,6}$/),
            body: fc.string({
              unit: fc.constantFrom('a', 'b', 'z', ' ', '\r', '\n'),
              maxLength: 40,
            }),
          });
          await fc.assert(
            fc.asyncProperty(
              fc.array(request, { minLength: 1, maxLength: 4 }),
              fc.array(fc.nat(), { maxLength: 6 }),
              async (reqs, at) => {
                const last = reqs.length - 1;
                const wire = reqs
                  .map(({ kind, path, body }, i) => {
                    const close = i === last ? 'Connection: close\r\n' : '';
                    if (kind === 'HTTP10')
                      return i === last
                        ? `GET ${path} HTTP/1.0\r\n\r\n`
                        : `GET ${path} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n`;
                    if (kind === 'GET' || kind === 'HEAD')
                      return `${kind} ${path} HTTP/1.1\r\nHost: test\r\n${close}\r\n`;
                    if (kind === 'POST')
                      return `POST ${path} HTTP/1.1\r\nHost: test\r\n${close}Content-Length: ${body.length}\r\n\r\n${body}`;
                    const half = body.length >> 1;
                    const chunks = [body.slice(0, half), body.slice(half)]
                      .filter((s) => s.length > 0)
                      .map((s) => `${s.length.toString(16)};x=y\r\n${s}\r\n`)
                      .join('');
                    return `POST ${path} HTTP/1.1\r\nHost: test\r\n${close}Transfer-Encoding: chunked\r\n\r\n${chunks}0\r\n\r\n`;
                  })
                  .join('');
                const input = Buffer.from(wire, 'latin1');
                const { c, errors } = await run(t, cutAt(input, at), false);
                const methods = reqs.map((r) => (r.kind === 'HEAD' ? 'HEAD' : 'GET'));
                const { responses, used } = parseResponses(c.data, true, methods);
                assert.equal(used, c.data.length, `whole responses: ${JSON.stringify(c.text)}`);
                assert.equal(errors, 0);
                assert.deepEqual(
                  responses.map((r) => r.body.toString('latin1')),
                  reqs.map(({ kind, path, body }) =>
                    kind === 'HEAD'
                      ? ''
                      : kind === 'GET' || kind === 'HTTP10'
                        ? `GET ${path} `
                        : `POST ${path} ${body}`,
                  ),
                );
                assert.equal(header(responses[last] as WireResponse, 'connection'), 'close');
              },
            ),
            { numRuns: 120, seed: 7 },
          );
          await stillServes(t);
        },
      );
    });
  });
