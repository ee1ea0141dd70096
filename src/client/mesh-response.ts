/**
 * @module MeshResponse: what `client.fetch` answers. A real `Response` (`instanceof Response`,
 * every member works), built cheaply: undici's Response puts every body behind a web
 * ReadableStream, which costs ~25 µs per response on Node 20, more than the whole rest of a
 * call. A MeshResponse keeps the bytes (or the Node stream) itself and builds the web stream, the
 * Headers object or a plain Response only when something asks for them.
 *
 * It also reads the response off the connection itself (`MeshResponseHandler`, an undici
 * dispatch handler), so no undici `request()` body stream is created either.
 */
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';

type HeaderMap = Record<string, string | string[] | undefined>;

/** A response body: whole bytes, or a Node stream still arriving. */
type Payload = Uint8Array | Readable | null;

/**
 * The Response that `client.fetch` resolves with; see the module comment. It extends the global
 * `Response` (Node's own fetch), so `instanceof Response` holds in application code and
 * frameworks; undici's npm package has a Response class of its own.
 */
export class MeshResponse extends globalThis.Response {
  readonly #rawHeaders: HeaderMap;
  #headers: Headers | undefined;
  #payload: Payload;
  #used = false;
  #web: ReadableStream<Uint8Array> | null | undefined;
  readonly #url: string;

  constructor(
    status: number,
    statusText: string,
    headers: HeaderMap,
    payload: Payload,
    url: string,
  ) {
    super(null, { status, statusText });
    this.#rawHeaders = headers;
    this.#payload = payload;
    this.#url = url;
  }

