/**
 * @module A deliberately minimal HTTP/1.1 keep-alive client for load drivers: pre-built request
 * bytes, one request in flight per connection, responses framed by Content-Length. It costs the
 * driver a fraction of undici's CPU per request, which matters when driver and server share 2 cores.
 * It does not support chunked responses, redirects or anything else a real client needs.
 */
import { connect, type Socket } from 'node:net';

interface Pending {
  readonly bytes: Buffer;
  readonly resolve: (status: number) => void;
  readonly reject: (err: Error) => void;
}

/** Idle this long, a connection is replaced before its next request (the sidecar closes at 5 s). */
const IDLE_REOPEN_MS = 4000;

class Conn {
  #socket: Socket;
  readonly #host: string;
  readonly #port: number;
  readonly #onError: (err: Error) => void;
  #buf: Buffer = Buffer.alloc(0);
  #bodyLeft = 0;
  #status = 0;
  #current: Pending | undefined;
  readonly #onIdle: (c: Conn) => void;

  constructor(
    host: string,
    port: number,
    onIdle: (c: Conn) => void,
    onError: (err: Error) => void,
  ) {
    this.#onIdle = onIdle;
    this.#host = host;
    this.#port = port;
    this.#onError = onError;
    this.#socket = this.#open();
  }

  #open(): Socket {
    const socket = connect({ host: this.#host, port: this.#port, noDelay: true });
    // A replaced socket's late events are not the current request's.
    socket.on('data', (chunk: Buffer) => {
      if (this.#socket === socket) this.#onData(chunk);
    });
    socket.on('error', (err) => {
      if (this.#socket !== socket) return;
      this.#current?.reject(err);
      this.#current = undefined;
      this.#onError(err);
    });
    socket.on('close', () => {
      if (this.#socket !== socket) return;
      this.#current?.reject(new Error('connection closed'));
      this.#current = undefined;
    });
    return socket;
  }

  get busy(): boolean {
    return this.#current !== undefined;
  }

  send(p: Pending): void {
    // A server may close an idle keep-alive connection (the sidecar after 5 s); a write to it
    // would never be answered, so open a new one first, as an HTTP client does. A connection
    // idle for nearly that long is replaced too (as undici does ahead of a server's keep-alive
    // timeout): its close may be on the wire, and a write that crosses it is reset.
    const idleMs = performance.now() - this.#lastUsed;
    if (this.#socket.destroyed || idleMs >= IDLE_REOPEN_MS) {
      this.#socket.destroy();
      this.#buf = Buffer.alloc(0);
      this.#bodyLeft = 0;
      this.#socket = this.#open();
    }
    this.#current = p;
    this.#socket.write(p.bytes);
  }

  /** performance.now() when the connection last began or finished a request. */
  #lastUsed = performance.now();

  close(): void {
    this.#socket.destroy();
  }

  #onData(chunk: Buffer): void {
    let data = chunk;
    for (;;) {
      if (this.#bodyLeft > 0) {
        // Body bytes are counted, never copied: only the head is buffered.
        const take = Math.min(this.#bodyLeft, data.length);
        this.#bodyLeft -= take;
        data = data.subarray(take);
        if (this.#bodyLeft > 0) return;
        this.#complete();
      }
      if (data.length === 0) return;
      this.#buf = this.#buf.length === 0 ? data : Buffer.concat([this.#buf, data]);
      data = Buffer.alloc(0);
      const end = this.#buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.#buf.toString('latin1', 0, end);
      this.#status = Number(head.slice(9, 12));
      const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      if (m === null) {
        this.#current?.reject(new Error(`response without content-length: ${head.slice(0, 80)}`));
        this.#current = undefined;
        this.#socket.destroy();
        return;
      }
      data = this.#buf.subarray(end + 4);
      this.#buf = Buffer.alloc(0);
      this.#bodyLeft = Number(m[1]);
      if (this.#bodyLeft === 0) this.#complete();
    }
  }

  #complete(): void {
    this.#lastUsed = performance.now();
    const p = this.#current;
    this.#current = undefined;
    p?.resolve(this.#status);
    this.#onIdle(this);
  }
}

/** A fixed set of keep-alive connections with a FIFO of requests waiting for a free one. */
export class RawHttpPool {
  readonly #idle: Conn[] = [];
  readonly #all: Conn[] = [];
  #queue: Pending[] = [];
  #head = 0;
  readonly host: string;

  /** `host`: the Host header of every request built (default the URL's authority). */
  constructor(url: string, connections: number, host?: string) {
    const u = new URL(url);
    this.host = host ?? u.host;
    for (let i = 0; i < connections; i++) {
      const c = new Conn(
        u.hostname,
        Number(u.port),
        (conn) => this.#release(conn),
        () => undefined,
      );
      this.#all.push(c);
      this.#idle.push(c);
    }
  }

  /** Builds the bytes of a request with no body (or a small one). */
  build(method: string, path: string, body = ''): Buffer {
    const len = Buffer.byteLength(body);
    const ct = len > 0 ? 'content-type: application/json\r\n' : '';
    return Buffer.from(
      `${method} ${path} HTTP/1.1\r\nhost: ${this.host}\r\n${ct}content-length: ${len}\r\n\r\n${body}`,
    );
  }

  /** Sends the bytes on a free connection (or queues them); resolves with the status code. */
  request(bytes: Buffer): Promise<number> {
    return new Promise((resolve, reject) => {
      const p: Pending = { bytes, resolve, reject };
      const c = this.#idle.pop();
      if (c === undefined) this.#queue.push(p);
      else c.send(p);
    });
  }

  close(): void {
    for (const c of this.#all) c.close();
  }

  #release(c: Conn): void {
    const next = this.#queue[this.#head];
    if (next === undefined) {
      this.#idle.push(c);
      return;
    }
    this.#head++;
    // An index instead of shift(): a backlog of thousands stays O(1) per request.
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    c.send(next);
  }
}
