/** @module MeshError, the one error class, and every stable error code with its factory. */

/** Every error code Meshwork emits. Codes are stable; retired codes are never reused. */
export const ERROR_CODES = {
  /** A request body or parameter failed validation. */
  VALIDATION: 'MESHWORK_ERR_API_VALIDATION',
  /** The request body is not valid JSON (or YAML, for files). */
  MALFORMED_BODY: 'MESHWORK_ERR_API_MALFORMED_BODY',
  /** The request body exceeds the configured limit. */
  BODY_TOO_LARGE: 'MESHWORK_ERR_API_BODY_TOO_LARGE',
  /** The request content type is not supported. */
  UNSUPPORTED_MEDIA_TYPE: 'MESHWORK_ERR_API_UNSUPPORTED_MEDIA_TYPE',
  /** No route matches the request. */
  ROUTE_NOT_FOUND: 'MESHWORK_ERR_API_ROUTE_NOT_FOUND',
  /** The request is malformed before any route sees it (request line, URL encoding, Host). */
  BAD_REQUEST: 'MESHWORK_ERR_API_BAD_REQUEST',
  /** The request's URL is longer than the agent accepts. */
  URI_TOO_LONG: 'MESHWORK_ERR_API_URI_TOO_LONG',
  /** The request's head (request line and headers) is larger than the agent accepts. */
  HEADERS_TOO_LARGE: 'MESHWORK_ERR_API_HEADERS_TOO_LARGE',
  /** The request did not arrive in time (its head, or its body, stalled). */
  REQUEST_TIMEOUT: 'MESHWORK_ERR_API_REQUEST_TIMEOUT',
  /** The agent is shutting down and takes no new request; another agent may. */
  SHUTTING_DOWN: 'MESHWORK_ERR_API_SHUTTING_DOWN',
  /** The request's method is not one HTTP/1.1 parsers know. */
  METHOD_NOT_IMPLEMENTED: 'MESHWORK_ERR_API_METHOD_NOT_IMPLEMENTED',
  /** The request's Host is not a name the agent is known by (DNS rebinding protection). */
  HOST_NOT_ALLOWED: 'MESHWORK_ERR_API_HOST_NOT_ALLOWED',
  /** A browser request from a page whose origin may not call the agent. */
  ORIGIN_NOT_ALLOWED: 'MESHWORK_ERR_API_ORIGIN_NOT_ALLOWED',
  /** The request's ACL token lacks the permission the endpoint needs, or is unknown. */
  ACL_DENIED: 'MESHWORK_ERR_ACL_PERMISSION_DENIED',
  /** One client IP holds more connections to the agent's HTTP API than it allows. */
  TOO_MANY_CONNECTIONS: 'MESHWORK_ERR_API_TOO_MANY_CONNECTIONS',
  /** The instance does not exist. */
  INSTANCE_NOT_FOUND: 'MESHWORK_ERR_REGISTRY_INSTANCE_NOT_FOUND',
  /** The instance id is already used by another service. */
  INSTANCE_ID_CONFLICT: 'MESHWORK_ERR_REGISTRY_INSTANCE_ID_CONFLICT',
  /** A heartbeat was sent to an instance that has no TTL check. */
  NO_TTL_CHECK: 'MESHWORK_ERR_REGISTRY_NO_TTL_CHECK',
  /** The KV key does not exist. */
  KEY_NOT_FOUND: 'MESHWORK_ERR_REGISTRY_KEY_NOT_FOUND',
  /** No session with this id (never created, or invalidated). */
  SESSION_NOT_FOUND: 'MESHWORK_ERR_REGISTRY_SESSION_NOT_FOUND',
  /** No mesh resource of this kind, namespace and name. */
  MESH_RESOURCE_NOT_FOUND: 'MESHWORK_ERR_REGISTRY_MESH_RESOURCE_NOT_FOUND',
  /** A KV value is larger than the per-value limit (512 KiB, as Consul's). */
  KV_VALUE_TOO_LARGE: 'MESHWORK_ERR_REGISTRY_KV_VALUE_TOO_LARGE',
  /** A KV put would take the KV store past its quota (agent option `kv.quotaBytes`). */
  KV_QUOTA_EXCEEDED: 'MESHWORK_ERR_REGISTRY_KV_QUOTA_EXCEEDED',
  /** The store cannot accept writes right now (closed, or its backend is unreachable). */
  STORE_UNAVAILABLE: 'MESHWORK_ERR_STORE_UNAVAILABLE',
  /** The store is corrupt or was written by an incompatible version. */
  STORE_CORRUPT: 'MESHWORK_ERR_STORE_CORRUPT',
  /** Configuration (file, env or flags) is invalid. */
  CONFIG_INVALID: 'MESHWORK_ERR_CONFIG_INVALID',
  /** The configuration file cannot be read or parsed. */
  CONFIG_UNREADABLE: 'MESHWORK_ERR_CONFIG_UNREADABLE',
  /** A command line usage error. */
  CLI_USAGE: 'MESHWORK_ERR_CLI_USAGE',
  /** The registry could not be reached or answered with an error. */
  CLIENT_REQUEST_FAILED: 'MESHWORK_ERR_CLIENT_REQUEST_FAILED',
  /** The SDK knows no healthy instance of the service it was asked to call. */
  CLIENT_NO_HEALTHY_INSTANCE: 'MESHWORK_ERR_CLIENT_NO_HEALTHY_INSTANCE',
  /** A balancer spec names no known balancer or has invalid options. */
  BALANCER_INVALID: 'MESHWORK_ERR_CLIENT_BALANCER_INVALID',
  /** An operation exceeded its deadline. */
  TIMEOUT: 'MESHWORK_ERR_TIMEOUT',
  /** A client call passed its per-try timeout or its overall deadline. */
  CLIENT_TIMEOUT: 'MESHWORK_ERR_CLIENT_TIMEOUT',
  /** A retry was refused because the retry budget is spent; the last failure is the cause. */
  CLIENT_RETRY_BUDGET_EXHAUSTED: 'MESHWORK_ERR_CLIENT_RETRY_BUDGET_EXHAUSTED',
  /** The endpoint's circuit is open (ejected) or its half-open probe slots are taken. */
  CLIENT_CIRCUIT_OPEN: 'MESHWORK_ERR_CLIENT_CIRCUIT_OPEN',
  /** The bulkhead has no free slot and no free queue place. */
  CLIENT_BULKHEAD_FULL: 'MESHWORK_ERR_CLIENT_BULKHEAD_FULL',
  /** The rate limiter has no token left. */
  CLIENT_RATE_LIMITED: 'MESHWORK_ERR_CLIENT_RATE_LIMITED',
  /** The Consul-compatible API (/v1) refused a request; `details.status` is Consul's status. */
  CONSUL_REQUEST: 'MESHWORK_ERR_CONSUL_REQUEST',
  /** The proxy (gateway, sidecar) has no route for the request's host, method and path. */
  PROXY_ROUTE_NOT_FOUND: 'MESHWORK_ERR_PROXY_ROUTE_NOT_FOUND',
  /** The proxy knows no healthy instance of the service the route names. */
  PROXY_NO_HEALTHY_UPSTREAM: 'MESHWORK_ERR_PROXY_NO_HEALTHY_UPSTREAM',
  /** The upstream refused or reset the connection, or failed before its response ended. */
  PROXY_UPSTREAM_RESET: 'MESHWORK_ERR_PROXY_UPSTREAM_RESET',
  /** The upstream did not answer within the route's timeout. */
  PROXY_UPSTREAM_TIMEOUT: 'MESHWORK_ERR_PROXY_UPSTREAM_TIMEOUT',
  /** The request is malformed (bad request line, headers too large, ...). */
  PROXY_BAD_REQUEST: 'MESHWORK_ERR_PROXY_BAD_REQUEST',
  /** A sidecar's egress policy (REGISTRY_ONLY) refuses a host the mesh does not know. */
  PROXY_EGRESS_DENIED: 'MESHWORK_ERR_PROXY_EGRESS_DENIED',
  /** The route's fault injection aborted the request (its status is the route's abort status). */
  PROXY_FAULT_ABORT: 'MESHWORK_ERR_PROXY_FAULT_ABORT',
  /** The cluster's connection-pool limits are reached (Envoy's overflow): not sent upstream. */
  PROXY_OVERFLOW: 'MESHWORK_ERR_PROXY_OVERFLOW',
  /** The local rate limit's bucket is empty: retry after `retryAfterMs`. */
  PROXY_RATE_LIMITED: 'MESHWORK_ERR_PROXY_RATE_LIMITED',
  /**
   * mTLS to an upstream sidecar failed: its certificate does not chain to the trust bundle, or
   * its SPIFFE ID is not the destination service's.
   */
  PROXY_UPSTREAM_TLS: 'MESHWORK_ERR_PROXY_UPSTREAM_TLS',
  /** An AuthorizationPolicy denied the request at the sidecar's inbound side: 403. */
  PROXY_ACCESS_DENIED: 'MESHWORK_ERR_PROXY_ACCESS_DENIED',
  /** An ACK or NACK names a proxy that has no push stream on this agent. */
  MESH_PROXY_NOT_CONNECTED: 'MESHWORK_ERR_MESH_PROXY_NOT_CONNECTED',
  MESH_EDGE_REPORTERS_FULL: 'MESHWORK_ERR_MESH_EDGE_REPORTERS_FULL',
  /**
   * The sidecar cannot get a certificate for its service: the agent's CA refused the CSR (the
   * token may not write the service) or answered a leaf that is not the sidecar's.
   */
  SIDECAR_IDENTITY: 'MESHWORK_ERR_SIDECAR_IDENTITY',
  /** A bug: an error nobody mapped. The details are logged, not sent. */
  INTERNAL: 'MESHWORK_ERR_INTERNAL',
} as const;

