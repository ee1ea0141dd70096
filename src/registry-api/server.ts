/**
 * @module The agent's HTTP server: native /api/v1, the Consul-compatible /v1, agent health,
 * metrics; errors mapped once per API.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { Registry as PromRegistry } from 'prom-client';
import { errors } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type { AgentMember } from '../protocol/api-types.js';
import { LIMITS } from '../protocol/limits.js';
import type { Registry } from '../registry/registry.js';
import { logsAsError, toHttpError } from './error-mapping.js';
import { registerConsulRoutes, type ConsulRoutesOptions } from './consul/consul-routes.js';
import { registerNativeRoutes } from './native/native-routes.js';

export interface ApiServerOptions {
  readonly registry: Registry;
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
}

/** Builds the HTTP server (not listening yet). */
export function createApiServer(options: ApiServerOptions): FastifyInstance {
  const log = (options.logger ?? silentLogger).child({ component: 'registry-api' });
  const app = Fastify({
    logger: false,
    bodyLimit: LIMITS.maxBodyBytes,
    // Catalog ids may contain ':' and '.', and keys contain '/'; keep paths verbatim.
    routerOptions: { ignoreTrailingSlash: false, maxParamLength: 1024 },
    // On close, Node closes idle keep-alive connections and waits for in-flight requests; the
    // agent drains long-lived ones (blocking queries, streams) first, and its shutdown deadline
    // bounds the rest.
    return503OnClosing: true,
    forceCloseConnections: false,
  });

  // Every body arrives as raw bytes whatever its Content-Type; routes decide how to parse it.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err, req, reply) => {
    const { status, body } = toHttpError(err);
    if (logsAsError(err, status))
      log.error({ err, method: req.method, url: req.url }, 'request failed');
    else log.debug({ method: req.method, url: req.url, code: body.error.code }, 'request refused');
    void reply
      .status(status)
      .header('content-type', 'application/json; charset=utf-8')
      .send(JSON.stringify(body));
  });
  app.setNotFoundHandler((req, reply) => {
    const { status, body } = toHttpError(
      errors.routeNotFound(req.method, req.url.split('?')[0] ?? ''),
    );
    void reply
      .status(status)
      .header('content-type', 'application/json; charset=utf-8')
      .send(JSON.stringify(body));
  });

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
      ...options.consul,
      registry: options.registry,
      logger: log,
      metrics: options.metrics,
    });
  }
  return app;
}
