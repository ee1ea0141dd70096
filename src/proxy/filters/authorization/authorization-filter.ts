/**
 * @module The sidecar's inbound authorization filter: the request's attributes (method,
 * normalized path, authority, headers, peer address, the verified mTLS identity from
 * `peerIdentity(socket)`, the workload's port) evaluated against the snapshot's compiled
 * AuthorizationPolicies. A denied request is answered 403 (MESHWORK_ERR_PROXY_ACCESS_DENIED)
 * with the DENY policy in the body and in `x-meshwork-denied-by`, and never reaches the app; an
 * AUDIT policy's match is logged as one JSON line. Counts are kept for the metrics.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Counter, type Registry } from 'prom-client';
import { errors } from '../../../core/errors.js';
import type { Logger } from '../../../core/logger.js';
import { replyFor } from '../../error-reply.js';
import type { Filter, FilterExchange, FilterStatus, LocalReply } from '../../filter.js';
import { peerIdentity } from '../../peer-identity.js';
import {
  NO_ALLOW_MATCHED,
  type AuthorizationRequest,
  type AuthorizationVerdict,
  type CompiledAuthorization,
} from './authorization-policy.js';
import { normalizePath } from './normalize-path.js';

/** The response header naming what denied a request: the DENY policy, or `no-allow-match`. */
export const DENIED_BY_HEADER = 'x-meshwork-denied-by';

/** The denials and audits of one policy (or of "no ALLOW policy matched": policy ''). */
export interface AuthorizationCount {
  readonly policy: string;
  readonly action: 'DENY' | 'ALLOW';
  denied: number;
}

/**
 * What the filters of successive snapshots count, kept across them (a counter never goes back):
 * the sidecar's metrics read it at scrape time.
 */
export class AuthorizationCounts {
  readonly denied = new Map<string, AuthorizationCount>();
  /** AUDIT matches per policy. */
  readonly audited = new Map<string, number>();

  deniedCount(policy: string, action: 'DENY' | 'ALLOW'): AuthorizationCount {
    const key = `${action} ${policy}`;
    let c = this.denied.get(key);
    if (c === undefined) this.denied.set(key, (c = { policy, action, denied: 0 }));
    return c;
  }
}

export interface AuthorizationFilterOptions {
  readonly compiled: CompiledAuthorization;
  /** The workload's port: the app's (`ports`, `destination.port`), as Istio's workload port. */
  readonly destinationPort: number;
  readonly counts: AuthorizationCounts;
  /** AUDIT lines go here (info), denials at debug. */
  readonly logger: Logger;
}

/** The host of a lower-case authority: without its port (`[v6]:port` keeps the brackets). */
function hostOf(authority: string): string {
  if (authority.charCodeAt(0) === 0x5b /* [ */) {
    const close = authority.indexOf(']');
    return close < 0 ? authority : authority.slice(0, close + 1);
  }
  const colon = authority.lastIndexOf(':');
  return colon < 0 ? authority : authority.slice(0, colon);
}

/** The attributes of the request being evaluated (one per filter, refilled per request). */
class RequestView implements AuthorizationRequest {
  method = '';
  path = '';
  authority = '';
  host = '';
  headers: IncomingHttpHeaders = {};
  sourceIp = '';
  destinationIp = '';
  destinationPort = 0;
  principal: string | undefined;
  namespace: string | undefined;
  sni: string | undefined;
}

/** The reply for a verdict that denies. */
function denial(v: Exclude<AuthorizationVerdict, { allowed: true }>): LocalReply {
  const reply = replyFor(errors.proxyAccessDenied(v.action, v.policy));
  return { ...reply, headers: { [DENIED_BY_HEADER]: v.policy ?? 'no-allow-match' } };
}

/**
 * The authorization filter of one snapshot's policies. It runs first among the inbound filters
 * (a refused request takes no rate-limit token) and sets the path the app sees to the
 * normalized one. Evaluation is synchronous, so one RequestView serves every request.
 */
