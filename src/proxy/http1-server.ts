/**
 * @module Http1Server: the gateway's downstream HTTP/1.1 server. A `net.Server` whose
 * connections are parsed by node's own llhttp parser (node-parser.ts) and answered with heads
 * written by hand, without node:http's per-request stream machinery (IncomingMessage's and
 * ServerResponse's states, 'finish' events, next-tick callbacks). It speaks the part of
 * node:http the proxy engine uses: 'request' (req, res), 'upgrade' (req, socket, head),
 * 'clientError' (err, socket), `closeIdleConnections()`; the request's body is a Readable made
 * on first use (`req.body`).
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
import { STATUS_CODES, type IncomingHttpHeaders } from 'node:http';
import { Server as NetServer, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { HTTP_TOKEN } from './headers.js';
import {
  closeParserLater,
  createParser,
  isRequestParserSupported,
  PARSER_METHODS,
  ParserFeed,
  type NodeHttpParser,
  type ParsedHead,
} from './node-parser.js';

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

/** An Error with node's `code` (the parser's `HPE_*`, or ours). */
function httpError(message: string, code: string): Error & { code: string } {
  return Object.assign(new Error(message), { code });
}

/** Request header names node keeps once (a second value is dropped), as IncomingMessage does. */
const SINGLE: ReadonlySet<string> = new Set([
  'age',
  'authorization',
  'content-length',
  'content-type',
  'etag',
  'expires',
  'from',
  'host',
  'if-modified-since',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'referer',
  'retry-after',
  'server',
  'user-agent',
]);

/** `rawHeaders` as node's `req.headers`: lower-case names, duplicates joined or dropped. */
export function headersObject(raw: readonly string[]): IncomingHttpHeaders {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    const value = raw[i + 1] as string;
    const seen = out[name];
    if (seen === undefined) out[name] = name === 'set-cookie' ? [value] : value;
    else if (name === 'set-cookie') (seen as string[]).push(value);
    else if (SINGLE.has(name)) continue;
    else out[name] = `${seen as string}${name === 'cookie' ? '; ' : ', '}${value}`;
  }
  return out as IncomingHttpHeaders;
}

/**
 * A request's body as a Readable. Made only when asked for (`Http1Request.body`), or when body
 * bytes arrive before anyone asked: a request without a body, most of them, makes no stream.
 */
class RequestBody extends Readable {
  readonly #conn: Http1Connection;

  constructor(conn: Http1Connection) {
    super();
    this.#conn = conn;
    // An abort's error (the connection went) reaches the readers listening for it, and is
    // dropped when none is. Not decided at destroy time, as IncomingMessage does: the error is
    // emitted a tick later, by when its reader may have stopped listening (the gateway's
    // upstream upload stops as the request is cancelled), and an unheard 'error' crashes.
    this.on('error', ignore);
  }

  override _read(): void {
    this.#conn.resumeBody();
  }
}

const ignore = (): void => undefined;

/**
 * Where a request's body stands: still `arriving`, read `whole` (no body counts), `aborted`
 * (the connection went, or the body was malformed, before its end), or `dropped` (the response
 * ended first: the rest is read from the connection and thrown away). Only `arriving` moves on.
 */
export type BodyState = 'arriving' | 'whole' | 'aborted' | 'dropped';

/** One request: its head, and its body (see `body`). */
export class Http1Request {
  readonly method: string;
  readonly url: string;
  readonly rawHeaders: string[];
  readonly httpVersionMajor: number;
  readonly httpVersionMinor: number;
  readonly socket: Socket;
  /** The parser's keep-alive verdict (version and Connection header). */
  readonly keepAlive: boolean;
  readonly #conn: Http1Connection;
  #headers: IncomingHttpHeaders | undefined;
  #body: RequestBody | undefined;
  #bodyState: BodyState = 'arriving';
  /** Why the body was aborted (its stream fails with it). */
  #aborted: Error | undefined;

  constructor(
    conn: Http1Connection,
    method: string,
    url: string,
    rawHeaders: string[],
    major: number,
    minor: number,
    keepAlive: boolean,
  ) {
    this.#conn = conn;
    this.socket = conn.socket;
    this.method = method;
    this.url = url;
    this.rawHeaders = rawHeaders;
    this.httpVersionMajor = major;
    this.httpVersionMinor = minor;
    this.keepAlive = keepAlive;
  }

  get httpVersion(): string {
    return `${this.httpVersionMajor}.${this.httpVersionMinor}`;
  }

