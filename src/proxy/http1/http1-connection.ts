/**
 * @module Http1Connection: one connection of the gateway's downstream HTTP/1.1 server
 * (http1-server.ts). Its bytes go to node's parser (a ParserFeed); its requests are served one
 * at a time, in order (pipelined ones wait), with backpressure from a body's reader, refusals as
 * clientErrors, the hand-over of an Upgrade's socket, and the lingering close of RFC 9112 9.6.
 */
import type { Socket } from 'node:net';
import { httpError } from './http-error.js';
import { Http1Request } from './http1-request.js';
import { Http1Response } from './http1-response.js';
import {
  closeParserLater,
  createParser,
  PARSER_METHODS,
  ParserFeed,
  type NodeHttpParser,
  type ParsedHead,
} from './node-parser.js';

/**
 * What a connection needs of its server (Http1Server): its options, its coarse clock, its
 * events ('request', 'upgrade' and, through emitClientError, 'clientError'), and to forget a
 * connection that closed or left for a tunnel. Called from the connection's socket and parser
 * callbacks and from the server's sweep; none of them may throw.
 */
export interface ConnectionServer {
  readonly options: { readonly maxHeaderSize: number; readonly nativeReads?: boolean };
  /** Advanced by the server's sweep; the connection stamps heads and idleness with it. */
  readonly tick: number;
  /** Set once the server closes: responses from then on close their connection. */
  readonly closing: boolean;
  emit(event: 'request', req: Http1Request, res: Http1Response): boolean;
  emit(event: 'upgrade', req: Http1Request, socket: Socket, head: Buffer): boolean;
  listenerCount(event: 'upgrade'): number;
  /** A 'clientError' for `err` (its listener answers and ends the socket; without one, destroyed). */
  emitClientError(err: Error, socket: Socket): void;
  forget(conn: Http1Connection): void;
}

/** One downstream connection: parses its requests and serves them one at a time, in order. */
export class Http1Connection {
  readonly server: ConnectionServer;
  readonly socket: Socket;
  readonly #parser: NodeHttpParser;
  readonly #feed: ParserFeed;
  /** The request being served (its response not ended yet). */
  #current: Http1Response | undefined;
  /** Pipelined requests parsed while another was being served. */
  #queue: Http1Request[] = [];
  /** The request whose body the parser is reading. */
  #parsing: Http1Request | undefined;
  /** An Upgrade request: the parser stopped after its head. */
  #upgrade: Http1Request | undefined;
  /** Server ticks: when the current head started (0 = none), and when the connection went idle. */
  #headTick = 0;
  idleTick: number;
  /** The socket paused: a body's reader is behind, or pipelined requests wait. */
  #bodyPaused = false;
  #queuePaused = false;
  /** A parse error waits for the current response to end before it is answered. */
  #pendingError: Error | undefined;
  /** Sweeps since this ended connection's FIN went out with no FIN back (see #linger). */
  #lingerSweeps = 0;
  dead = false;

