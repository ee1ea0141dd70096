/**
 * @module Http1Server: the gateway's downstream HTTP/1.1 server. A `net.Server` whose
 * connections are parsed by node's own llhttp parser (node-parser.ts) and answered with heads
 * written by hand, without node:http's per-request stream machinery (IncomingMessage's and
 * ServerResponse's states, 'finish' events, next-tick callbacks). It speaks the part of
 * node:http the proxy engine uses: 'request' (req, res), 'upgrade' (req, socket, head),
 * 'clientError' (err, socket), `closeIdleConnections()`; the request's body is a Readable made
 * on first use (`req.body`). This module is the server; its connections, requests and
 * responses are http1-connection.ts, http1-request.ts and http1-response.ts.
 *
 * Why: measured by hand on this project's 2-core machine (docs/benchmarks.md, "gateway"), the
 * gateway costs 6-9 µs of CPU per request more on node:http than on this server, a fifth of its
 * CPU per request and the larger part of its gap to nginx.
 *
 * HTTP/1.1 as RFC 9112 has it: keep-alive and HTTP/1.0, pipelined requests answered in order
 * (one at a time: the next is served when the previous response ended), chunked request bodies
 * (decoded by the parser), response framing by Content-Length or chunked (close-delimited for
 * an HTTP/1.0 client), no body for HEAD/204/304, `Expect: 100-continue`, a Host header required
 * of HTTP/1.1 requests, limits on the head's size and on the time to send it, idle keep-alive
 * connections closed after a timeout, and a Date header added when the response has none
 * (RFC 9110 6.6.1).
 */
import { Server as NetServer, type Socket } from 'node:net';
import { Http1Connection, type ConnectionServer } from './http1-connection.js';
import { NATIVE_HTTP1_SUPPORT } from './native-support.js';

export interface Http1ServerOptions {
  /** Largest request head accepted (bytes); larger is a clientError HPE_HEADER_OVERFLOW. */
  readonly maxHeaderSize: number;
  /** From a head's first byte to its end, at most this long (a 408 and close after). */
  readonly headersTimeoutMs: number;
  /** An idle keep-alive connection is closed after this long. */
  readonly keepAliveTimeoutMs: number;
  /** false: bytes reach the parser through 'data' events, not natively (see ParserFeed). */
  readonly nativeReads?: boolean;
}

/**
 * The server (see the module comment). Events as node:http names them: 'request',
 * 'upgrade', 'clientError' (err with `code`: the parser's `HPE_*`, ERR_MISSING_HOST or
 * ERR_HEADERS_TIMEOUT; without a listener the socket is destroyed), and net's 'connection'.
 */
export class Http1Server extends NetServer implements ConnectionServer {
  readonly options: Http1ServerOptions;
  readonly #connections = new Set<Http1Connection>();
  /** Set by close(): responses from now on close their connection. */
  closing = false;
  /** A coarse clock for the timeouts, advanced by the sweep (no timestamp per request). */
  tick = 1;
  readonly #tickMs: number;
  #sweeper: NodeJS.Timeout | undefined;

  constructor(options: Http1ServerOptions) {
    if (!isHttp1ServerSupported()) throw new Error('Http1Server: node:http parser not available');
    super({ allowHalfOpen: true });
    this.options = options;
    this.#tickMs = Math.max(
      10,
      Math.min(
        1_000,
        Math.floor(Math.min(options.headersTimeoutMs, options.keepAliveTimeoutMs) / 4),
      ),
    );
    this.on('connection', (socket: Socket) => {
      this.#connections.add(new Http1Connection(this, socket));
      this.#startSweeper();
    });
    this.on('close', () => {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    });
  }

  #startSweeper(): void {
    if (this.#sweeper !== undefined) return;
    const headTicks = Math.ceil(this.options.headersTimeoutMs / this.#tickMs);
    const idleTicks = Math.ceil(this.options.keepAliveTimeoutMs / this.#tickMs);
    this.#sweeper = setInterval(() => {
      const tick = ++this.tick;
      for (const c of this.#connections) c.sweep(tick, headTicks, idleTicks);
    }, this.#tickMs);
    this.#sweeper.unref();
  }

  emitClientError(err: Error, socket: Socket): void {
    if (!this.emit('clientError', err, socket)) socket.destroy();
  }

  forget(conn: Http1Connection): void {
    this.#connections.delete(conn);
  }

  /** Stops accepting and closes idle connections (as node:http does since v19). */
  override close(callback?: (err?: Error) => void): this {
    this.closing = true;
    super.close(callback);
    this.closeIdleConnections();
    return this;
  }

  /**
   * Closes the connections that have no request in progress and whose last response is
   * written out (as node:http's, whose response lets go of its socket once its last write
   * completed).
   */
  closeIdleConnections(): void {
    for (const c of this.#connections) if (c.closable) c.close();
  }
}

/** Whether this runtime lets the gateway use `Http1Server` (else it uses node:http). */
export function isHttp1ServerSupported(): boolean {
  return NATIVE_HTTP1_SUPPORT.server === undefined;
}