  get headers(): IncomingHttpHeaders {
    return (this.#headers ??= headersObject(this.rawHeaders));
  }

  get bodyState(): BodyState {
    return this.#bodyState;
  }

  /**
   * The body (an ended stream when there is none), made on first use. Asked for after it was
   * dropped, it fails: what is left of it was thrown away.
   */
  get body(): Readable {
    let b = this.#body;
    if (b === undefined) {
      b = this.#body = new RequestBody(this.#conn);
      const state = this.#bodyState;
      if (state === 'whole') b.push(null);
      else if (state === 'aborted') b.destroy(this.#aborted);
      else if (state === 'dropped')
        b.destroy(
          httpError('request body dropped: the response ended first', 'ERR_STREAM_PREMATURE_CLOSE'),
        );
    }
    return b;
  }

  /** A chunk of the body from the connection; false when its reader is behind. */
  pushBody(chunk: Buffer): boolean {
    return this.body.push(chunk);
  }

  /** The body's end from the connection. */
  endBody(): void {
    if (this.#bodyState !== 'arriving') return;
    this.#bodyState = 'whole';
    this.#body?.push(null);
  }

  /** The connection went before the body's end: the body fails with `err`. */
  abort(err: Error): void {
    if (this.#bodyState !== 'arriving') return;
    this.#bodyState = 'aborted';
    this.#aborted = err;
    this.#body?.destroy(err);
  }

  /**
   * The response ended before the body did: the rest is read and dropped. A reader of the
   * body already made hears no more of it (the exchange it served is over).
   */
  drop(): void {
    if (this.#bodyState === 'arriving') this.#bodyState = 'dropped';
  }
}

/** The bytes no field value may hold (CR, LF, NUL); names must be tokens (HTTP_TOKEN). */
const INVALID_VALUE = /[\r\n\0]/;

/** Bodies up to this size are written in one buffer with their head. */
const INLINE_BODY_MAX = 16_384;

/** The cached Date header value, renewed at most once a second. */
let dateSecond = 0;
let dateValue = '';
function utcDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1_000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateValue = new Date(now).toUTCString();
  }
  return dateValue;
}

/**
 * One response. `writeHead` takes node's flat `[name, value, ...]` list; the head goes out with
 * the first body chunk (one write). 'close' listeners hear of a connection closed before the
 * response ended (not of a response that ended normally).
 */
export class Http1Response {
  readonly req: Http1Request;
  readonly #conn: Http1Connection;
  statusCode = 200;
  /** Set false to close the connection after this response (`connection: close`). */
  shouldKeepAlive: boolean;
  headersSent = false;
  writableEnded = false;
  #head: string | undefined;
  #noBody = false;
  #chunked = false;
  /** Body bytes still owed under Content-Length; -1 when not framed by one. */
  #remaining = -1;
  #onClose: (() => void) | undefined;

  constructor(conn: Http1Connection, req: Http1Request) {
    this.#conn = conn;
    this.req = req;
    this.shouldKeepAlive = req.keepAlive;
  }

  get destroyed(): boolean {
    return this.#conn.socket.destroyed;
  }

  writeHead(status: number, message: string | undefined, headers: readonly string[]): this {
    if (this.headersSent) throw httpError('response head already sent', 'ERR_HTTP_HEADERS_SENT');
    let head = `HTTP/1.1 ${status} ${message === undefined || message === '' ? (STATUS_CODES[status] ?? '') : message}\r\n`;
    let length = -1;
    let hasDate = false;
    let keepAlive = this.shouldKeepAlive;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i] as string;
      const value = headers[i + 1] as string;
      const n = name.length;
      if (n === 14 || n === 17 || n === 10 || n === 4) {
        const lower = name.toLowerCase();
        if (lower === 'content-length') {
          length = Number(value);
          if (!Number.isSafeInteger(length) || length < 0)
            throw httpError(`invalid content-length "${value}"`, 'ERR_HTTP_INVALID_HEADER_VALUE');
          continue; // written below, once
        } else if (lower === 'transfer-encoding')
          continue; // this hop frames its own body
        else if (lower === 'connection') {
          if (/\bclose\b/i.test(value)) keepAlive = false;
          continue;
        } else if (lower === 'date') hasDate = true;
      }
      // What node's checkIsHttpToken/checkInvalidHeaderChar refuse: no header may break the head.
      if (!HTTP_TOKEN.test(name))
        throw httpError(`invalid header name "${name}"`, 'ERR_INVALID_HTTP_TOKEN');
      if (INVALID_VALUE.test(value))
        throw httpError(`invalid value of header "${name}"`, 'ERR_INVALID_CHAR');
      head += `${name}: ${value}\r\n`;
    }
    const req = this.req;
    this.statusCode = status;
    this.#noBody = req.method === 'HEAD' || status === 204 || status === 304 || status < 200;
    const http11 = req.httpVersionMajor === 1 && req.httpVersionMinor >= 1;
    if (this.#noBody) {
      if (length >= 0) head += `content-length: ${length}\r\n`;
    } else if (length >= 0) {
      head += `content-length: ${length}\r\n`;
      this.#remaining = length;
    } else if (http11) {
      head += 'transfer-encoding: chunked\r\n';
      this.#chunked = true;
    } else keepAlive = false; // an HTTP/1.0 client reads to the close
    if (!hasDate) head += `date: ${utcDate()}\r\n`;
    if (this.#conn.server.closing) keepAlive = false;
    this.shouldKeepAlive = keepAlive;
    if (!keepAlive) head += 'connection: close\r\n';
    else if (!http11) head += 'connection: keep-alive\r\n';
    this.#head = `${head}\r\n`;
    this.headersSent = true;
    return this;
  }

  /** Writes a body chunk; false when the socket's buffer is full (wait for 'drain'). */
  write(chunk: Buffer | string): boolean {
    if (this.writableEnded) return false;
    if (!this.headersSent) this.writeHead(this.statusCode, undefined, []);
    const socket = this.#conn.socket;
    const head = this.#head;
    this.#head = undefined;
    const bytes = typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    if (this.#noBody || bytes === 0)
      return head === undefined ? true : socket.write(head, 'latin1');
    if (this.#remaining >= 0) {
      if (bytes > this.#remaining) {
        // More than the head announced: the next response would be read as this one's body.
        socket.destroy(
          httpError(
            'response body longer than its content-length',
            'ERR_HTTP_CONTENT_LENGTH_MISMATCH',
          ),
        );
        return false;
      }
      this.#remaining -= bytes;
    }
    if (head === undefined && !this.#chunked) return socket.write(chunk);
    if (head !== undefined && !this.#chunked && bytes <= INLINE_BODY_MAX) {
      // A small answer goes out as one buffer: one plain write, no writev of two.
      const headBytes = head.length; // latin1: a byte per character
      const out = Buffer.allocUnsafe(headBytes + bytes);
      out.write(head, 0, headBytes, 'latin1');
      if (typeof chunk === 'string') out.write(chunk, headBytes);
      else chunk.copy(out, headBytes);
      return socket.write(out);
    }
    socket.cork();
    if (head !== undefined) socket.write(head, 'latin1');
    let ok: boolean;
    if (this.#chunked) {
      socket.write(`${bytes.toString(16)}\r\n`, 'latin1');
      socket.write(chunk);
      ok = socket.write('\r\n', 'latin1');
    } else ok = socket.write(chunk);
    socket.uncork();
    return ok;
  }

  end(chunk?: Buffer | string): this {
    if (this.writableEnded) return this;
    if (chunk !== undefined) this.write(chunk);
    else if (!this.headersSent) this.writeHead(this.statusCode, undefined, []);
    this.writableEnded = true;
    const socket = this.#conn.socket;
    const head = this.#head;
    this.#head = undefined;
    if (this.#chunked)
      socket.write(head === undefined ? '0\r\n\r\n' : `${head}0\r\n\r\n`, 'latin1');
    else if (head !== undefined) socket.write(head, 'latin1');
    // A body cut short of its content-length: the connection cannot carry another response.
    if (this.#remaining > 0 && !this.#noBody) this.shouldKeepAlive = false;
    this.#conn.responseEnded(this);
    return this;
  }

  /** The connection closed before the response ended (one listener: the engine's). */
  on(_event: 'close', fn: () => void): this {
    this.#onClose = fn;
    return this;
  }

  /** The socket's buffer drained, once. */
  once(_event: 'drain', fn: () => void): this {
    this.#conn.socket.once('drain', fn);
    return this;
  }

  /** Cuts the response (and the connection). */
  destroy(err?: Error): this {
    this.#conn.socket.destroy(err);
    return this;
  }

  /** The connection closed (by either side) before this response ended. */
  aborted(): void {
    const fn = this.#onClose;
    this.#onClose = undefined;
    fn?.();
  }

  /** An interim `100 Continue`, before the head. */
  writeContinue(): void {
    this.#conn.socket.write('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
  }
}

/** One downstream connection: parses its requests and serves them one at a time, in order. */
class Http1Connection {
  readonly server: Http1Server;
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

  constructor(server: Http1Server, socket: Socket) {
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

  /** No request in progress and none begun: a drain or the keep-alive sweep may close it. */
  get idle(): boolean {
    return (
      this.#current === undefined &&
      this.#queue.length === 0 &&
      this.#parsing === undefined &&
      this.#headTick === 0
    );
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

/**
 * The server (see the module comment). Events as node:http names them: 'request',
 * 'upgrade', 'clientError' (err with `code`: the parser's `HPE_*`, ERR_MISSING_HOST or
 * ERR_HEADERS_TIMEOUT; without a listener the socket is destroyed), and net's 'connection'.
 */
export class Http1Server extends NetServer {
  readonly options: Http1ServerOptions;
  readonly #connections = new Set<Http1Connection>();
  /** Set by close(): responses from now on close their connection. */
  closing = false;
  /** A coarse clock for the timeouts, advanced by the sweep (no timestamp per request). */
  tick = 1;
  readonly #tickMs: number;
  #sweeper: NodeJS.Timeout | undefined;

  constructor(options: Http1ServerOptions) {
    if (!isRequestParserSupported()) throw new Error('Http1Server: node:http parser not available');
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

  /** Closes the connections that have no request in progress. */
  closeIdleConnections(): void {
    for (const c of this.#connections) if (c.idle) c.close();
  }
}

/** Whether this runtime lets the gateway use `Http1Server` (else it uses node:http). */
export { isRequestParserSupported as isHttp1ServerSupported } from './node-parser.js';
