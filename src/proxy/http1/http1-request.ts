/**
 * @module Http1Request: one request of the gateway's downstream HTTP/1.1 server (http1-server.ts),
 * its head as the parser gave it and its body, a Readable made on first use.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { httpError } from './http-error.js';

/**
 * What a request needs of its connection (Http1Connection): the socket, and a way to ask for
 * more of the body. `resumeBody` is called by the body's reader, any number of times; it MUST
 * NOT throw and does nothing when reading is not paused for the body.
 */
export interface RequestConnection {
  readonly socket: Socket;
  resumeBody(): void;
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
  readonly #conn: RequestConnection;

  constructor(conn: RequestConnection) {
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
  readonly #conn: RequestConnection;
  #headers: IncomingHttpHeaders | undefined;
  #body: RequestBody | undefined;
  #bodyState: BodyState = 'arriving';
  /** Why the body was aborted (its stream fails with it). */
  #aborted: Error | undefined;

  constructor(
    conn: RequestConnection,
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
