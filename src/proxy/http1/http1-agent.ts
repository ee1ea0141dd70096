/**
 * @module Http1Agent: the gateway's upstream HTTP/1.1 client. Keep-alive connection pools per
 * origin, requests written by hand, responses parsed by node's own llhttp parser (the C parser
 * node:http runs on, reached through `_http_common`). It speaks the subset of undici's
 * `Dispatcher` the proxy engine uses: `dispatch(options, handler)` with undici's raw handler
 * interface (onConnect/onHeaders/onData/onComplete/onError), and `close()`.
 *
 * Why not undici: measured by hand on this project's 2-core machine (docs/benchmarks.md,
 * "gateway"), a proxy on node:http plus undici's dispatch costs 43-46 µs of CPU per request
 * whatever it does, against 26-28 µs for node:http plus a minimal client; undici's per-request
 * machinery (its WASM parser, queues, timers), not the syscalls, is the difference, and it caps
 * the gateway below its throughput target. The SDK keeps undici. `isHttp1AgentSupported()` says
 * whether this runtime's parser passed the self-test (native-support.ts); the gateway falls back
 * to undici when it did not.
 */
import type { Dispatcher } from 'undici';
import type { UpstreamDispatcher, UpstreamHandler } from '../contract.js';
import { httpError } from './http-error.js';
import { NATIVE_HTTP1_SUPPORT } from './native-support.js';
import {
  UpstreamConnection,
  UpstreamExchange,
  type UpstreamPool,
  type UpstreamTlsConnector,
} from './upstream-connection.js';

/** Whether this runtime lets the gateway use `Http1Agent` (else it uses undici). */
export function isHttp1AgentSupported(): boolean {
  return NATIVE_HTTP1_SUPPORT.agent === undefined;
}

export interface Http1AgentOptions {
  /** Connect timeout to an upstream instance. */
  readonly connectTimeoutMs: number;
  /** Idle keep-alive connections are closed after this long. */
  readonly keepAliveTimeoutMs: number;
  /** Connections per origin (0 = no limit); requests beyond it wait for a free one. */
  readonly connections: number;
  /** A connection closes after this many requests (0 or absent = no cap). */
  readonly maxRequestsPerConnection?: number;
  /** Largest upstream response head accepted (bytes; 0 = node's default). */
  readonly maxHeaderSize?: number;
  /** false: bytes reach the parser through 'data' events, not natively (see ParserFeed). */
  readonly nativeReads?: boolean;
  /**
   * Present: every connection is TLS, made by it (a sidecar's mTLS to the sidecars of one
   * destination service); origins stay `http:` (the scheme of the request, not of the hop).
   */
  readonly tls?: UpstreamTlsConnector;
}

/** The connections of one origin and the requests waiting for one. */
class OriginPool implements UpstreamPool {
  readonly agent: Http1Agent;
  readonly host: string;
  readonly port: number;
  readonly hostHeader: string;
  readonly tls: UpstreamTlsConnector | undefined;
  readonly #idle: UpstreamConnection[] = [];
  readonly #all = new Set<UpstreamConnection>();
  #queue: UpstreamExchange[] = [];

  constructor(agent: Http1Agent, origin: string) {
    this.agent = agent;
    const u = new URL(origin);
    if (u.protocol !== 'http:') throw new Error(`Http1Agent: only http: origins (${origin})`);
    this.host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
    this.port = u.port === '' ? 80 : Number(u.port);
    this.hostHeader = u.host;
    this.tls = agent.options.tls;
  }

  get size(): number {
    return this.#all.size;
  }

  dispatch(ex: UpstreamExchange): void {
    const conn = this.#idle.pop();
    if (conn !== undefined) conn.send(ex);
    else if (this.agent.options.connections > 0 && this.#all.size >= this.agent.options.connections)
      this.#queue.push(ex);
    else this.#open(ex);
  }

  #open(ex: UpstreamExchange): void {
    const conn = new UpstreamConnection(this);
    this.#all.add(conn);
    conn.send(ex);
  }

  /** The oldest waiting request not ended meanwhile (aborted while it waited). */
  #nextWaiting(): UpstreamExchange | undefined {
    let next = this.#queue.shift();
    while (next?.done === true) next = this.#queue.shift();
    return next;
  }

  /** A connection finished its request and may take another. */
  idle(conn: UpstreamConnection): void {
    const next = this.#nextWaiting();
    if (next !== undefined) {
      conn.send(next);
      return;
    }
    // No timer per request: the agent's sweep closes connections idle past keepAliveTimeoutMs.
    conn.idleSince = performance.now();
    this.#idle.push(conn);
  }

  remove(conn: UpstreamConnection): void {
    this.#all.delete(conn);
    const i = this.#idle.indexOf(conn);
    if (i >= 0) this.#idle.splice(i, 1);
    // A waiting request gets a new connection in place of the closed one.
    if (this.agent.closed) return;
    const next = this.#nextWaiting();
    if (next !== undefined) this.#open(next);
  }

  /** Closes connections idle for `ms` or longer. */
  sweep(now: number, ms: number): void {
    for (const c of [...this.#idle]) if (now - c.idleSince >= ms) c.close();
  }

  closeIdle(): void {
    for (const c of [...this.#idle]) c.close();
    for (const ex of this.#queue) ex.fail(httpError('agent closed', 'UND_ERR_DESTROYED'));
    this.#queue = [];
  }
}

/** Keep-alive HTTP/1.1 pools per origin, for the proxy engine (see the module comment). */
export class Http1Agent implements UpstreamDispatcher {
  readonly options: Http1AgentOptions;
  readonly #pools = new Map<string, OriginPool>();
  closed = false;
  #sweeper: NodeJS.Timeout | undefined;

  constructor(options: Http1AgentOptions) {
    if (!isHttp1AgentSupported()) throw new Error('Http1Agent: node:http parser not available');
    this.options = options;
  }

  /** Starts a request; the handler hears of it through its raw handler methods. */
  dispatch(options: Dispatcher.DispatchOptions, handler: UpstreamHandler): boolean {
    const ex = new UpstreamExchange(options, handler);
    handler.onConnect(ex.abort);
    if (ex.done) return true;
    if (this.closed) {
      ex.fail(httpError('agent closed', 'UND_ERR_DESTROYED'));
      return true;
    }
    const origin = String(options.origin);
    let pool = this.#pools.get(origin);
    if (pool === undefined) {
      this.#startSweeper();
      pool = new OriginPool(this, origin);
      this.#pools.set(origin, pool);
    }
    pool.dispatch(ex);
    return true;
  }

  /**
   * One timer for every idle connection: each sweep closes those idle past keepAliveTimeoutMs,
   * so a connection is closed at most an eighth of the timeout late (keep the timeout below the
   * upstreams' own: node's servers close idle connections after 5 s, the default here is 4 s).
   */
  #startSweeper(): void {
    if (this.#sweeper !== undefined) return;
    const ms = this.options.keepAliveTimeoutMs;
    this.#sweeper = setInterval(
      () => {
        const now = performance.now();
        for (const p of this.#pools.values()) p.sweep(now, ms);
      },
      Math.max(10, Math.min(1_000, ms / 8)),
    );
    this.#sweeper.unref();
  }

  /** Connections open now, over every origin (for tests and metrics). */
  get connections(): number {
    let n = 0;
    for (const p of this.#pools.values()) n += p.size;
    return n;
  }

  /** Closes idle connections now, and busy ones when their request ends. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.#sweeper);
    for (const p of this.#pools.values()) p.closeIdle();
  }
}
