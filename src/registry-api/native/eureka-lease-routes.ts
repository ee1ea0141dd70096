/**
 * @module The Eureka lease keeper's endpoints of the native API: every service's
 * self-preservation state (`GET /api/v1/eureka/self-preservation`) and the operator's reset
 * (`POST /api/v1/eureka/self-preservation/reset?service=`), docs/eureka-compatibility.md.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { errors } from '../../core/errors.js';
import { SERVICE_NAME } from '../../protocol/registration.js';
import type { EurekaLeaseKeeper } from '../eureka/eureka-lease-contract.js';

export const EUREKA_SELF_PRESERVATION_PATH = '/api/v1/eureka/self-preservation';
export const EUREKA_SELF_PRESERVATION_RESET_PATH = '/api/v1/eureka/self-preservation/reset';

/** The reset's `?service=`: absent (every service) or a service name; a 400 names it otherwise. */
export function resetServiceOf(req: FastifyRequest): string | undefined {
  const raw = (req.query as Record<string, unknown> | undefined)?.service;
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string') throw errors.validation('service', 'must be given once');
  if (!SERVICE_NAME.test(raw))
    throw errors.validation(
      'service',
      'must be a service name: 1-63 lowercase letters, digits or hyphens',
    );
  return raw;
}

/**
 * The routes, as a plug-in of the API server (ACLs: the state takes operator read, the reset
 * operator write; acl-route-rules.ts). `settings` says whether self-preservation is on when no
 * service has Eureka instances yet (otherwise the services' states say it).
 * @example
 * createApiServer({ ..., plugins: [eurekaLeaseRoutes(keeper, options.eureka)] });
 */
export function eurekaLeaseRoutes(
  keeper: EurekaLeaseKeeper,
  settings?: { readonly selfPreservation: boolean },
): (app: FastifyInstance) => void {
  return (app) => {
    app.get(EUREKA_SELF_PRESERVATION_PATH, async () => {
      const services = keeper.states();
      return { enabled: services[0]?.enabled ?? settings?.selfPreservation ?? false, services };
    });
    app.post(EUREKA_SELF_PRESERVATION_RESET_PATH, async (req) => {
      const service = resetServiceOf(req);
      const { evicted } = await keeper.reset(service);
      return { service: service ?? null, evicted };
    });
  };
}
