/**
 * @module The ACL of one API request: its token resolved once (an onRequest hook), the checks its
 * handlers make (`requireAcl` refuses with 403 naming the permission, `mayRead` filters lists),
 * and what they touched, for the audit log. With ACLs off every check allows and is still
 * recorded.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { errors } from '../../core/errors.js';
import {
  ALLOW_ALL,
  requestToken,
  type AclAccess,
  type AclResolver,
  type AclResourceKind,
  type Authorizer,
} from '../../registry/acl/acl-contract.js';

/** A resolver that may answer a cached Authorizer without a promise (the AclSystem does). */
export interface ApiAclResolver extends AclResolver {
  resolveCached?(secret: string | undefined): Authorizer | undefined;
}

/** What one request's ACL state holds. */
export interface RequestAcl {
  readonly auth: Authorizer;
  /** The resources the request's checks named (`service:payments`, `key:app/x`), for the audit log. */
  readonly what: string[];
  /** Whether a check asked for write access. */
  wrote: boolean;
}

const STATE = Symbol('meshwork.requestAcl');
type WithAcl = FastifyRequest & { [STATE]?: RequestAcl };

/** A request whose hook has not run (a route outside the API, an early refusal). */
const NO_ACL_AUTH: Authorizer = {
  accessorId: 'anonymous',
  check: () => ({ allowed: true }),
};

/** Whether `auth` allows nothing because its secret is unknown (see acl-authorizer.ts). */
function unknownToken(auth: Authorizer): boolean {
  return (auth as { unknownToken?: boolean }).unknownToken === true;
}

/** The request's ACL state (an allow-all one when the hook did not run). */
export function requestAcl(req: FastifyRequest): RequestAcl {
  const r = req as WithAcl;
  let state = r[STATE];
  if (state === undefined) {
    state = { auth: NO_ACL_AUTH, what: [], wrote: false };
    r[STATE] = state;
  }
  return state;
}

function record(state: RequestAcl, kind: AclResourceKind, name: string, access: AclAccess): void {
  if (access === 'write') state.wrote = true;
  const what =
    kind === 'mesh' || kind === 'acl' || kind === 'operator'
      ? kind
      : `${kind === 'kv' ? 'key' : kind}:${name}`;
  if (state.what.length < 16 && !state.what.includes(what)) state.what.push(what);
}

/**
 * Throws 403 (MESHWORK_ERR_ACL_PERMISSION_DENIED, "Permission denied: token lacks permission
 * 'service:payments write'") unless the request's token may `access` the resource.
 */
export function requireAcl(
  req: FastifyRequest,
  kind: AclResourceKind,
  name: string,
  access: AclAccess,
): void {
  const state = requestAcl(req);
  record(state, kind, name, access);
  const decision = state.auth.check(kind, name, access);
  if (!decision.allowed)
    throw errors.aclDenied(unknownToken(state.auth) ? undefined : decision.missing);
}

/** Whether the request's token may read the resource: lists drop what it may not (as Consul). */
export function mayRead(req: FastifyRequest, kind: AclResourceKind, name: string): boolean {
  return requestAcl(req).auth.check(kind, name, 'read').allowed;
}

/** Routes any token may call, even an unknown one. */
const OPEN_ROUTES = /^\/(?:health\/|v1\/status\/)/;

/** The checks an endpoint's URL alone decides (params, query), by `METHOD /route/url`. */
export type AclRouteRule = (
  req: FastifyRequest,
) => readonly (readonly [AclResourceKind, string, AclAccess])[];

/**
 * Installs the onRequest hook that resolves the request's token (X-Consul-Token, Bearer,
 * `?token=`) and applies `rules` for the matched route.
 */
export function installRequestAcl(
  app: FastifyInstance,
  resolver: ApiAclResolver,
  rules: ReadonlyMap<string, AclRouteRule>,
  coverage?: {
    /** Routes whose handlers check (or that need nothing): `METHOD /url`. */
    readonly classified: ReadonlySet<string>;
    /** Told once the server is ready, of API routes neither `rules` nor `classified` covers. */
    readonly onUnclassified: (routes: readonly string[]) => void;
  },
): void {
  if (coverage !== undefined) {
    const unclassified: string[] = [];
    app.addHook('onRoute', (route) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      for (const m of methods) {
        const key = `${m} ${route.url}`;
        if (m === 'HEAD' || m === 'OPTIONS' || !/^\/(api\/v1|v1)\//.test(route.url)) continue;
        if ((route.config as { methodNotAllowed?: boolean } | undefined)?.methodNotAllowed === true)
          continue;
        if (!rules.has(key) && !coverage.classified.has(key)) unclassified.push(key);
      }
    });
    app.addHook('onReady', (done) => {
      if (unclassified.length > 0) coverage.onUnclassified([...new Set(unclassified)].sort());
      done();
    });
  }
  const apply = (req: FastifyRequest, auth: Authorizer): void => {
    const url = req.routeOptions.url ?? '';
    // Consul answers "ACL not found" to any request with an unknown token, lists included, so a
    // mistyped token is not quietly answered an empty list. Probes and /v1/status take no token.
    if (unknownToken(auth) && !OPEN_ROUTES.test(url)) throw errors.aclDenied(undefined);
    const rule = rules.get(`${req.method} ${req.routeOptions.url ?? ''}`);
    if (rule === undefined) return;
    for (const [kind, name, access] of rule(req)) requireAcl(req, kind, name, access);
  };
  app.addHook('onRequest', (req, _reply, done) => {
    const query = req.query as Record<string, unknown> | undefined;
    const secret = requestToken(req.headers, query);
    const finish = (auth: Authorizer): void => {
      (req as WithAcl)[STATE] = { auth, what: [], wrote: false };
      try {
        apply(req, auth);
        done();
      } catch (err) {
        done(err as Error);
      }
    };
    const cached = resolver.enabled ? resolver.resolveCached?.(secret) : ALLOW_ALL;
    if (cached !== undefined) {
      finish(cached);
      return;
    }
    resolver.resolve(secret).then(finish, (err: unknown) => done(err as Error));
  });
}
