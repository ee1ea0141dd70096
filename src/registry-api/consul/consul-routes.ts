/**
 * @module The Consul-compatible HTTP API under /v1: an adapter over the same catalog as the
 * native API (shared/docs/consul-api.md is the wire spec; docs/consul-compatibility.md lists
 * what differs). Errors are plain text with Consul's status codes, mapped in one place.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Registry as PromRegistry } from 'prom-client';
import { systemClock, type Clock } from '../../core/clock.js';
import { ERROR_CODES, isMeshError } from '../../core/errors.js';
import { silentLogger, type Logger } from '../../core/logger.js';
import type { AclSystem } from '../../registry/acl/acl-system.js';
import type { CatalogFacade } from '../../registry/catalog-facade.js';
import { logsAsError, toHttpError } from '../error-mapping.js';
import { registerConsulAclRoutes } from './consul-acl-routes.js';
import { registerConsulAgentInfoRoutes } from './consul-agent-info-routes.js';
import { registerConsulAgentRoutes } from './consul-agent-routes.js';
import { registerConsulCatalogRoutes } from './consul-catalog-routes.js';
import { createConsulCheckWrites } from './consul-checks.js';
import { createConsulContext } from './consul-context.js';
import { registerConsulCoordinateRoutes } from './consul-coordinate-routes.js';
import { registerConsulEventRoutes } from './consul-event-routes.js';
import { registerConsulHealthRoutes } from './consul-health-routes.js';
import { registerConsulIntentionRoutes } from './consul-intention-routes.js';
import { registerConsulKvRoutes } from './consul-kv-routes.js';
import {
  registerConsulOperatorRoutes,
  type ConsulOperatorOptions,
} from './consul-operator-routes.js';
import { registerConsulQueryRoutes } from './consul-query-routes.js';
import { registerConsulSessionRoutes } from './consul-session-routes.js';
import type { ConsulNodeInfo } from './consul-shapes.js';
import { ConsulRouter } from './consul-router.js';
import { registerConsulStatusRoutes } from './consul-status-routes.js';
import { registerConsulTxnRoutes } from './consul-txn-routes.js';

export { CONSUL_API_VERSION } from './consul-agent-routes.js';

export interface ConsulRoutesOptions extends ConsulOperatorOptions {
  readonly registry: CatalogFacade;
  readonly node: ConsulNodeInfo;
  /**
   * Accept GET on the write endpoints python-consul 0.7 calls with GET (deregister, check
   * pass/warn/fail, join, force-leave), as Consul did before 1.0. Browser requests are refused.
   */
  readonly legacyVerbs: boolean;
  /** Version reported by /v1/agent/self (Meshwork's). */
  readonly version: string;
  readonly logger?: Logger;
  /** Where the adapter's metrics are registered (omitted: kept unregistered). */
  readonly metrics?: PromRegistry;
  /** The ACL system behind /v1/acl (omitted or disabled: those answer "ACL support disabled"). */
  readonly acl?: AclSystem;
  /** The clock of agent/host and agent/metrics (default: the system clock). */
  readonly clock?: Clock;
}

/** Maps any error to Consul's status and plain-text body. The one place this happens for /v1. */
export function toConsulError(err: unknown): { status: number; text: string } {
  if (isMeshError(err, ERROR_CODES.CONSUL_REQUEST)) {
    const status = err.details?.status;
    return { status: typeof status === 'number' ? status : 400, text: err.message };
  }
  const { status, body } = toHttpError(err);
  return { status, text: body.error.message };
}

/**
 * Gives a 404 answer an `X-Consul-Index` (`index`, at least 1) unless it has one. Consul sends
 * none on a 404 for an unknown path or an unknown agent service, but python-consul 0.7.1 reads
 * the header of every 404 it tolerates, and raises `KeyError: 'x-consul-index'` without it.
 */
export function indexNotFound(reply: FastifyReply, index: number): void {
  if (reply.statusCode === 404 && !reply.hasHeader('x-consul-index'))
    void reply.header('x-consul-index', String(Math.max(index, 1)));
}

/**
 * Sends `err` as Consul does: its status, a plain-text message; a 404 carries `X-Consul-Index`
 * (`index`, see {@link indexNotFound}).
 */
export function sendConsulError(reply: FastifyReply, err: unknown, index = 1): void {
  const { status, text } = toConsulError(err);
  void reply.status(status).header('content-type', 'text/plain; charset=utf-8');
  indexNotFound(reply, index);
  void reply.send(text);
}

/** Registers the /v1 routes (a fastify plugin scope of their own: plain-text errors). */
export function registerConsulRoutes(app: FastifyInstance, options: ConsulRoutesOptions): void {
  void app.register(
    async (scope) => {
      consulScope(scope, options);
    },
    { prefix: '/v1' },
  );
}

function consulScope(scope: FastifyInstance, options: ConsulRoutesOptions): void {
  const log = (options.logger ?? silentLogger).child({ component: 'consul-api' });
  const { registry } = options;

  // Every 404 of /v1 (unknown paths, missing keys, unknown ids, answered directly or thrown).
  scope.addHook('onSend', async (_req, reply, payload) => {
    indexNotFound(reply, registry.index);
    return payload;
  });
  scope.setErrorHandler((err, req, reply) => {
    const { status } = toConsulError(err);
    if (logsAsError(err, status))
      log.error({ err, method: req.method, url: req.url }, 'request failed');
    else log.debug({ method: req.method, url: req.url, status }, 'request refused');
    sendConsulError(reply, err, registry.index);
  });
  scope.setNotFoundHandler((_req, reply) => {
    void reply
      .status(404)
      .header('content-type', 'text/plain; charset=utf-8')
      .send('Invalid URL path: not a recognized HTTP API endpoint\n');
  });

  const router = new ConsulRouter();
  const ctx = createConsulContext({
    registry: options.registry,
    node: options.node,
    version: options.version,
    log,
    router,
    ...(options.metrics === undefined ? {} : { metrics: options.metrics }),
  });
  const checks = createConsulCheckWrites(ctx);
  registerConsulAgentRoutes(ctx, checks);
  registerConsulCatalogRoutes(ctx, checks);
  registerConsulHealthRoutes(ctx);
  registerConsulKvRoutes(ctx);
  registerConsulSessionRoutes(ctx, checks);
  registerConsulIntentionRoutes(ctx);
  registerConsulStatusRoutes(ctx);
  registerConsulTxnRoutes(ctx);
  registerConsulEventRoutes(ctx);
  registerConsulQueryRoutes(ctx);
  registerConsulAclRoutes(ctx, options.acl);
  const clock = options.clock ?? systemClock;
  registerConsulAgentInfoRoutes(ctx, {
    clock,
    startedAtMs: clock.now(),
    ...(options.metrics === undefined ? {} : { metrics: options.metrics }),
  });
  registerConsulCoordinateRoutes(ctx);
  registerConsulOperatorRoutes(ctx, options);
  router.registerAll(scope, options.legacyVerbs);
}