export function createAuthorizationFilter(options: AuthorizationFilterOptions): Filter {
  const { compiled, counts, logger } = options;
  const view = new RequestView();
  view.destinationPort = options.destinationPort;
  const denials = new Map<AuthorizationVerdict, { reply: LocalReply; count: AuthorizationCount }>();
  for (const v of [NO_ALLOW_MATCHED, ...compiled.policies.map((p) => p.verdict)])
    if (!v.allowed && !denials.has(v))
      denials.set(v, { reply: denial(v), count: counts.deniedCount(v.policy ?? '', v.action) });
  const noAllow = denials.get(NO_ALLOW_MATCHED) as { reply: LocalReply; count: AuthorizationCount };
  return {
    name: 'authorization',
    onRequest(x: FilterExchange): FilterStatus {
      if (compiled.empty) return 'continue';
      const full = x.path;
      const q = full.indexOf('?');
      const raw = q < 0 ? full : full.slice(0, q);
      const path = normalizePath(raw);
      // The app gets the path that was authorized (Istio forwards the normalized path too).
      if (path !== raw) x.path = q < 0 ? path : path + full.slice(q);
      const headers = x.headers;
      const authority = (x.authority ?? headers.host ?? '').toLowerCase();
      const socket = x.socket;
      const id = peerIdentity(socket);
      const verified = id !== undefined && id.mtls;
      view.method = x.method;
      view.path = path;
      view.authority = authority;
      view.host = hostOf(authority);
      view.headers = headers;
      view.sourceIp = socket.remoteAddress ?? '';
      view.destinationIp = socket.localAddress ?? '';
      view.principal = verified ? id.principal : undefined;
      view.namespace = verified ? id.namespace : undefined;
      view.sni = verified && typeof socket.servername === 'string' ? socket.servername : undefined;
      const verdict = compiled.evaluate(view);
      const audited = compiled.audits(view);
      if (audited !== undefined)
        for (const policy of audited) {
          counts.audited.set(policy, (counts.audited.get(policy) ?? 0) + 1);
          logger.info(
            {
              policy,
              method: view.method,
              path: view.path,
              host: view.host,
              principal: view.principal,
              sourceIp: view.sourceIp,
              allowed: verdict.allowed,
            },
            'authorization audit',
          );
        }
      if (verdict.allowed) return 'continue';
      // Every denying verdict is listed; were one not, the request is still denied.
      const d = denials.get(verdict) ?? noAllow;
      d.count.denied++;
      logger.debug(
        { policy: d.count.policy, action: d.count.action, method: view.method, path: view.path },
        'request denied by authorization policy',
      );
      return d.reply;
    },
  };
}

/**
 * Registers `meshwork_<component>_authz_denied_total{policy,action}` (requests denied: by the
 * DENY policy named, or with action ALLOW and policy "" when no ALLOW policy matched) and
 * `meshwork_<component>_authz_audited_total{policy}` (AUDIT matches), read from `counts` at
 * scrape time.
 */
export function registerAuthorizationMetrics(
  registry: Registry,
  counts: AuthorizationCounts,
  component = 'sidecar',
): void {
  new Counter({
    name: `meshwork_${component}_authz_denied_total`,
    help: 'Requests an AuthorizationPolicy denied: the DENY policy, or action ALLOW when no ALLOW policy matched',
    labelNames: ['policy', 'action'],
    registers: [registry],
    collect() {
      this.reset();
      for (const c of counts.denied.values())
        if (c.denied > 0) this.labels(c.policy, c.action).inc(c.denied);
    },
  });
  new Counter({
    name: `meshwork_${component}_authz_audited_total`,
    help: 'Requests an AUDIT AuthorizationPolicy matched (each logged)',
    labelNames: ['policy'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [policy, n] of counts.audited) this.labels(policy).inc(n);
    },
  });
}
