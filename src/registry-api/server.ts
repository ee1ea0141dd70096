/**
 * @module The agent's HTTP server: native /api/v1, the Consul-compatible /v1, the
 * Eureka-compatible /eureka, agent health, metrics; errors mapped once per API.
 */
import type { Socket } from 'node:net';
import { STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, Server as HttpsServer } from 'node:https';
import type { SecureContextOptions, TlsOptions } from 'node:tls';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Registry as PromRegistry } from 'prom-client';
import { errors } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type { AgentMember } from '../protocol/api-types.js';
import { LIMITS } from '../protocol/limits.js';
import type { CatalogFacade } from '../registry/catalog-facade.js';
import { clientErrorOf, logsAsError, toHttpError } from './error-mapping.js';
import {
  registerConsulRoutes,
  sendConsulError,
  type ConsulRoutesOptions,
} from './consul/consul-routes.js';
import { registerEurekaRoutes, type EurekaRoutesOptions } from './eureka/eureka-routes.js';
import { registerNativeRoutes } from './native/native-routes.js';
import { createRequestGuard, type RequestGuardOptions } from './request-guard.js';
import type { AclSystem } from '../registry/acl/acl-system.js';
import { ACLS_DISABLED } from '../registry/acl/acl-contract.js';
import { ACL_CLASSIFIED_ROUTES, aclRouteRules } from './acl/acl-route-rules.js';
import { installRequestAcl, type ApiAclResolver } from './acl/request-acl.js';
import { installAuditLog, type AuditSink } from './audit-log.js';
import { createConnectionCap } from './connection-cap.js';

export interface ApiServerOptions {
  readonly registry: CatalogFacade;
  readonly metrics: PromRegistry;
  readonly logger?: Logger;
  /** Extra readiness condition (e.g. the store is reachable). */
  readonly isReady?: () => boolean;
  /** Why the agent is not ready (e.g. "disk full"); answered as `status: degraded` with it. */
  readonly notReadyReason?: () => string | undefined;
  /** The agents of the cluster (just this one outside cluster mode). */
  readonly members: () => Promise<readonly AgentMember[]>;
  /** Serve the Consul-compatible API under /v1 (omitted: no /v1 routes). */
  readonly consul?: Omit<ConsulRoutesOptions, 'registry' | 'logger' | 'metrics'>;
  /** Serve the Eureka-compatible API under /eureka/v2 and /eureka (omitted: no such routes). */
  readonly eureka?: Omit<EurekaRoutesOptions, 'registry' | 'logger' | 'metrics'>;
  /**
   * The Hosts and browser Origins the API answers (docs/api.md, "Who may call the API").
   * Omitted: IP addresses and localhost only, and no other origin.
   */
  readonly access?: RequestGuardOptions;
  /**
   * More routes (the control plane's push endpoints), registered after the request guard and
   * the error handlers, so the Host and Origin rules and the error shapes apply to them too.
   * Each runs once, while the server starts (`listen` or `ready`), in a child context.
   */
  readonly plugins?: readonly ((app: FastifyInstance) => void | Promise<void>)[];
  /**
   * Registry ACLs (docs/security.md, "Registry ACLs"): the resolver every request's token goes
   * through, and the system behind /v1/acl. Omitted: ACLs off.
   */
  readonly acl?: ApiAclResolver & Partial<Pick<AclSystem, 'bootstrap'>>;
  /** Where every write is audited (omitted: no audit log). */
  readonly audit?: AuditSink;
  /** Concurrent connections one client IP may hold (0 or omitted: no cap). */
  readonly httpMaxConnsPerClient?: number;
  /**
   * Serve HTTPS instead of HTTP on the server `listen` opens (the agent's `http: off`); an HTTPS
   * listener beside a plain one is {@link addHttpsListener}'s.
   */
  readonly https?: ApiTlsOptions;
}

/**
 * The API's TLS: its certificate and key (PEM), and for client verification the CAs to check
 * client certificates against with `requestCert` and `rejectUnauthorized` (the agent's
 * `tls.verifyIncoming`).
 */
export type ApiTlsOptions = Pick<
  TlsOptions,
  'cert' | 'key' | 'ca' | 'requestCert' | 'rejectUnauthorized'
>;

/** What node's server takes for every listener of the API, plain or TLS. */
const SERVER_OPTIONS = Object.freeze({
  // Missing Host is refused by the request guard, in the API's error shape.
  requireHostHeader: false,
  maxHeaderSize: LIMITS.maxHeaderBytes,
});
/** fastify's own default for the servers it makes; an HTTPS listener of ours gets the same. */
const KEEP_ALIVE_TIMEOUT_MS = 72_000;

type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** An HTTPS server with the API's server options, handing requests to `handler`. */
function apiHttpsServer(tls: ApiTlsOptions, handler: RequestHandler): HttpsServer {
  const server = createHttpsServer({ ...SERVER_OPTIONS, ...tls }, handler);
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  return server;
}