export type ErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES];

const BRAND = Symbol.for('meshwork.error');

/** Extra, structured facts about an error (the offending field, the limit, ...). */
export interface MeshErrorDetails {
  readonly field?: string;
  readonly [key: string]: unknown;
}

/**
 * The one error class. Check `code` (via {@link isMeshError}), not `instanceof`:
 * a package loaded twice breaks `instanceof`.
 */
export class MeshError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly details: MeshErrorDetails | undefined;
  readonly [BRAND] = true;

  constructor(
    code: ErrorCode,
    message: string,
    options: { retryable?: boolean; details?: MeshErrorDetails; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MeshError';
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.details = options.details;
  }
}

/** True when `err` is a MeshError (from any copy of this package), optionally with `code`. */
export function isMeshError(err: unknown, code?: ErrorCode): err is MeshError {
  if (typeof err !== 'object' || err === null) return false;
  if ((err as Record<symbol, unknown>)[BRAND] !== true) return false;
  return code === undefined || (err as MeshError).code === code;
}

export const errors = {
  /** `more`: further details (e.g. `problems`, every problem when several were found). */
  validation: (field: string, reason: string, more?: MeshErrorDetails): MeshError =>
    new MeshError(ERROR_CODES.VALIDATION, field === '' ? reason : `${field}: ${reason}`, {
      details: { ...more, field, reason },
    }),
  malformedBody: (reason: string): MeshError =>
    new MeshError(ERROR_CODES.MALFORMED_BODY, `malformed body: ${reason}`),
  bodyTooLarge: (limitBytes: number): MeshError =>
    new MeshError(ERROR_CODES.BODY_TOO_LARGE, `body exceeds ${limitBytes} bytes`, {
      details: { limitBytes },
    }),
  unsupportedMediaType: (contentType: string): MeshError =>
    new MeshError(
      ERROR_CODES.UNSUPPORTED_MEDIA_TYPE,
      `unsupported content type "${contentType}": send application/json`,
    ),
  unsupportedCharset: (charset: string): MeshError =>
    new MeshError(
      ERROR_CODES.UNSUPPORTED_MEDIA_TYPE,
      `unsupported charset "${charset}": send JSON in UTF-8`,
      { details: { charset } },
    ),
  routeNotFound: (method: string, path: string): MeshError =>
    new MeshError(ERROR_CODES.ROUTE_NOT_FOUND, `no route for ${method} ${path}`),
  badRequest: (reason: string): MeshError =>
    new MeshError(ERROR_CODES.BAD_REQUEST, `bad request: ${reason}`, { details: { reason } }),
  /** `part`: what is too long ("the URL", "a path segment"). */
  uriTooLong: (part: string, limitBytes: number): MeshError =>
    new MeshError(ERROR_CODES.URI_TOO_LONG, `${part} exceeds ${limitBytes} bytes`, {
      details: { limitBytes },
    }),
  shuttingDown: (): MeshError =>
    new MeshError(ERROR_CODES.SHUTTING_DOWN, 'the agent is shutting down: retry on another agent', {
      retryable: true,
    }),
  requestTimeout: (): MeshError =>
    new MeshError(ERROR_CODES.REQUEST_TIMEOUT, 'the request did not arrive in time'),
  headersTooLarge: (limitBytes: number): MeshError =>
    new MeshError(
      ERROR_CODES.HEADERS_TOO_LARGE,
      `the request line and headers exceed ${limitBytes} bytes`,
      { details: { limitBytes } },
    ),
  methodNotImplemented: (method: string): MeshError =>
    new MeshError(
      ERROR_CODES.METHOD_NOT_IMPLEMENTED,
      `method "${method}" is not implemented: use GET, PUT, POST or DELETE`,
      { details: { method } },
    ),
  /**
   * `missing`: the permission, as `service:payments write`; undefined: the token is unknown
   * (Consul's "ACL not found").
   */
  aclDenied: (missing: string | undefined): MeshError =>
    new MeshError(
      ERROR_CODES.ACL_DENIED,
      missing === undefined
        ? 'ACL not found'
        : `Permission denied: token lacks permission '${missing}'`,
      { details: missing === undefined ? { reason: 'acl-not-found' } : { permission: missing } },
    ),
  tooManyConnections: (limit: number): MeshError =>
    new MeshError(
      ERROR_CODES.TOO_MANY_CONNECTIONS,
      `Your IP is issuing too many concurrent connections (at most ${limit}), please rate limit your calls`,
      { details: { limit } },
    ),
  hostNotAllowed: (host: string): MeshError =>
    new MeshError(
      ERROR_CODES.HOST_NOT_ALLOWED,
      `Host "${host}" is not a name this agent is known by (DNS rebinding protection): ` +
        'call it by IP address or localhost, or add the name to allowedHosts',
      { details: { host } },
    ),
  /** `origin`: the Origin header, or undefined for a cross-site request that sent none. */
  originNotAllowed: (origin: string | undefined): MeshError =>
    new MeshError(
      ERROR_CODES.ORIGIN_NOT_ALLOWED,
      origin === undefined
        ? 'cross-site browser request refused (Sec-Fetch-Site without an Origin)'
        : `Origin "${origin}" may not call this agent: add it to allowedOrigins`,
      { details: origin === undefined ? {} : { origin } },
    ),
  instanceNotFound: (id: string): MeshError =>
    new MeshError(ERROR_CODES.INSTANCE_NOT_FOUND, `instance "${id}" not found`, {
      details: { field: 'id' },
    }),
  instanceIdConflict: (id: string, existingService: string): MeshError =>
    new MeshError(
      ERROR_CODES.INSTANCE_ID_CONFLICT,
      `instance id "${id}" is already registered for service "${existingService}"`,
      { details: { field: 'id', existingService } },
    ),
  noTtlCheck: (id: string): MeshError =>
    new MeshError(
      ERROR_CODES.NO_TTL_CHECK,
      `instance "${id}" has no ttl check: register it with a check of kind "ttl" to send heartbeats`,
      { details: { field: 'id' } },
    ),
  /** `key`: `Kind/namespace/name`. */
  meshResourceNotFound: (key: string): MeshError =>
    new MeshError(ERROR_CODES.MESH_RESOURCE_NOT_FOUND, `mesh resource ${key} not found`, {
      details: { key },
    }),
  /** A URL naming a kind of mesh resource that does not exist: the route does not either. */
  meshKindUnknown: (word: string, plurals: readonly string[]): MeshError =>
    new MeshError(
      ERROR_CODES.ROUTE_NOT_FOUND,
      `no kind of mesh resource is called "${word}": the kinds are ${plurals.join(', ')}`,
      { details: { field: 'kind' } },
    ),
  /**
   * Mesh documents refused (apply): every problem, each with its document (its index in the
   * request) and the field path in it; `field` is the first one's full path.
   */
  meshDocumentsInvalid: (
    problems: readonly {
      readonly document?: number;
      readonly resource?: string;
      readonly path: string;
      readonly reason: string;
    }[],
  ): MeshError => {
    const first = problems[0] ?? { path: '', reason: 'invalid' };
    // A stored resource is named as the registry names it: `Kind/namespace/name: path`.
    const [where, join] =
      first.document === undefined ? [first.resource, ': '] : [`documents[${first.document}]`, '.'];
    const field = [where, first.path].filter((p) => p !== undefined && p !== '').join(join);
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more problems)` : '';
    return new MeshError(
      ERROR_CODES.VALIDATION,
      `${field === '' ? '' : `${field}: `}${first.reason}${more}`,
      { details: { field, reason: first.reason, problems } },
    );
  },
  sessionNotFound: (id: string): MeshError =>
    new MeshError(ERROR_CODES.SESSION_NOT_FOUND, `session "${id}" not found`, {
      details: { field: 'session', session: id },
    }),
  keyNotFound: (key: string): MeshError =>
    new MeshError(ERROR_CODES.KEY_NOT_FOUND, `key "${key}" not found`),
  kvValueTooLarge: (key: string, valueBytes: number, maxBytes: number): MeshError =>
    new MeshError(
      ERROR_CODES.KV_VALUE_TOO_LARGE,
      `value of key "${key}" is ${valueBytes} bytes: at most ${maxBytes} bytes per value`,
      { details: { field: 'value', key, valueBytes, maxBytes } },
    ),
  kvQuotaExceeded: (
    key: string,
    usedBytes: number,
    addBytes: number,
    quotaBytes: number,
  ): MeshError =>
    new MeshError(
      ERROR_CODES.KV_QUOTA_EXCEEDED,
      `KV quota exceeded: putting key "${key}" adds ${addBytes} bytes to ${usedBytes} used of ${quotaBytes} (keys and values); delete keys or raise kv.quotaBytes`,
      { details: { key, usedBytes, addBytes, quotaBytes } },
    ),
  storeUnavailable: (reason: string, cause?: unknown): MeshError =>
    new MeshError(ERROR_CODES.STORE_UNAVAILABLE, `store unavailable: ${reason}`, {
      retryable: true,
      cause,
    }),
  storeCorrupt: (reason: string, cause?: unknown, details?: MeshErrorDetails): MeshError =>
    new MeshError(ERROR_CODES.STORE_CORRUPT, `store corrupt: ${reason}`, { cause, details }),
  configInvalid: (problems: readonly string[]): MeshError =>
    new MeshError(
      ERROR_CODES.CONFIG_INVALID,
      `invalid configuration:\n  ${problems.join('\n  ')}`,
      {
        details: { problems },
      },
    ),
  configUnreadable: (path: string, reason: string, cause?: unknown): MeshError =>
    new MeshError(ERROR_CODES.CONFIG_UNREADABLE, `cannot read ${path}: ${reason}`, { cause }),
  cliUsage: (message: string): MeshError => new MeshError(ERROR_CODES.CLI_USAGE, message),
  clientRequestFailed: (message: string, retryable: boolean, cause?: unknown): MeshError =>
    new MeshError(ERROR_CODES.CLIENT_REQUEST_FAILED, message, { retryable, cause }),
  noHealthyInstance: (service: string): MeshError =>
    new MeshError(
      ERROR_CODES.CLIENT_NO_HEALTHY_INSTANCE,
      `no healthy instance of "${service}" is known`,
      { retryable: true, details: { service } },
    ),
  balancerInvalid: (problems: readonly string[]): MeshError =>
    new MeshError(ERROR_CODES.BALANCER_INVALID, `invalid balancer:\n  ${problems.join('\n  ')}`, {
      details: { problems },
    }),
  consulRequest: (status: number, message: string): MeshError =>
    new MeshError(ERROR_CODES.CONSUL_REQUEST, message, { details: { status } }),
  timeout: (what: string, timeoutMs: number): MeshError =>
    new MeshError(ERROR_CODES.TIMEOUT, `${what} timed out after ${timeoutMs} ms`, {
      retryable: true,
    }),
  /**
   * A per-try timeout is retryable (another try may be faster); passing the overall deadline is
   * not (nobody is waiting any more).
   */
  clientTimeout: (scope: 'try' | 'overall', timeoutMs: number, cause?: unknown): MeshError =>
    new MeshError(
      ERROR_CODES.CLIENT_TIMEOUT,
      scope === 'try'
        ? `try timed out after ${timeoutMs} ms`
        : `request deadline passed (${timeoutMs} ms were left for the last try)`,
      { retryable: scope === 'try', details: { scope, timeoutMs }, cause },
    ),
  retryBudgetExhausted: (attempts: number, cause: unknown): MeshError =>
    new MeshError(
      ERROR_CODES.CLIENT_RETRY_BUDGET_EXHAUSTED,
      `retry budget exhausted after ${attempts} attempt(s)`,
      { details: { attempts }, cause },
    ),
  circuitOpen: (endpointId: string): MeshError =>
    new MeshError(ERROR_CODES.CLIENT_CIRCUIT_OPEN, `circuit open for endpoint "${endpointId}"`, {
      details: { endpointId },
    }),
  bulkheadFull: (maxConcurrent: number, maxQueue: number): MeshError =>
    new MeshError(
      ERROR_CODES.CLIENT_BULKHEAD_FULL,
      `bulkhead full: ${maxConcurrent} call(s) running and ${maxQueue} queued`,
      { details: { maxConcurrent, maxQueue } },
    ),
  proxyRouteNotFound: (method: string, host: string, path: string): MeshError =>
    new MeshError(
      ERROR_CODES.PROXY_ROUTE_NOT_FOUND,
      `no route for ${method} ${path} (host "${host}")`,
      { details: { method, host, path } },
    ),
  /**
   * `instances`: how many the cluster has outside maintenance. None: a subset no instance
   * matches, or a service whose instances all left; some: all are unhealthy or ejected, and
   * panic mode is off or not reached.
   */
  proxyNoHealthyUpstream: (service: string, instances: number): MeshError =>
    new MeshError(
      ERROR_CODES.PROXY_NO_HEALTHY_UPSTREAM,
      instances === 0
        ? `no instance of "${service}" is registered (outside maintenance)`
        : `no instance of "${service}" may take traffic (${instances} registered: unhealthy or ejected)`,
      { retryable: true, details: { service, instances } },
    ),
  proxyUpstreamReset: (service: string, reason: string, cause?: unknown): MeshError =>
    new MeshError(ERROR_CODES.PROXY_UPSTREAM_RESET, `upstream "${service}" failed: ${reason}`, {
      retryable: true,
      details: { service, reason },
      cause,
    }),
  proxyUpstreamTimeout: (service: string, timeoutMs: number): MeshError =>
    new MeshError(
      ERROR_CODES.PROXY_UPSTREAM_TIMEOUT,
      `upstream "${service}" did not answer within ${timeoutMs} ms`,
      { retryable: true, details: { service, timeoutMs } },
    ),
  proxyBadRequest: (reason: string): MeshError =>
    new MeshError(ERROR_CODES.PROXY_BAD_REQUEST, `bad request: ${reason}`, {
      details: { reason },
    }),
  proxyEgressDenied: (host: string, policy: string): MeshError =>
    new MeshError(
      ERROR_CODES.PROXY_EGRESS_DENIED,
      `egress to "${host}" refused: the outbound traffic policy is ${policy} and no service or ServiceEntry is "${host}"`,
      { details: { host, policy } },
    ),
  proxyFaultAbort: (status: number): MeshError =>
    new MeshError(ERROR_CODES.PROXY_FAULT_ABORT, `fault injected: aborted with ${status}`, {
      details: { status },
    }),
  /** `limit`: which limit (maxRequests, maxPendingRequests...) and its value. */
  proxyOverflow: (service: string, limit: string, value: number): MeshError =>
    new MeshError(
      ERROR_CODES.PROXY_OVERFLOW,
      `upstream "${service}" is at its ${limit} (${value}): request not sent`,
      { retryable: true, details: { service, limit, value } },
    ),
  proxyUpstreamTls: (service: string, reason: string, cause?: unknown): MeshError =>
    new MeshError(
      ERROR_CODES.PROXY_UPSTREAM_TLS,
      `mTLS to upstream "${service}" failed: ${reason}`,
      {
        retryable: true,
        details: { service, reason },
        cause,
      },
    ),
  proxyRateLimited: (retryAfterMs: number): MeshError =>
    new MeshError(ERROR_CODES.PROXY_RATE_LIMITED, `rate limited: retry after ${retryAfterMs} ms`, {
      retryable: true,
      details: { retryAfterMs },
    }),
  proxyAccessDenied: (action: 'DENY' | 'ALLOW', policy?: string): MeshError =>
    new MeshError(
      ERROR_CODES.PROXY_ACCESS_DENIED,
      action === 'DENY'
        ? `access denied by AuthorizationPolicy ${policy ?? ''} (DENY)`
        : 'access denied: no ALLOW AuthorizationPolicy matched the request',
      { details: policy === undefined ? { action } : { policy, action } },
    ),
  meshProxyNotConnected: (id: string): MeshError =>
    new MeshError(
      ERROR_CODES.MESH_PROXY_NOT_CONNECTED,
      `proxy "${id}" has no push stream on this agent: ACK on the agent whose stream you hold`,
      { details: { field: 'id' } },
    ),
  meshEdgeReportersFull: (limit: number): MeshError =>
    new MeshError(
      ERROR_CODES.MESH_EDGE_REPORTERS_FULL,
      `the call graph keeps the reports of ${limit} proxies and has that many: report to another agent, or later`,
      { retryable: true, details: { limit } },
    ),
  /** `retryable`: the agent was away or failed (5xx), not a refusal or a wrong leaf. */
  sidecarIdentity: (message: string, retryable: boolean, cause?: unknown): MeshError =>
    new MeshError(ERROR_CODES.SIDECAR_IDENTITY, message, { retryable, cause }),
  rateLimited: (retryAfterMs: number): MeshError =>
    new MeshError(ERROR_CODES.CLIENT_RATE_LIMITED, `rate limited: retry after ${retryAfterMs} ms`, {
      details: { retryAfterMs },
    }),
} as const;
