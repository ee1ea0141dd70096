/**
 * @module ProxyListener: one downstream listener of a proxy (the gateway's edge, a sidecar's
 * outbound and inbound ports) on the transports chooseTransports picked: the engine serves its
 * requests and Upgrades, malformed requests get a 400 (over a per-address limit, their
 * connections are dropped without one), and it stops accepting and drains on its own, so one
 * process may close one listener and keep the others. Also the upstream client of those
 * transports (createUpstreamClient).
 */
import { createServer } from 'node:http';
import { Server as NetServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { buildConnector } from 'undici';
import { Agent as UndiciAgent } from '../client/undici.js';
import type {
  ProxyRequest,
  ProxyRequestHead,
  ProxyResponse,
  UpstreamDispatcher,
} from './contract.js';
import type { ProxyEngine } from './engine.js';
import { clientErrorReply, rawReply } from './error-reply.js';
import { Http1Agent } from './http1/http1-agent.js';
import { httpError } from './http1/http-error.js';
import type { UpstreamTlsConnector } from './http1/upstream-connection.js';
import { Http1Server } from './http1/http1-server.js';
import { InboundTlsAcceptor, type InboundTlsOptions } from './mesh-tls.js';
import type { ProxyMetrics } from './proxy-metrics.js';
import type { UpstreamPoolSettings } from './snapshot-routes.js';
import type { TransportOptions } from './transport-choice.js';

/** The settings of an upstream client (the gateway's and the sidecar's options of these names). */
export interface UpstreamClientOptions {
  readonly connectTimeoutMs: number;
  readonly upstreamKeepAliveMs: number;
  /** Connections per origin; 0 = no limit. */
  readonly upstreamConnections: number;
  /** A connection closes after this many requests; absent or 0 = no cap. */
  readonly upstreamMaxRequestsPerConnection?: number;
}

/** An upstream client that can be closed (its keep-alive pools). */
export type ClosableDispatcher = UpstreamDispatcher & { close(): Promise<void> };

/**
 * The upstream client chosen (chooseTransports: undici where native failed its self-test);
 * with `tls`, every connection it opens is made by that connector (mesh mTLS).
 */
export function createUpstreamClient(
  options: UpstreamClientOptions,
  chosen: TransportOptions,
  tls?: UpstreamTlsConnector,
): ClosableDispatcher {
  if (chosen.upstreamClient === 'native') {
    return new Http1Agent({
      connectTimeoutMs: options.connectTimeoutMs,
      keepAliveTimeoutMs: options.upstreamKeepAliveMs,
      connections: options.upstreamConnections,
      maxRequestsPerConnection: options.upstreamMaxRequestsPerConnection ?? 0,
      ...(tls === undefined ? {} : { tls }),
    });
  }
  return new UndiciAgent({
    keepAliveTimeout: options.upstreamKeepAliveMs,
    connect:
      tls === undefined
        ? { timeout: options.connectTimeoutMs }
        : undiciTlsConnect(tls, options.connectTimeoutMs),
    ...(options.upstreamConnections > 0 ? { connections: options.upstreamConnections } : {}),
    ...((options.upstreamMaxRequestsPerConnection ?? 0) > 0
      ? { maxRequestsPerClient: options.upstreamMaxRequestsPerConnection }
      : {}),
  });
}

/** undici's connector over `tls`: the socket once verified, or the attempt's error. */
function undiciTlsConnect(tls: UpstreamTlsConnector, timeoutMs: number): buildConnector.connector {
  return (opts, callback) => {
    const host = opts.hostname.startsWith('[') ? opts.hostname.slice(1, -1) : opts.hostname;
    const socket = tls.connect(host, Number(opts.port) || 80);
    let settled = false;
    const settle = (err: Error | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err === null) callback(null, socket);
      else {
        socket.destroy();
        callback(err, null);
      }
    };
    const timer = setTimeout(
      () => settle(httpError(`connect timeout (${timeoutMs} ms)`, 'UND_ERR_CONNECT_TIMEOUT')),
      timeoutMs,
    );
    // Destroyed meanwhile (a check of the connector's refused it): its error settles.
    socket.once('secureConnect', () => {
      if (!socket.destroyed) settle(null);
    });
    socket.once('error', (err) => settle(tls.failure(socket, err)));
  };
}

/**
 * Upstream clients per pool settings a DestinationRule sets (connectionPool: connect timeout,
 * connections per endpoint, idle timeout), beside the default client: clusters with the same
 * settings share one.
 */
export class UpstreamPools {
  readonly #options: UpstreamClientOptions;
  readonly #chosen: TransportOptions;
  readonly #pools = new Map<string, ClosableDispatcher>();

