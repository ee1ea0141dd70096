/**
 * @module node's own HTTP/1.1 parser (llhttp, the C parser node:http runs on), reached through
 * `_http_common`, shared by the gateway's upstream client (Http1Agent) and its downstream server
 * (Http1Server). It is a node internal: this module checks its shape once, at load;
 * native-support.ts then parses a sample request and response through it, and the gateway falls
 * back to undici and node:http, with a warning and a metric, when either fails
 * (docs/architecture.md, "How the proxy engine is built").
 */
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';

export interface NodeHttpParser {
  initialize(type: number, resource: object, maxHeaderSize?: number, lenient?: number): void;
  /** Bytes parsed, or the parse error (its `code` is an `HPE_*` one). */
  execute(data: Buffer): number | Error;
  finish(): number | Error | undefined;
  close(): void;
  /** Whether the head of the message begun last is complete (false before any message). */
  headersCompleted(): boolean;
  /** Makes the parser the reader of a stream handle (see ParserFeed), and undoes it. */
  consume(handle: object): void;
  unconsume(): void;
  /** A copy of the bytes of the read being parsed natively (within kOnExecute only). */
  getCurrentBuffer(): Buffer;
  [key: number]: unknown;
}

export interface NodeHttpParserClass {
  new (): NodeHttpParser;
  readonly REQUEST: number;
  readonly RESPONSE: number;
  readonly kOnHeaders: number;
  readonly kOnHeadersComplete: number;
  readonly kOnBody: number;
  readonly kOnMessageComplete: number;
  readonly kOnExecute: number;
}

interface HttpCommon {
  readonly HTTPParser?: unknown;
  readonly methods?: unknown;
}

const common: HttpCommon | undefined = (() => {
  try {
    return createRequire(import.meta.url)('_http_common') as HttpCommon;
  } catch {
    return undefined;
  }
})();

/** node's HTTPParser, if this runtime exposes it with the shape relied on here. */
export const HTTPParser: NodeHttpParserClass | undefined = (() => {
  try {
    const P = common?.HTTPParser as NodeHttpParserClass | undefined;
    if (typeof P !== 'function') return undefined;
    const keys = [
      P.REQUEST,
      P.RESPONSE,
      P.kOnHeaders,
      P.kOnHeadersComplete,
      P.kOnBody,
      P.kOnMessageComplete,
      P.kOnExecute,
    ];
    if (!keys.every((k) => typeof k === 'number')) return undefined;
    const p = new P();
    const methods = [
      'initialize',
      'execute',
      'finish',
      'close',
      'headersCompleted',
      'consume',
      'unconsume',
      'getCurrentBuffer',
    ] as const;
    const shaped = methods.every((m) => typeof p[m] === 'function');
    // The probe is freed at once, not left to the garbage collector.
    if (typeof p.close === 'function') p.close();
    return shaped ? P : undefined;
  } catch {
    return undefined;
  }
})();

/** The method names by the parser's method number (a request head gives the number). */
export const PARSER_METHODS: readonly string[] | undefined = (() => {
  const m = common?.methods;
  return Array.isArray(m) && m.every((x) => typeof x === 'string') ? (m as string[]) : undefined;
})();

/** A head as the parser hands it over, whole (however many parts a long head came in). */
export interface ParsedHead {
  readonly versionMajor: number;
  readonly versionMinor: number;
  /** Name/value pairs as they came, duplicates kept. */
  readonly rawHeaders: string[];
  /** Requests: the method's number (see PARSER_METHODS) and the target. */
  readonly method: number;
  readonly url: string;
  /** Responses: the status and its reason phrase. */
  readonly status: number;
  readonly statusText: string;
  readonly upgrade: boolean;
  readonly keepAlive: boolean;
}

export interface ParserCallbacks {
  /** Answers 0 (a body may follow), 1 (no body: a HEAD answer) or 2 (upgrade: stop here). */
  onHead(head: ParsedHead): number;
  onBody(chunk: Buffer): void;
  onComplete(): void;
}

/**
 * A parser of requests or responses whose `onHead` gets the whole head: node's parser hands a
 * long head over in parts first (kOnHeaders, with headers and url pieces), then the rest with
 * the head's end (kOnHeadersComplete, headers and url undefined when all came in parts).
 * Requires HTTPParser (check NATIVE_HTTP1_SUPPORT, native-support.ts, first); `P` is another
 * parser class only for its self-test.
 */
export function createParser(
  kind: 'request' | 'response',
  maxHeaderSize: number,
  on: ParserCallbacks,
  P: NodeHttpParserClass = HTTPParser as NodeHttpParserClass,
): NodeHttpParser {
  const parser = new P();
  parser.initialize(kind === 'request' ? P.REQUEST : P.RESPONSE, {}, maxHeaderSize, 0);
  let parts: string[] = [];
  let urlParts = '';
  parser[P.kOnHeaders] = (headers: string[], url: string) => {
    for (const h of headers) parts.push(h);
    urlParts += url;
  };
  parser[P.kOnHeadersComplete] = (
    versionMajor: number,
    versionMinor: number,
    headers: string[] | undefined,
    method: number,
    url: string | undefined,
    status: number,
    statusText: string,
    upgrade: boolean,
    keepAlive: boolean,
  ): number => {
    let rawHeaders = headers ?? [];
    if (parts.length > 0) {
      rawHeaders = headers === undefined ? parts : [...parts, ...headers];
      parts = [];
    }
    const target = url ?? urlParts;
    urlParts = '';
    return on.onHead({
      versionMajor,
      versionMinor,
      rawHeaders,
      method,
      url: target,
      status,
      statusText,
      upgrade,
      keepAlive,
    });
  };
  parser[P.kOnBody] = (chunk: Buffer) => on.onBody(chunk);
  parser[P.kOnMessageComplete] = () => on.onComplete();
  return parser;
}

