/**
 * @module Http1Response: one response of the gateway's downstream HTTP/1.1 server
 * (http1-server.ts), its head written by hand and sent with the first body chunk, its body
 * framed by Content-Length or chunked (close-delimited for an HTTP/1.0 client).
 */
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { HTTP_TOKEN } from '../headers.js';
import { httpError } from './http-error.js';
import type { Http1Request } from './http1-request.js';

/**
 * What a response needs of its connection (Http1Connection): the socket, whether its server is
 * closing (then the response closes the connection), and to hear that the response ended.
 * `responseEnded` is called once per response, from `end()`; it MUST NOT throw.
 */
export interface ResponseConnection {
  readonly socket: Socket;
  readonly server: { readonly closing: boolean };
  responseEnded(res: Http1Response): void;
}

/** The bytes no field value may hold (CR, LF, NUL); names must be tokens (HTTP_TOKEN). */
const INVALID_VALUE = /[\r\n\0]/;

/** Bodies up to this size are written in one buffer with their head. */
const INLINE_BODY_MAX = 16_384;

/** The last-chunk and the empty trailer section that end a chunked body. */
const LAST_CHUNK = '0\r\n\r\n';

/** The end of the I/O of the loop turn in which a chunk was held (Http1Response.#hold). */
function turnEnded(res: Http1Response): void {
  res.turnEnded();
}

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
  readonly #conn: ResponseConnection;
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
  /**
   * A small chunk, framed, held to the end of this loop turn's I/O (#hold): its bytes are
   * `#held.subarray(0, #heldBytes)`, and the buffer has room for LAST_CHUNK after them.
   */
  #held: Buffer | undefined;
  #heldBytes = 0;
  #flushQueued = false;

  constructor(conn: ResponseConnection, req: Http1Request) {
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
    if (bytes <= INLINE_BODY_MAX) {
      // A small answer, or chunk, goes out as one buffer with its head or chunk framing: one
      // plain write, not a corked writev of two to four (a relayed chunked answer paid ~1 KB of
      // write machinery per chunk that way: docs/benchmarks.md, "pair-alloc").
      const before = this.#chunked ? `${head ?? ''}${bytes.toString(16)}\r\n` : (head as string);
      const at = before.length; // latin1: a byte per character
      const used = at + bytes + (this.#chunked ? 2 : 0);
      const out = Buffer.allocUnsafe(used + (this.#chunked ? LAST_CHUNK.length : 0));
      out.write(before, 0, at, 'latin1');
      if (typeof chunk === 'string') out.write(chunk, at);
      else chunk.copy(out, at);
      if (!this.#chunked) return socket.write(out);
      out.write('\r\n', at + bytes, 'latin1');
      return this.#hold(out, used);
    }
    this.#flushHeld();
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
    const held = this.#held;
    if (this.#chunked && held !== undefined) {
      // The chunk held in this turn and the last-chunk: one write (see #hold).
      this.#held = undefined;
      held.write(LAST_CHUNK, this.#heldBytes, 'latin1');
      socket.write(held);
    } else if (this.#chunked)
      socket.write(head === undefined ? LAST_CHUNK : `${head}${LAST_CHUNK}`, 'latin1');
    else if (head !== undefined) socket.write(head, 'latin1');
    // A body cut short of its content-length: the connection cannot carry another response.
    if (this.#remaining > 0 && !this.#noBody) this.shouldKeepAlive = false;
    this.#conn.responseEnded(this);
    return this;
  }

  /**
   * Holds a framed chunk (the `used` bytes of `out`) to the end of this loop turn's I/O instead
   * of writing it now: when the upstream's last chunk and its end come in one read, as they
   * mostly do, end() sends both in one write, so the client is written to (and woken) once per
   * answer, not twice. Otherwise it goes out alone before the next write, or in the turn's check
   * phase (a setImmediate: a process.nextTick would run between the upstream parser's body and
   * end callbacks, each of which drains the tick queue). Returns false while the socket waits
   * to drain.
   */
  #hold(out: Buffer, used: number): boolean {
    this.#flushHeld();
    this.#held = out;
    this.#heldBytes = used;
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      setImmediate(turnEnded, this);
    }
    return !this.#conn.socket.writableNeedDrain;
  }

  /** The end of the loop turn's I/O in which a chunk was held (#hold): it goes out now. */
  turnEnded(): void {
    this.#flushQueued = false;
    this.#flushHeld();
  }

  /** Writes the chunk #hold holds, if any. */
  #flushHeld(): void {
    const held = this.#held;
    if (held === undefined) return;
    this.#held = undefined;
    const socket = this.#conn.socket;
    if (!socket.destroyed) socket.write(held.subarray(0, this.#heldBytes));
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