  constructor(options: UpstreamClientOptions, chosen: TransportOptions) {
    this.#options = options;
    this.#chosen = chosen;
  }

  /**
   * The client with these settings (unset ones: the defaults this was made with); with `tls`,
   * one whose connections that connector makes (`key` names it: one client per key).
   */
  for(
    settings: UpstreamPoolSettings,
    tls?: { readonly key: string; readonly connector: UpstreamTlsConnector },
  ): UpstreamDispatcher {
    const key = JSON.stringify([
      settings.connectTimeoutMs,
      settings.maxConnections ?? null,
      settings.idleTimeoutMs ?? null,
      settings.maxRequestsPerConnection ?? null,
      tls?.key ?? null,
    ]);
    let pool = this.#pools.get(key);
    if (pool === undefined) {
      const o = this.#options;
      pool = createUpstreamClient(
        {
          connectTimeoutMs: settings.connectTimeoutMs,
          upstreamConnections: settings.maxConnections ?? o.upstreamConnections,
          upstreamKeepAliveMs: settings.idleTimeoutMs ?? o.upstreamKeepAliveMs,
          upstreamMaxRequestsPerConnection: settings.maxRequestsPerConnection,
        },
        this.#chosen,
        tls?.connector,
      );
      this.#pools.set(key, pool);
    }
    return pool;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.#pools.values()].map((p) => p.close()));
  }
}

/** `host:port` (IPv6 in brackets) split; the port may be 0 (any free port). */
export function splitHostPort(hp: string): { host: string; port: number } {
  const i = hp.lastIndexOf(':');
  return { host: hp.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(hp.slice(i + 1)) };
}

/** Listens on `host:port` and answers the `http://host:port` actually bound. */
export async function listen(server: Server, hp: string): Promise<string> {
  const { host, port } = splitHostPort(hp);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address() as AddressInfo;
  return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
}

/** The settings of a downstream listener (the gateway's and the sidecar's options of these names). */
export interface ProxyListenerOptions {
  readonly maxHeaderBytes: number;
  readonly downstreamKeepAliveMs: number;
  /** Read per malformed request, so a reload may change it. */
  readonly maxMalformedPerSecond: () => number;
  /**
   * Mesh mTLS on this listener (a sidecar's inbound side): each connection is taken as the
   * mode says (InboundTlsAcceptor); absent: plaintext only, as before.
   */
  readonly inboundTls?: InboundTlsOptions | undefined;
}

/**
 * The downstream server chosen (chooseTransports: node:http where native failed its
 * self-test). Both speak node:http's events: 'request', 'upgrade', 'clientError'.
 */
function createDownstreamServer(
  options: ProxyListenerOptions,
  chosen: TransportOptions,
  onRequest: (req: ProxyRequest, res: ProxyResponse) => void,
): Server & { closeIdleConnections(): void } {
  // Streams may be long (a 1 GB upload): only the head has a deadline.
  const headersTimeoutMs = 30_000;
  if (chosen.downstreamServer === 'native') {
    const server = new Http1Server({
      maxHeaderSize: options.maxHeaderBytes,
      headersTimeoutMs,
      keepAliveTimeoutMs: options.downstreamKeepAliveMs,
    });
    server.on('request', onRequest);
    return server;
  }
  return createServer(
    {
      maxHeaderSize: options.maxHeaderBytes,
      requestTimeout: 0,
      headersTimeout: headersTimeoutMs,
      // The engine applies the Host rules (RFC 9112 3.2) and answers in the proxy's error
      // shape; node:http's own check answers a bare 400, and not to an Upgrade request at all.
      requireHostHeader: false,
      keepAliveTimeout: options.downstreamKeepAliveMs,
    },
    // node:http's request is itself the stream of its body.
    (req, res) => onRequest(Object.assign(req, { body: req }), res),
  );
}

/**
 * One downstream listener serving `engine`. Made once at start; `listen` once; `stopAccepting`
 * and `drain` at shutdown (either order, each idempotent), then `destroy`.
 */
export class ProxyListener {
  readonly #server: Server & { closeIdleConnections(): void };
  /** What listens: the HTTP server itself, or (mTLS) a TCP server handing it connections. */
  readonly #listening: Server;
  readonly #acceptor: InboundTlsAcceptor | undefined;
  /** mTLS: every accepted TCP connection, until it closes (also those not handed over yet). */
  readonly #raw = new Set<Socket>();
  /**
   * mTLS: accepted TCP connections the acceptor has not handed to the HTTP server yet (waiting
   * for their first byte, or in their TLS handshake). The HTTP server does not know them, so
   * the drain counts them itself: one in its handshake carries a request the drain must wait
   * for (its client sends it as soon as the handshake ends).
   */
  readonly #accepting = new Set<Socket>();
  readonly #sockets = new Set<Socket>();
  /** Malformed requests per client address in the current second. */
  #malformed = new Map<string, number>();
  readonly #window: NodeJS.Timeout;
  #stopped = false;