  /*
   * undici's types declare Response's members as properties, so TypeScript refuses accessor and
   * method overrides in the class body; they are defined on the prototype here instead (a static
   * block can reach the private state).
   */
  static {
    const proto = this.prototype;
    const define = (name: string, descriptor: PropertyDescriptor): void => {
      Object.defineProperty(proto, name, { configurable: true, ...descriptor });
    };
    define('headers', {
      get: function (this: MeshResponse) {
        return this.#headersObject();
      },
    });
    define('url', {
      get: function (this: MeshResponse) {
        return this.#url;
      },
    });
    define('bodyUsed', {
      get: function (this: MeshResponse) {
        return this.#used;
      },
    });
    define('body', {
      get: function (this: MeshResponse) {
        return this.#webBody();
      },
    });
    define('arrayBuffer', {
      value: async function (this: MeshResponse): Promise<ArrayBuffer> {
        const b = await this.#bytes();
        return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
      },
    });
    define('bytes', {
      value: function (this: MeshResponse) {
        return this.#bytes();
      },
    });
    define('text', {
      value: async function (this: MeshResponse): Promise<string> {
        return Buffer.from(await this.#bytes()).toString('utf8');
      },
    });
    define('json', {
      value: async function (this: MeshResponse): Promise<unknown> {
        return JSON.parse(Buffer.from(await this.#bytes()).toString('utf8')) as unknown;
      },
    });
    define('blob', {
      value: async function (this: MeshResponse): Promise<Blob> {
        return new Blob([await this.#bytes()], {
          type: this.#headersObject().get('content-type') ?? '',
        });
      },
    });
    define('formData', {
      value: async function (this: MeshResponse) {
        return (await this.#plain()).formData();
      },
    });
    define('clone', {
      value: function (this: MeshResponse) {
        return this.#clone();
      },
    });
  }

  #headersObject(): Headers {
    if (this.#headers === undefined) {
      const h = new Headers();
      for (const [k, v] of Object.entries(this.#rawHeaders)) {
        if (Array.isArray(v)) for (const one of v) h.append(k, one);
        else if (v !== undefined) h.append(k, v);
      }
      this.#headers = h;
    }
    return this.#headers;
  }

  /** The body as a web stream, made on first access. */
  #webBody(): ReadableStream<Uint8Array> | null {
    if (this.#web !== undefined) return this.#web;
    const p = this.#payload;
    if (p === null) this.#web = null;
    else if (p instanceof Readable) this.#web = Readable.toWeb(p) as ReadableStream<Uint8Array>;
    else this.#web = new Blob([p]).stream() as ReadableStream<Uint8Array>;
    return this.#web;
  }

  #clone(): MeshResponse {
    if (this.#used) throw new TypeError('Response.clone: the body has already been read');
    const p = this.#payload;
    if (p instanceof Readable) {
      // Tee the Node stream: both copies read every chunk.
      const [a, b] = [new Readable({ read() {} }), new Readable({ read() {} })];
      p.on('data', (c: Buffer) => (a.push(c), b.push(c)));
      p.on('end', () => (a.push(null), b.push(null)));
      p.on('error', (e) => (a.destroy(e), b.destroy(e)));
      this.#payload = a;
      return new MeshResponse(this.status, this.statusText, this.#rawHeaders, b, this.#url);
    }
    return new MeshResponse(this.status, this.statusText, this.#rawHeaders, p, this.#url);
  }

  async #bytes(): Promise<Uint8Array> {
    if (this.#used || this.#web !== undefined)
      throw new TypeError('Body is unusable: the body has already been read');
    this.#used = true;
    const p = this.#payload;
    if (p === null) return new Uint8Array(0);
    if (!(p instanceof Readable)) return p;
    const chunks: Buffer[] = [];
    for await (const c of p) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  /** A plain undici Response with the same status, headers and body (for the rare members). */
  async #plain(): Promise<Response> {
    return new Response(await this.#bytes(), {
      status: this.status,
      statusText: this.statusText,
      headers: this.headers,
    });
  }
}

/** Response bodies up to this size (and of known length) are collected before resolving. */
export const SMALL_BODY_BYTES = 64 * 1024;

const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

/**
 * Reads one response off an undici dispatch into a MeshResponse: a small body of known length is
 * collected whole, any other streams through a Node Readable with backpressure.
 */
export class MeshResponseHandler implements Dispatcher.DispatchHandler {
  readonly #resolve: (r: unknown) => void;
  readonly #reject: (e: Error) => void;
  readonly #head: boolean;
  readonly #url: string;
  #controller: Dispatcher.DispatchController | undefined;
  #chunks: Buffer[] | undefined;
  #stream: Readable | undefined;
  #status = 0;
  #statusText = '';
  #headers: HeaderMap = {};
  #settled = false;
  /** Resolves once the response ended or failed, body included (for the caller's cleanup). */
  readonly settled: Promise<void>;
  #done!: () => void;

  constructor(
    method: string,
    url: string,
    resolve: (r: unknown) => void,
    reject: (e: Error) => void,
  ) {
    this.#head = method === 'HEAD';
    this.#url = url;
    this.#resolve = resolve;
    this.#reject = reject;
    this.settled = new Promise((r) => (this.#done = r));
  }

  /** Aborts the request (the caller's AbortSignal). */
  abort(reason: Error): void {
    this.#controller?.abort(reason);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: HeaderMap,
    statusMessage?: string,
  ): void {
    this.#status = statusCode;
    this.#statusText = statusMessage ?? '';
    this.#headers = headers;
    if (this.#head || NULL_BODY_STATUSES.has(statusCode)) return;
    const length = Number(headers['content-length']);
    if (length <= SMALL_BODY_BYTES) {
      this.#chunks = [];
      return;
    }
    // Large or of unknown length: stream it, pausing the socket while the reader is behind.
    const stream = new Readable({ read: () => controller.resume() });
    this.#stream = stream;
    this.#settle(new MeshResponse(statusCode, this.#statusText, headers, stream, this.#url));
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#chunks !== undefined) this.#chunks.push(chunk);
    else if (this.#stream !== undefined && !this.#stream.push(chunk)) controller.pause();
  }

  onResponseEnd(): void {
    this.#done();
    if (this.#stream !== undefined) {
      this.#stream.push(null);
      return;
    }
    const chunks = this.#chunks;
    const payload =
      chunks === undefined
        ? null
        : chunks.length === 1
          ? (chunks[0] as Buffer)
          : Buffer.concat(chunks);
    this.#settle(
      new MeshResponse(this.#status, this.#statusText, this.#headers, payload, this.#url),
    );
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.#done();
    if (this.#stream !== undefined) this.#stream.destroy(err);
    if (this.#settled) return;
    this.#settled = true;
    this.#reject(err);
  }

  #settle(r: MeshResponse): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#resolve(r);
  }
}
