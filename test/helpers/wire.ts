/**
 * @module Test helper: a raw TCP client and the HTTP/1.1 responses it read, parsed strictly off
 * the bytes, for tests that check the exact bytes a server or the gateway wrote.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';

/** A response as the raw client parsed it off the wire. */
export interface WireResponse {
  status: number;
  reason: string;
  headers: [string, string][];
  body: Buffer;
  framing: 'length' | 'chunked' | 'close' | 'none';
  /** The chunk sizes of a chunked body, the final 0 included. */
  chunks: number[];
}

export function header(r: WireResponse, name: string): string | undefined {
  const all = r.headers.filter(([n]) => n.toLowerCase() === name);
  assert.ok(all.length <= 1, `one ${name} header, not ${all.length}`);
  return all[0]?.[1];
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Parses the responses in `buf`, strictly (an AssertionError on anything not well-formed
 * HTTP/1.1 as this server should write it): 1xx interim answers are returned with the finals,
 * `methods` says which requests were HEADs, `closed` whether the bytes end with the connection.
 * Stops at the first incomplete response; `used` is how many bytes the complete ones took.
 */
export function parseResponses(
  buf: Buffer,
  closed: boolean,
  methods: readonly string[] = [],
): { responses: WireResponse[]; finals: number; used: number } {
  const responses: WireResponse[] = [];
  let off = 0;
  let finals = 0;
  while (off < buf.length) {
    const end = buf.indexOf('\r\n\r\n', off, 'latin1');
    if (end < 0) break;
    const [statusLine = '', ...lines] = buf.toString('latin1', off, end).split('\r\n');
    const m = /^HTTP\/1\.1 (\d{3}) ([^\r\n]*)$/.exec(statusLine);
    assert.ok(m, `a status line: ${JSON.stringify(statusLine)}`);
    const headers = lines.map((line): [string, string] => {
      const h = /^([^:]+): (.*)$/.exec(line);
      assert.ok(h && TOKEN.test(h[1] as string), `a header line: ${JSON.stringify(line)}`);
      return [h[1] as string, h[2] as string];
    });
    const r: WireResponse = {
      status: Number(m[1]),
      reason: m[2] as string,
      headers,
      body: Buffer.alloc(0),
      framing: 'none',
      chunks: [],
    };
    let p = end + 4;
    if (r.status >= 100 && r.status < 200) {
      responses.push(r);
      off = p;
      continue;
    }
    const te = header(r, 'transfer-encoding');
    const cl = header(r, 'content-length');
    assert.ok(te === undefined || cl === undefined, 'not both content-length and chunked');
    if (methods[finals] === 'HEAD' || r.status === 204 || r.status === 304) {
      // No body, whatever the head says (RFC 9112 6.3).
    } else if (te !== undefined) {
      assert.equal(te, 'chunked');
      r.framing = 'chunked';
      const parts: Buffer[] = [];
      for (;;) {
        const lineEnd = buf.indexOf('\r\n', p, 'latin1');
        if (lineEnd < 0) return { responses, finals, used: off };
        const size = buf.toString('latin1', p, lineEnd);
        assert.match(size, /^[0-9a-f]+$/, 'a chunk size in hex');
        const n = parseInt(size, 16);
        r.chunks.push(n);
        const data = lineEnd + 2;
        if (buf.length < data + n + 2) return { responses, finals, used: off };
        parts.push(buf.subarray(data, data + n));
        assert.equal(buf.toString('latin1', data + n, data + n + 2), '\r\n', 'CRLF after a chunk');
        p = data + n + 2;
        if (n === 0) break; // no trailers from this server: 0\r\n\r\n
      }
      r.body = Buffer.concat(parts);
    } else if (cl !== undefined) {
      assert.match(cl, /^\d+$/);
      r.framing = 'length';
      const n = Number(cl);
      if (buf.length < p + n) return { responses, finals, used: off };
      r.body = buf.subarray(p, p + n);
      p += n;
    } else {
      if (!closed) return { responses, finals, used: off };
      r.framing = 'close';
      r.body = buf.subarray(p);
      p = buf.length;
    }
    responses.push(r);
    finals++;
    off = p;
  }
  return { responses, finals, used: off };
}

/** A raw TCP client: writes exact bytes, collects every byte back, waits on what it reads. */
export class RawClient {
  readonly socket: Socket;
  data = Buffer.alloc(0);
  closed = false;
  readonly closedPromise: Promise<void>;
  #check: (() => void)[] = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.data = Buffer.concat([this.data, d]);
      this.#wake();
    });
    socket.on('error', () => undefined); // a reset is a close here
    this.closedPromise = new Promise((resolve) =>
      socket.on('close', () => {
        this.closed = true;
        this.#wake();
        resolve();
      }),
    );
  }

  static async connect(port: number, allowHalfOpen = false): Promise<RawClient> {
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen });
    await once(socket, 'connect');
    return new RawClient(socket);
  }

  /**
   * Sends `bytes` on a new connection (`endWrites`: then half-closes it) and answers the first
   * final response; the connection is destroyed after it.
   */
  static async exchange(
    port: number,
    bytes: string | Buffer,
    opts: { allowHalfOpen?: boolean; endWrites?: boolean } = {},
  ): Promise<WireResponse> {
    const c = await RawClient.connect(port, opts.allowHalfOpen);
    await c.write(bytes);
    if (opts.endWrites === true) c.socket.end();
    const [r] = await c.read(1);
    c.socket.destroy();
    assert.ok(r !== undefined);
    return r;
  }

  get text(): string {
    return this.data.toString('latin1');
  }

  write(bytes: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) =>
      this.socket.write(bytes, (err) => (err ? reject(err) : resolve())),
    );
  }

  #wake(): void {
    for (const c of [...this.#check]) c();
  }

  /** Resolves when `ok()` holds; rejects if the connection closes first. */
  until(ok: () => boolean, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        let done = false;
        try {
          done = ok();
        } catch (err) {
          reject(err as Error);
        }
        if (!done && !this.closed) return;
        this.#check = this.#check.filter((c) => c !== check);
        if (done) resolve();
        else reject(new Error(`closed before ${what}; got ${JSON.stringify(this.text)}`));
      };
      this.#check.push(check);
      check();
    });
  }

  responses(methods?: readonly string[]): WireResponse[] {
    return parseResponses(this.data, this.closed, methods).responses;
  }

  /** Waits for `n` final responses (1xx not counted) and answers all parsed so far. */
  async read(n: number, methods?: readonly string[]): Promise<WireResponse[]> {
    await this.until(
      () => parseResponses(this.data, this.closed, methods).finals >= n,
      `${n} responses`,
    );
    return this.responses(methods);
  }

  /** Waits for the connection to close, then checks the bytes are whole responses, and answers them. */
  async readToClose(methods?: readonly string[]): Promise<WireResponse[]> {
    await this.closedPromise;
    const { responses, used } = parseResponses(this.data, true, methods);
    assert.equal(used, this.data.length, `only whole responses: ${JSON.stringify(this.text)}`);
    return responses;
  }
}
