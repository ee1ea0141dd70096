/**
 * @module The registry ACL contract (issue 20, Consul's model): what a request's token may do.
 * The ACL system (tokens, policies, bootstrap) implements AclResolver; the HTTP API, the DNS
 * server, the control plane's push and the CA's leaf signing consult it. With ACLs off (the
 * default, and `--dev`), the resolver's `enabled` is false and every check allows.
 */

/** The kinds of rule a policy grants, as Consul names them (`service_prefix "web" { ... }`). */
export type AclResourceKind =
  | 'service'
  | 'kv'
  | 'node'
  | 'mesh'
  | 'acl'
  | 'operator'
  | 'agent'
  /** Consul sessions, by node name (`session "node-1"`, `session_prefix ""`). */
  | 'session'
  /** Consul user events, by event name (`event "deploy"`, `event_prefix ""`). */
  | 'event'
  /** Prepared queries, by query name (`query "geo-db"`, `query_prefix ""`). */
  | 'query';

export type AclAccess = 'read' | 'write';

/** The answer to one check. */
export type AclDecision =
  | { readonly allowed: true }
  /** `missing` names the permission, as 403 bodies show it: `service:payments write`. */
  | { readonly allowed: false; readonly missing: string };

/** What one token may do (resolved from its policies once per request, or cached). */
export interface Authorizer {
  /** The token's accessor id (never its secret), for audit lines; `anonymous` without one. */
  readonly accessorId: string;
  /**
   * May this token `access` the resource `name` of `kind`? `name` is the service name, KV key,
   * node name; ignored for `mesh`, `acl`, `operator`. MUST NOT throw.
   */
  check(kind: AclResourceKind, name: string, access: AclAccess): AclDecision;
}

export interface AclResolver {
  /** False: no enforcement (every Authorizer allows everything). */
  readonly enabled: boolean;
  /**
   * The Authorizer of a request's token secret (undefined: no token: the anonymous token).
   * An unknown secret resolves to an Authorizer that allows nothing (Consul answers 403
   * "ACL not found"); it does not throw.
   */
  resolve(secret: string | undefined): Promise<Authorizer>;
}

/** The Authorizer of a system without ACLs: everything allowed. */
export const ALLOW_ALL: Authorizer = {
  accessorId: 'anonymous',
  check: () => ({ allowed: true }),
};

/** A resolver with ACLs off. */
export const ACLS_DISABLED: AclResolver = {
  enabled: false,
  resolve: () => Promise.resolve(ALLOW_ALL),
};

/**
 * The token a request carries, from (in this order) `X-Consul-Token`, `Authorization: Bearer`,
 * or the `token` query parameter; undefined when none is given.
 */
export function requestToken(
  headers: Readonly<Record<string, string | string[] | undefined>>,
  query?: Readonly<Record<string, unknown>>,
): string | undefined {
  const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);
  const header = first(headers['x-consul-token']);
  if (header !== undefined && header !== '') return header;
  const auth = first(headers.authorization);
  if (auth !== undefined) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (m !== null) return m[1];
  }
  const q = query?.token;
  return typeof q === 'string' && q !== '' ? q : undefined;
}