/** Headers a page allowed by `allowedOrigins` may read and send (CORS). */
const CORS_EXPOSED = 'x-meshwork-index, x-consul-index, x-consul-knownleader, x-consul-lastcontact';
const CORS_ALLOWED_HEADERS = 'content-type, x-consul-token, authorization';
const CORS_METHODS = 'GET, PUT, POST, DELETE';
const CORS_MAX_AGE_S = '600';

/**
 * The JSON error answer of the native API, or Consul's plain text under /v1 (a 404 with
 * `X-Consul-Index`: `index`).
 */
function sendError(req: FastifyRequest, reply: FastifyReply, err: unknown, index = 1): void {
  if (/^\/v1(?:[/?]|$)/.test(req.url)) {
    sendConsulError(reply, err, index);
    return;
  }
  const { body, status } = toHttpError(err);
  void reply
    .status(status)
    .header('content-type', 'application/json; charset=utf-8')
    .send(JSON.stringify(body));
}

/**
 * Answers a parse error of node's HTTP parser (431, 414, 501, a body cut short...) in the
 * native API's JSON shape, then closes the connection: the parser cannot go on after one.
 */
function answerClientError(
  err: Error & { code?: string; rawPacket?: unknown; bytesParsed?: number },
  socket: Socket,
): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  // A response object on the socket (node's own socketOnError reads this too) means the head was
  // parsed and its body was being read. Its answer was not started: a response is written only
  // once the body has been read.
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (inFlight?.headersSent === true) {
    socket.destroy();
    return;
  }
  const { status, body } = toHttpError(clientErrorOf(err, inFlight !== undefined));
  const text = JSON.stringify(body);
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
      `content-type: application/json; charset=utf-8\r\n` +
      `content-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`,
    () => socket.destroy(),
  );
}

/**
 * Tracks the connections of `server` and the requests in flight on each; the answer closes every
 * connection with none in flight. Node's own close() ends idle keep-alive connections, but not
 * one that never carried a request (a client pool's spare connection): that one held the close
 * for the keep-alive timeout, ~70 s. Used by the API's server and by the HTTPS listener beside it.
 */
function idleConnectionCloser(server: Server | HttpsServer): () => void {
  const sockets = new Map<Socket, number>();
  let closing = false;
  const track = (socket: Socket): void => {
    // A TLS handshake that completes once the close began (TLS 1.3: the client is done before
    // the server is) brings a connection with nothing in flight: closed at once.
    if (closing) {
      socket.destroy();
      return;
    }
    sockets.set(socket, 0);
    socket.once('close', () => sockets.delete(socket));
  };
  server.on(server instanceof HttpsServer ? 'secureConnection' : 'connection', track);
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    const n = sockets.get(socket);
    if (n === undefined) return;
    sockets.set(socket, n + 1);
    res.once('close', () => {
      const left = sockets.get(socket);
      if (left !== undefined) sockets.set(socket, left - 1);
    });
  });
  return () => {
    closing = true;
    for (const [socket, inFlight] of sockets) if (inFlight === 0) socket.destroy();
  };
}

/** The connection cap of each API server, for the HTTPS listener added beside it. */
const connectionCaps = new WeakMap<FastifyInstance, (server: HttpsServer) => void>();

/**
 * Adds an HTTPS listener serving the same routes as `app` (its hooks, guard and error shapes
 * too), beside the one `app.listen` opens; call it before the app starts. It stops accepting
 * when `app` closes and `app.close()` waits for its connections as for the main server's. The
 * caller listens on it once `app` is ready (`await app.ready()`), and may swap its certificate
 * with `setSecureContext`.
 */
export function addHttpsListener(app: FastifyInstance, options: ApiTlsOptions): HttpsServer {
  const server = apiHttpsServer(options, (req, res) => app.routing(req, res));
  server.on('clientError', answerClientError);
  // The per-client connection cap counts this listener's connections with the main one's.
  connectionCaps.get(app)?.(server);
  let closed: Promise<void> = Promise.resolve();
  const closeIdle = idleConnectionCloser(server);
  app.addHook('preClose', (done) => {
    if (server.listening) closed = new Promise<void>((resolve) => server.close(() => resolve()));
    closeIdle();
    done();
  });
  app.addHook('onClose', async () => {
    await closed;
  });
  return server;
}

/** The new certificate (and client CAs) for an HTTPS server's new connections. */
export function setApiTls(server: HttpsServer, options: ApiTlsOptions): void {
  server.setSecureContext(options as SecureContextOptions);
}