  constructor(
    engine: ProxyEngine,
    metrics: ProxyMetrics,
    options: ProxyListenerOptions,
    chosen: TransportOptions,
  ) {
    const server = createDownstreamServer(options, chosen, (req, res) => {
      if (this.#stopped) res.shouldKeepAlive = false;
      engine.handle(req, res);
    });
    this.#server = server;
    server.on('upgrade', (req: ProxyRequestHead, socket: Socket, head: Buffer) =>
      engine.handleUpgrade(req, socket, head),
    );
    server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      metrics.connectionOpened();
      socket.once('close', () => {
        this.#sockets.delete(socket);
        metrics.connectionClosed();
      });
    });
    // Over the limit, connections from that address are dropped without an answer (a cheap
    // brake on parser fuzzing).
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      const address = socket.remoteAddress ?? '';
      const count = (this.#malformed.get(address) ?? 0) + 1;
      this.#malformed.set(address, count);
      if (
        count > options.maxMalformedPerSecond() ||
        !socket.writable ||
        err.code === 'ECONNRESET'
      ) {
        socket.destroy();
        return;
      }
      rawReply(socket, clientErrorReply(err.code));
    });
    this.#window = setInterval(() => (this.#malformed = new Map()), 1_000);
    this.#window.unref();
    const tls = options.inboundTls;
    if (tls === undefined) {
      this.#listening = server;
      this.#acceptor = undefined;
      return;
    }
    // The HTTP server never listens: it is given the connections the acceptor lets through,
    // TLS sockets (verified) or plaintext ones, as node's https server is given its TLS sockets.
    const handOver = (socket: Socket): void => {
      // A TLS socket made over an accepted one has its peer's address and port: that names it
      // (a plaintext one is the accepted socket itself).
      if (!this.#accepting.delete(socket))
        for (const raw of this.#accepting)
          if (raw.remotePort === socket.remotePort && raw.remoteAddress === socket.remoteAddress) {
            this.#accepting.delete(raw);
            break;
          }
      server.emit('connection', socket);
    };
    const acceptor = new InboundTlsAcceptor(tls, handOver);
    this.#acceptor = acceptor;
    const front = new NetServer({ allowHalfOpen: true, noDelay: true });
    front.on('connection', (raw: Socket) => {
      this.#raw.add(raw);
      this.#accepting.add(raw);
      raw.once('close', () => {
        this.#raw.delete(raw);
        this.#accepting.delete(raw);
      });
      acceptor.accept(raw, handOver);
    });
    this.#listening = front;
  }

  /** Listens on `host:port` (port 0: any free one); answers `http://host:port`. */
  listen(hp: string): Promise<string> {
    return listen(this.#listening, hp);
  }

  /** Open downstream connections. */
  get connections(): number {
    return this.#sockets.size;
  }

  /**
   * Stops accepting connections; idle keep-alive connections close now, busy ones after their
   * current response.
   */
  stopAccepting(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#listening !== this.#server) this.#listening.close();
    this.#server.close();
    this.#closeIdle();
  }

  /**
   * Closes the idle connections: the HTTP server's, and (mTLS) accepted ones whose client has
   * sent nothing yet, as the HTTP server closes a plaintext connection with no request begun.
   * One in its TLS handshake is not idle: its request follows the handshake.
   */
  #closeIdle(): void {
    this.#server.closeIdleConnections();
    for (const raw of this.#accepting) if (raw.bytesRead === 0) raw.destroy();
  }

  /**
   * Stops accepting, then waits until every connection has finished its response and closed,
   * or `deadline` (ms since the epoch, Date.now()) passes. Resolves true when all closed in time.
   * `busy` (default: any connection open, or accepted and not yet handed to the HTTP server)
   * says whether in-flight work remains.
   */
  async drain(
    deadline: number,
    busy: () => boolean = () => this.#sockets.size > 0 || this.#accepting.size > 0,
  ): Promise<boolean> {
    this.stopAccepting();
    while (busy() && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      this.#closeIdle();
    }
    return !busy();
  }

  /** Cuts every connection still open (after drain). */
  destroy(): void {
    this.stopAccepting();
    clearInterval(this.#window);
    this.#acceptor?.close();
    for (const s of this.#sockets) s.destroy();
    for (const s of this.#raw) s.destroy();
  }
}
