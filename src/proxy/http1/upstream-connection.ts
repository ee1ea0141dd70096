/**
 * @module UpstreamConnection: one keep-alive connection of the gateway's upstream HTTP/1.1
 * client (http1-agent.ts) and the requests it carries (UpstreamExchange), one at a time: the
 * request head written by hand, the body streamed (chunked when its length is unknown), the
 * answer parsed by node's parser and handed to undici's raw handler methods, with backpressure,
 * the body's idle timeout, and the reuse or close of the connection after it.
 */
import { connect, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { UpstreamHandler } from '../contract.js';
import { httpError } from './http-error.js';
import { closeParserLater, createParser, ParserFeed, type NodeHttpParser } from './node-parser.js';

/**
 * What a connection needs of its pool (the agent's per-origin OriginPool): where to connect,
 * the agent's options and state, and where to go when it is free again (`idle`) or closed
 * (`remove`). The connection calls `idle` once per request that leaves it reusable and `remove`
 * once, when it closes; neither may throw.
 */
export interface UpstreamPool {
  readonly agent: {
    readonly options: {
      readonly connectTimeoutMs: number;
      readonly maxHeaderSize?: number;
      readonly maxRequestsPerConnection?: number;
      readonly nativeReads?: boolean;
    };
    readonly closed: boolean;
  };
  readonly host: string;
  readonly port: number;
  /** The Host header of a request that has none. */
  readonly hostHeader: string;
  /** Present: connections are TLS (mesh mTLS), made by it. */
  readonly tls?: UpstreamTlsConnector | undefined;
  idle(conn: UpstreamConnection): void;
  remove(conn: UpstreamConnection): void;
}

/**
 * How a TLS upstream connection is made (the sidecar's mTLS origination, mesh-tls.ts): a socket
 * that emits 'secureConnect' once the server is verified, and the error an attempt fails with
 * for one of its socket's errors. Both called once per connection; neither throws.
 */
export interface UpstreamTlsConnector {
  connect(host: string, port: number): TLSSocket;
  failure(socket: TLSSocket, err: Error): Error;
}

/** A parse error of node's parser (its code is an `HPE_*` one: not retried). */
const invalidResponse = (r: Error): Error =>
  httpError(
    `invalid upstream response: ${r.message}`,
    (r as { code?: string }).code ?? 'HPE_INVALID',
  );

/** The upstream ended the connection before the answer did (retried for idempotent requests). */
const closedByUpstream = (): Error => httpError('upstream closed the connection', 'ECONNRESET');

/** Methods undici sends `content-length: 0` for when they carry no body. */
const EMPTY_BODY_LENGTH = new Set(['POST', 'PUT', 'PATCH']);

/** One request on a connection. */
export class UpstreamExchange {
  readonly options: Dispatcher.DispatchOptions;
  readonly handler: UpstreamHandler;
  done = false;
  /** The response head arrived. */
  headed = false;
  /** The whole request (body included) was written. */
  sent = false;
  keepAlive = false;
  conn: UpstreamConnection | undefined;
  /** Stops forwarding the request body (set while it streams). */
  stopBody: (() => void) | undefined;

  constructor(options: Dispatcher.DispatchOptions, handler: UpstreamHandler) {
    this.options = options;
    this.handler = handler;
  }

  /** The handler's abort: ends this request (and its connection) with `err`. */
  readonly abort = (err?: Error): void => {
    if (this.done) return;
    const e = err ?? httpError('request aborted', 'UND_ERR_ABORTED');
    if (this.conn !== undefined) this.conn.fail(e);
    else this.fail(e);
  };

  fail(err: Error): void {
    if (this.done) return;
    this.done = true;
    this.stopBody?.();
    this.handler.onError(err);
  }
}

/** One keep-alive connection to an origin, one request at a time. */
export class UpstreamConnection {
  readonly #pool: UpstreamPool;
  readonly socket: Socket;
  readonly #parser: NodeHttpParser;
  readonly #feed: ParserFeed;
  #connected = false;
  /** The event after which the connection carries requests: 'connect', or 'secureConnect'. */
  readonly #ready: 'connect' | 'secureConnect';
  #current: UpstreamExchange | undefined;
  /** A response head came with no request waiting for it (see #onParsed). */
  #stray = false;
  #closed = false;

  constructor(pool: UpstreamPool) {
    this.#pool = pool;
    this.#parser = createParser('response', pool.agent.options.maxHeaderSize ?? 0, {
      onHead: (h) => this.#onHead(h.rawHeaders, h.status, h.statusText, h.keepAlive),
      onBody: (chunk) => this.#onBody(chunk),
      onComplete: () => this.#onMessageComplete(),
    });

    const tls = pool.tls;
    const socket =
      tls === undefined
        ? connect({ host: pool.host, port: pool.port, noDelay: true })
        : tls.connect(pool.host, pool.port);
    this.socket = socket;
    // Over TLS, connected means verified: the connect timeout covers the handshake.
    this.#ready = tls === undefined ? 'connect' : 'secureConnect';
    socket.setTimeout(pool.agent.options.connectTimeoutMs);
    socket.once(this.#ready, () => {
      this.#connected = true;
      socket.setTimeout(0);
      socket.setKeepAlive(true, 60_000);
    });
    // Armed only to connect (the body's silence has its own timer).
    socket.on('timeout', () => this.#onConnectTimeout());
    this.#feed = new ParserFeed(socket, this.#parser, (r) => this.#onParsed(r), {
      native: pool.agent.options.nativeReads,
    });
    socket.on('end', () => this.#onEnd());
    socket.on('error', (err) =>
      this.fail(tls === undefined ? err : tls.failure(socket as TLSSocket, err)),
    );
    socket.on('close', () => this.#onClose());
  }

  /** Sends `ex` on this connection (it is free). */
  send(ex: UpstreamExchange): void {
    this.#current = ex;
    this.#requests++;
    ex.conn = this;
    const { options } = ex;
    const method = options.method;
    let head = `${method} ${options.path} HTTP/1.1\r\n`;
    let hasHost = false;
    let hasLength = false;
    const h = options.headers as string[] | null | undefined;
    if (h != null) {
      for (let i = 0; i < h.length; i += 2) {
        const name = h[i] as string;
        if (name.length === 4 && name.toLowerCase() === 'host') hasHost = true;
        else if (name.length === 14 && name.toLowerCase() === 'content-length') hasLength = true;
        head += `${name}: ${h[i + 1] as string}\r\n`;
      }
    }
    if (!hasHost) head += `host: ${this.#pool.hostHeader}\r\n`;
    const body = options.body as Readable | null | undefined;
    if (body == null) {
      if (!hasLength && EMPTY_BODY_LENGTH.has(method)) head += 'content-length: 0\r\n';
      this.socket.write(`${head}\r\n`, 'latin1');
      ex.sent = true;
      return;
    }
    const chunked = !hasLength;
    this.socket.write(
      chunked ? `${head}transfer-encoding: chunked\r\n\r\n` : `${head}\r\n`,
      'latin1',
    );
    // The body is read only once connected: a request whose connection is refused keeps an
    // unread body, which lets the engine retry it on another instance.
    if (this.#connected) this.#pipeBody(ex, body, chunked);
    else
      this.socket.once(this.#ready, () => {
        if (!ex.done && this.#current === ex) this.#pipeBody(ex, body, chunked);
      });
  }

  #pipeBody(ex: UpstreamExchange, body: Readable, chunked: boolean): void {
    const socket = this.socket;
    const onData = (chunk: Buffer): void => {
      let ok: boolean;
      if (chunked) {
        socket.cork();
        socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
        socket.write(chunk);
        ok = socket.write('\r\n', 'latin1');
        socket.uncork();
      } else ok = socket.write(chunk);
      if (!ok) {
        body.pause();
        socket.once('drain', () => body.resume());
      }
    };
    const onEnd = (): void => {
      stop();
      if (chunked) socket.write('0\r\n\r\n', 'latin1');
      ex.sent = true;
    };
    const onError = (err: Error): void => ex.abort(err);
    const onClose = (): void => {
      // The downstream went away mid-upload: the request can never complete.
      if (!body.readableEnded) ex.abort(httpError('request body aborted', 'ECONNABORTED'));
    };
    const stop = (): void => {
      ex.stopBody = undefined;
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
      body.off('close', onClose);
    };
    ex.stopBody = stop;
    body.on('data', onData);
    body.on('end', onEnd);
    body.on('error', onError);
    body.on('close', onClose);
    body.resume();
  }

  #onHead(list: string[], status: number, statusText: string, keepAlive: boolean): number {
    const ex = this.#current;
    if (ex === undefined) this.#stray = true;
    if (ex === undefined || ex.done) return 1;
    // 1xx (100 Continue, 103 Early Hints) are interim: the real head follows.
    if (status < 200) return 0;
    ex.headed = true;
    ex.keepAlive = keepAlive;
    // The body may not stay silent longer than this (reset by every chunk; off while paused).
    // Armed only if the body does not end in the same read (#onParsed): most small answers
    // never touch a timer.
    this.#bodyTimeoutMs = ex.options.bodyTimeout ?? 0;
    // The handler's resume for this answer: a late call, once the connection serves the next
    // request, must not resume that one's reading.
    const resume = (): void => {
      if (this.#current === ex) this.#resume();
    };
    const go = ex.handler.onHeaders(status, list, resume, statusText);
    if (go === false) this.#pause();
    const method = ex.options.method;
    // No body follows a HEAD answer, a 204 or a 304, whatever the head says (skip it).
    return method === 'HEAD' || status === 204 || status === 304 ? 1 : 0;
  }

  #bodyTimeoutMs = 0;
  #bodyTimer: NodeJS.Timeout | undefined;

  /** After a read of the body: the silence it may keep starts again (armed if not yet). */
  #armBodyTimer(): void {
    if (this.#bodyTimer !== undefined) {
      this.#bodyTimer.refresh();
      return;
    }
    const ex = this.#current;
    if (this.#feed.paused || this.#bodyTimeoutMs <= 0) return;
    if (ex === undefined || !ex.headed || ex.done) return;
    this.#bodyTimer = setTimeout(this.#onBodyTimeout, this.#bodyTimeoutMs);
    this.#bodyTimer.unref();
  }

  #disarmBodyTimer(): void {
    if (this.#bodyTimer === undefined) return;
    clearTimeout(this.#bodyTimer);
    this.#bodyTimer = undefined;
  }

  readonly #onBodyTimeout = (): void => {
    this.#bodyTimer = undefined;
    this.fail(
      httpError(
        `upstream silent for ${this.#bodyTimeoutMs} ms in the body`,
        'UND_ERR_BODY_TIMEOUT',
      ),
    );
  };

  #pause(): void {
    this.#feed.pause();
    // A slow downstream is not a silent upstream.
    this.#disarmBodyTimer();
  }

  #resume(): void {
    this.#feed.resume();
    this.#armBodyTimer();
  }

  #onBody(chunk: Buffer): void {
    const ex = this.#current;
    if (ex === undefined || ex.done) return;
    if (!ex.handler.onData(chunk)) this.#pause();
  }

  #onMessageComplete(): void {
    const ex = this.#current;
    if (ex === undefined || ex.done || !ex.headed) return;
    ex.done = true;
    this.#disarmBodyTimer();
    this.#bodyTimeoutMs = 0;
    // An answer before the whole request body was sent: the connection cannot be reused.
    if (!ex.sent) {
      ex.stopBody?.();
      ex.keepAlive = false;
    }
    ex.handler.onComplete([]);
    this.#release(ex);
  }

  /** The exchange is over: keep the connection for the next request, or close it. */
  #release(ex: UpstreamExchange): void {
    if (this.#current !== ex) return;
    this.#current = undefined;
    ex.conn = undefined;
    const cap = this.#pool.agent.options.maxRequestsPerConnection ?? 0;
    if (
      !ex.keepAlive ||
      this.#closed ||
      this.#pool.agent.closed ||
      (cap > 0 && this.#requests >= cap)
    ) {
      this.#destroy();
      return;
    }
    // Paused by a handler whose answer then completed in the same read (its reader may never
    // drain): the next request's answer must be read.
    this.#feed.resume();
    this.#pool.idle(this);
  }

  /** After each read: what the parser made of it. */
  #onParsed(r: number | Error): void {
    if (this.#closed) return;
    if (r instanceof Error) {
      this.fail(invalidResponse(r));
      return;
    }
    if (this.#current === undefined) {
      // An answer (or the start of one) on an idle connection: the upstream broke HTTP/1.1
      // framing. Drop it. (A complete head has no headersCompleted() left to tell.)
      if (this.#stray || !this.#parser.headersCompleted()) this.#destroy();
      return;
    }
    // A body still to come: from now on it may not stay silent past bodyTimeout.
    this.#armBodyTimer();
  }

  #onEnd(): void {
    // A body delimited by the connection's end completes here.
    if (this.#current?.headed === true && !this.#closed) {
      const r = this.#parser.finish();
      if (r instanceof Error) this.fail(invalidResponse(r));
    }
    this.fail(closedByUpstream());
  }

  #onConnectTimeout(): void {
    this.fail(
      httpError(
        `connect timeout after ${this.#pool.agent.options.connectTimeoutMs} ms`,
        // The retry policy's code for a connection never made (safe to retry any method).
        'UND_ERR_CONNECT_TIMEOUT',
      ),
    );
  }

  /** Ends the current request (if any) with `err` and closes the connection. */
  fail(err: Error): void {
    const ex = this.#current;
    this.#current = undefined;
    this.#destroy();
    if (ex !== undefined) {
      ex.conn = undefined;
      ex.fail(err);
    }
  }

  #onClose(): void {
    this.fail(closedByUpstream());
  }

  #destroy(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#disarmBodyTimer();
    this.#pool.remove(this);
    this.socket.destroy();
    closeParserLater(this.#parser);
  }

  /** Closes an idle connection (agent closing). */
  close(): void {
    if (this.#current === undefined) this.#destroy();
  }

  /** Requests sent on this connection (maxRequestsPerConnection closes it at the cap). */
  #requests = 0;

  /** When this connection last went idle (ms, monotonic), for the pool's keep-alive sweep. */
  idleSince = 0;
}