  constructor(server: ConnectionServer, socket: Socket) {
    this.server = server;
    this.socket = socket;
    this.idleTick = server.tick;
    this.#parser = createParser('request', server.options.maxHeaderSize, {
      onHead: (h) => this.#onHead(h),
      onBody: (chunk) => this.#onBody(chunk),
      onComplete: () => this.#onMessageComplete(),
    });
    socket.setNoDelay(true);
    this.#feed = new ParserFeed(socket, this.#parser, (r) => this.#onParsed(r), {
      native: server.options.nativeReads,
    });
    socket.on('end', () => this.#onEnd());
    socket.on('error', () => {}); // 'close' follows
    socket.on('close', () => this.#onClose());
  }

  /** No request in progress and none begun: the keep-alive sweep may close it. */
  get idle(): boolean {
    return (
      this.#current === undefined &&
      this.#queue.length === 0 &&
      this.#parsing === undefined &&
      this.#headTick === 0
    );
  }

  /**
   * Idle, and the last response's bytes all handed to the kernel: a drain may close it (close
   * destroys the socket, which drops bytes still buffered). A response ends (and the connection
   * goes idle) as soon as its last write is queued; over TLS that write completes later (the
   * record is encrypted and written on), and to a client reading slowly much later.
   */
  get closable(): boolean {
    return this.idle && this.socket.writableLength === 0;
  }

  /** After each read: what the parser made of it. */
  #onParsed(r: number | Error): void {
    // The connection died (in one of the parser's callbacks: a response that closes it ended,
    // a refusal; or before: the bytes read on to the client's FIN), or a malformed request
    // waits to be answered: these bytes are neither served nor a second error to report.
    if (this.dead || this.#pendingError !== undefined) return;
    if (r instanceof Error) {
      this.#parseError(r);
      return;
    }
    const up = this.#upgrade;
    if (up !== undefined) {
      this.#upgrade = undefined;
      this.#handOver(up, this.#feed.bytes().subarray(r));
      return;
    }
    // A head begun and not complete: the headers timeout runs from now (#onHead stops it).
    if (this.#headTick === 0 && !this.#parser.headersCompleted()) this.#headTick = this.server.tick;
    // Pipelined requests wait: read no further until they are served.
    if (this.#queue.length > 0 && !this.#queuePaused) {
      this.#queuePaused = true;
      this.#syncReading();
    }
  }

  #onHead(h: ParsedHead): number {
    // After a `connection: close` answer no further request is served (RFC 9112 9.6).
    if (this.dead) return 0;
    this.#headTick = 0;
    const name = (PARSER_METHODS as readonly string[])[h.method] ?? 'GET';
    const req = new Http1Request(
      this,
      name,
      h.url,
      h.rawHeaders,
      h.versionMajor,
      h.versionMinor,
      h.keepAlive,
    );
    if (h.upgrade) {
      // The parser stops after this head (2): the rest of the bytes belong to the tunnel.
      this.#upgrade = req;
      return 2;
    }
    this.#parsing = req;
    if (this.#current === undefined) this.#serve(req);
    else this.#queue.push(req);
    return 0;
  }

  #onBody(chunk: Buffer): void {
    const req = this.#parsing;
    // Dead: the rest of a body in the packet that ended the connection is dropped, and must
    // not pause the socket again (see #linger).
    if (req === undefined || req.bodyState === 'dropped' || this.dead) return;
    if (!req.pushBody(chunk) && !this.#bodyPaused) {
      this.#bodyPaused = true;
      this.#syncReading();
    }
  }

  #onMessageComplete(): void {
    const req = this.#parsing;
    this.#parsing = undefined;
    // A dropped body stays dropped: its reader, if any, must not take it for whole.
    req?.endBody();
  }

  /** The body's reader wants more. */
  resumeBody(): void {
    if (!this.#bodyPaused) return;
    this.#bodyPaused = false;
    this.#syncReading();
  }

  /** Reads while neither a body's reader is behind nor pipelined requests wait. */
  #syncReading(): void {
    if (this.#bodyPaused || this.#queuePaused) this.#feed.pause();
    else this.#feed.resume();
  }

  #serve(req: Http1Request): void {
    const res = new Http1Response(this, req);
    this.#current = res;
    if (req.httpVersionMajor === 1 && req.httpVersionMinor >= 1) {
      const h = req.headers;
      if (h.host === undefined) {
        this.#refuse(httpError('HTTP/1.1 request without a Host header', 'ERR_MISSING_HOST'));
        return;
      }
      const expect = h.expect;
      if (expect !== undefined) {
        if (expect.toLowerCase() !== '100-continue') {
          res.shouldKeepAlive = false;
          res.writeHead(417, undefined, ['content-length', '0']);
          res.end();
          return;
        }
        res.writeContinue();
      }
    }
    this.server.emit('request', req, res);
  }

  /** Ends the connection with a clientError for `err` (its handler writes the answer). */
  #refuse(err: Error): void {
    this.dead = true;
    this.#current = undefined;
    this.server.emitClientError(err, this.socket);
    if (!this.socket.destroyed) this.#linger();
  }

  /**
   * Reads on to the client's FIN, dropping the bytes (dead): the socket, half-open (the server
   * allows it), fully closes only when that FIN is read, and it is not read while the socket
   * is paused for a body's reader or the pipelining queue. Reading on, rather than destroying
   * with bytes unread, also keeps the close from becoming a reset that could cost the client
   * the response (the lingering close of RFC 9112 9.6). The sweep bounds the wait.
   */
  #linger(): void {
    this.#bodyPaused = false;
    this.#queuePaused = false;
    this.#syncReading();
  }

  responseEnded(res: Http1Response): void {
    if (this.#current !== res) return;
    this.#current = undefined;
    const req = res.req;
    if (!res.shouldKeepAlive || this.dead) {
      this.dead = true;
      this.socket.end();
      this.#linger();
      return;
    }
    // The request body may still be coming: read it through and drop it.
    if (this.#parsing === req) req.drop();
    // Reading may be paused for this request's body, which nobody reads now (even one that came
    // whole), or for a later request's, which pauses again at its next chunk: read on.
    this.resumeBody();
    const next = this.#queue.shift();
    // Nothing waits any more: read on. Before serving `next`, whose body may still be coming
    // (or, with Expect: 100-continue, be sent only now); paused, it would never arrive.
    if (this.#queue.length === 0 && this.#queuePaused) {
      this.#queuePaused = false;
      this.#syncReading();
    }
    if (next !== undefined) {
      this.#serve(next);
      return;
    }
    // The requests before the malformed one are answered: now its clientError.
    if (this.#pendingError !== undefined) {
      this.#refuse(this.#pendingError);
      return;
    }
    this.idleTick = this.server.tick;
  }

  #parseError(err: Error): void {
    const parsing = this.#parsing;
    this.#parsing = undefined;
    parsing?.abort(httpError('request aborted: malformed', 'ECONNRESET'));
    const current = this.#current;
    if (current !== undefined && current.req !== parsing) {
      // A later request is malformed: answered in order, after the responses before it (the
      // bytes from here on are not read). Not `dead`: that would end the connection as soon
      // as the response in progress ends, with no clientError at all.
      this.#queue = this.#queue.filter((q) => q !== parsing);
      this.#pendingError = err;
      return;
    }
    if (current !== undefined) {
      // The body of the request being served is malformed: its response cannot complete (its
      // handler's body stream failed), and waiting for it would hold the connection forever.
      this.#current = undefined;
      current.aborted();
      if (current.headersSent) {
        this.close(); // no room left for an error answer
        return;
      }
    }
    this.#refuse(err);
  }

  /** An Upgrade request: the socket leaves this server for the 'upgrade' listener. */
  #handOver(req: Http1Request, head: Buffer): void {
    this.dead = true;
    this.#feed.release();
    this.socket.removeAllListeners('data');
    this.socket.removeAllListeners('end');
    // Not flowing until the tunnel reads it (as node:http hands an upgraded socket over).
    (this.socket as { readableFlowing: boolean | null }).readableFlowing = null;
    this.server.forget(this);
    if (
      this.#current !== undefined ||
      req.method === 'CONNECT' ||
      this.server.listenerCount('upgrade') === 0
    ) {
      // Not while a pipelined response is in progress; CONNECT is not proxied; nobody to hand to.
      this.socket.destroy();
      return;
    }
    req.endBody();
    this.server.emit('upgrade', req, this.socket, head);
  }

  /**
   * The client half-closed. As node:http does by default (httpAllowHalfOpen false), that ends
   * the requests in progress: nobody is there to read their answers.
   */
  #onEnd(): void {
    if (this.dead) return;
    const r = this.#parser.finish();
    if (r instanceof Error && this.#current === undefined && this.#queue.length === 0) {
      this.#parseError(r);
      return;
    }
    this.dead = true;
    this.#abort();
    // Both sides have ended once this FIN goes out: the socket closes by itself.
    this.socket.end();
  }

  /** Ends the request being parsed and the response in progress (the connection is going). */
  #abort(): void {
    const parsing = this.#parsing;
    this.#parsing = undefined;
    parsing?.abort(httpError('request aborted', 'ECONNRESET'));
    const res = this.#current;
    this.#current = undefined;
    this.#queue = [];
    res?.aborted();
  }

  #onClose(): void {
    this.dead = true;
    this.server.forget(this);
    this.#abort();
    closeParserLater(this.#parser);
  }

  /** The sweep: a head too slow (408) or an idle keep-alive connection past its timeout. */
  sweep(tick: number, headTicks: number, idleTicks: number): void {
    if (this.dead) {
      // Ended by us and our FIN sent (not while a response still drains to a slow client):
      // a client that keeps its side open gets as long as an idle connection.
      if (this.socket.writableFinished && ++this.#lingerSweeps > idleTicks) this.socket.destroy();
      return;
    }
    if (this.#headTick !== 0 && tick - this.#headTick >= headTicks) {
      if (this.#current === undefined) {
        this.#refuse(httpError('request head not received in time', 'ERR_HEADERS_TIMEOUT'));
      }
      return;
    }
    if (this.idle && tick - this.idleTick >= idleTicks) this.close();
  }

  close(): void {
    this.dead = true;
    this.socket.destroy();
  }
}