/**
 * Frees a parser once the current execute() has returned. Never inside one of its own
 * callbacks (a close may be reached from one): that is a use-after-free in native code.
 */
export function closeParserLater(parser: NodeHttpParser): void {
  setImmediate(() => {
    parser.unconsume();
    parser.close();
  });
}

/** The part of node's TCP handle (a StreamBase) a ParserFeed drives. */
interface StreamHandle {
  readonly isStreamBase?: boolean;
  /** net.Socket's own record of whether the handle reads (it starts reading when false). */
  reading?: boolean;
  readStart(): number;
  readStop(): number;
}

/**
 * How a socket's bytes reach its parser. Natively where node's handle allows it, as node:http
 * does (`parser.consume`): each read goes from libuv into llhttp in C++, with no Buffer, stream
 * push or 'data' event in JavaScript, which measured 8-13% of the gateway's CPU per request
 * (docs/benchmarks.md, "gateway"). Else through the socket's 'data' events. Either way
 * `onParsed` hears, after each read, what execute() returned: the bytes parsed (fewer than
 * read when the parser stopped for an Upgrade: see `bytes()`) or the parse error. The socket's
 * end, errors and close are its own events, as before.
 *
 * Reading is paused and resumed here, not with socket.pause(): a natively read socket's
 * bytes never pass through its stream, whose pause would not hold them back.
 */
export class ParserFeed {
  readonly #socket: Socket;
  readonly #parser: NodeHttpParser;
  /** The handle the parser reads natively (undefined: 'data' events). */
  #handle: StreamHandle | undefined;
  #data: Buffer | undefined;
  #paused = false;

  constructor(
    socket: Socket,
    parser: NodeHttpParser,
    onParsed: (r: number | Error) => void,
    options: { readonly native?: boolean } = {},
  ) {
    this.#socket = socket;
    this.#parser = parser;
    this.#onParsed = onParsed;
    // Also keeps the socket flowing, which its 'end' event needs when the bytes go natively.
    socket.on('data', (data: Buffer) => {
      this.#data = data;
      try {
        onParsed(parser.execute(data));
      } finally {
        this.#data = undefined;
      }
      // Bytes that were in the stream already are parsed: the rest may go natively.
      if (this.#deferred !== undefined && socket.readableLength === 0 && !this.#paused)
        this.#consume(this.#deferred);
    });
    const handle = (socket as unknown as { _handle?: StreamHandle | null })._handle;
    if (options.native !== false && handle?.isStreamBase === true) {
      // Bytes already read into the stream (the first byte a PERMISSIVE mTLS listener looked at
      // to tell TLS from plaintext, mesh-tls.ts) come as 'data' first: reading natively now
      // would pass them by.
      if (socket.readableLength === 0) this.#consume(handle);
      else this.#deferred = handle;
    }
  }

  readonly #onParsed: (r: number | Error) => void;
  /** A handle to read natively once the bytes buffered in the stream are parsed. */
  #deferred: StreamHandle | undefined;

  #consume(handle: StreamHandle): void {
    this.#deferred = undefined;
    const socket = this.#socket as unknown as { _handle?: StreamHandle | null };
    if (socket._handle !== handle || this.#socket.destroyed) return;
    this.#parser.consume(handle);
    this.#handle = handle;
    this.#parser[(HTTPParser as NodeHttpParserClass).kOnExecute] = this.#onParsed;
  }

  /** Reading is paused (by pause(), until resume()). */
  get paused(): boolean {
    return this.#paused;
  }

  /** The bytes of the read just parsed; valid only within `onParsed`. */
  bytes(): Buffer {
    return this.#data ?? this.#parser.getCurrentBuffer();
  }

  /** Stops reading (backpressure): bytes wait in the kernel. */
  pause(): void {
    this.#setReading(false);
  }

  resume(): void {
    this.#setReading(true);
  }

  #setReading(on: boolean): void {
    if (this.#paused !== on) return;
    this.#paused = !on;
    const h = this.#live();
    if (h !== undefined) {
      h.reading = on;
      if (on) h.readStart();
      else h.readStop();
    } else if (this.#handle === undefined) {
      if (on) this.#socket.resume();
      else this.#socket.pause();
    }
  }

  /**
   * Hands the socket's bytes back to its stream ('data' events, reading on): for the tunnel of
   * an Upgrade. The feed's 'data' listener is the caller's to remove.
   */
  release(): void {
    this.resume();
    this.#deferred = undefined;
    if (this.#handle === undefined) return;
    this.#handle = undefined;
    this.#parser.unconsume();
  }

  /** The natively read handle, while it is the socket's and open. */
  #live(): StreamHandle | undefined {
    const h = this.#handle;
    const socket = this.#socket as unknown as { _handle?: StreamHandle | null };
    return h !== undefined && socket._handle === h && !this.#socket.destroyed ? h : undefined;
  }
}