/** Builds the HTTP server (not listening yet). */
export function createApiServer(options: ApiServerOptions): FastifyInstance {
  const log = (options.logger ?? silentLogger).child({ component: 'registry-api' });
  const httpsOnly = options.https;
  const app = Fastify({
    logger: false,
    bodyLimit: LIMITS.maxBodyBytes,
    // Catalog ids may contain ':' and '.', and keys contain '/'; keep paths verbatim.
    routerOptions: { ignoreTrailingSlash: false, maxParamLength: LIMITS.maxParamLength },
    http: SERVER_OPTIONS,
    // HTTPS only: the server fastify listens with is ours, over TLS (fastify types its instance
    // by the server kind; the API is the same on both).
    ...(httpsOnly === undefined
      ? {}
      : { serverFactory: (handler: RequestHandler) => apiHttpsServer(httpsOnly, handler) }),
    clientErrorHandler: answerClientError,
    frameworkErrors: (err, req, reply) => sendError(req, reply, err),
    // On close, Node closes idle keep-alive connections and waits for in-flight requests; the
    // agent drains long-lived ones (blocking queries, streams) first, and its shutdown deadline
    // bounds the rest. Requests that still arrive get a 503 from the guard hook below, in the
    // API's error shape (fastify's own 503 has a shape of its own).
    return503OnClosing: false,
    forceCloseConnections: false,
  });

  const cap = createConnectionCap(options.httpMaxConnsPerClient ?? 0, options.metrics);
  cap?.(app.server);
  if (cap !== undefined) connectionCaps.set(app, cap);

  // Every body arrives as raw bytes whatever its Content-Type; routes decide how to parse it.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err, req, reply) => {
    const { status, body } = toHttpError(err);
    if (logsAsError(err, status))
      log.error({ err, method: req.method, url: req.url }, 'request failed');
    else log.debug({ method: req.method, url: req.url, code: body.error.code }, 'request refused');
    sendError(req, reply, err, options.registry.index);
  });
  app.setNotFoundHandler((req, reply) => {
    sendError(
      req,
      reply,
      errors.routeNotFound(req.method, req.url.split('?')[0] ?? ''),
      options.registry.index,
    );
  });

  // Before any route (and the /v1 scope, which inherits it): a refusal goes to the route's error
  // handler, so it comes back in that API's error shape.
  const guard = createRequestGuard(
    options.access ?? { allowedHosts: [], allowedOrigins: [], knownNames: [] },
  );
  let closing = false;
  const closeIdle = idleConnectionCloser(app.server);
  app.addHook('preClose', (done) => {
    closing = true;
    closeIdle();
    done();
  });
  app.addHook('onRequest', (req, reply, done) => {
    const verdict = closing ? { error: errors.shuttingDown() } : guard(req.raw);
    if (verdict.error !== undefined) {
      // Refused before its body was read: close rather than read (and drop) the body (and, when
      // shutting down, the connection is to go anyway).
      void reply.header('connection', 'close');
      done(verdict.error);
      return;
    }
    if (verdict.corsOrigin === undefined) {
      done();
      return;
    }
    void reply
      .header('access-control-allow-origin', verdict.corsOrigin)
      .header('access-control-expose-headers', CORS_EXPOSED)
      .header('vary', 'origin');
    if (req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined) {
      // A CORS preflight: answered here, for every path.
      void reply
        .status(204)
        .header('access-control-allow-methods', CORS_METHODS)
        .header('access-control-allow-headers', CORS_ALLOWED_HEADERS)
        .header('access-control-max-age', CORS_MAX_AGE_S)
        .send();
      return;
    }
    done();
  });

  // After the guard: resolves each request's token and applies the URL-decided checks.
  installRequestAcl(app, options.acl ?? ACLS_DISABLED, aclRouteRules(options.registry), {
    classified: ACL_CLASSIFIED_ROUTES,
    // A route no one decided the ACL rights of: it answers any token (see acl-route-rules.ts).
    onUnclassified: (routes) => log.warn({ routes }, 'API routes without an ACL rule'),
  });
  if (options.audit !== undefined) installAuditLog(app, options.audit);

  app.get('/health/live', async () => ({ status: 'live' }));
  app.get('/health/ready', async (_req, reply) => {
    if (options.isReady?.() ?? true) return reply.status(200).send({ status: 'ready' });
    const reason = options.notReadyReason?.();
    return reply
      .status(503)
      .send(reason === undefined ? { status: 'not ready' } : { status: 'degraded', reason });
  });
  app.get('/metrics', async (_req, reply) => {
    const text = await options.metrics.metrics();
    return reply.header('content-type', options.metrics.contentType).send(text);
  });

  registerNativeRoutes(app, { registry: options.registry, members: options.members });
  if (options.consul !== undefined) {
    registerConsulRoutes(app, {
      members: options.members,
      ...options.consul,
      registry: options.registry,
      logger: log,
      metrics: options.metrics,
      ...(isAclSystem(options.acl) ? { acl: options.acl } : {}),
    });
  }
  if (options.eureka !== undefined) {
    registerEurekaRoutes(app, {
      ...options.eureka,
      registry: options.registry,
      logger: log,
      metrics: options.metrics,
    });
  }
  for (const plugin of options.plugins ?? []) {
    void app.register(async (child) => {
      await plugin(child);
    });
  }
  return app;
}

function isAclSystem(acl: ApiAclResolver | undefined): acl is AclSystem {
  return acl !== undefined && typeof (acl as Partial<AclSystem>).bootstrap === 'function';
}
