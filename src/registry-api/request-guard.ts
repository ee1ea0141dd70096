/**
 * @module Which requests the agent's HTTP API answers at all: a Host the agent is known by (DNS
 * rebinding), a browser Origin that may call it (cross-site writes), a URL of sane length.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';
import { errors, type MeshError } from '../core/errors.js';
import { LIMITS } from '../protocol/limits.js';

export interface RequestGuardOptions {
  /**
   * Names (besides IP literals, `localhost`, `*.localhost` and `knownNames`) the agent answers
   * to: exact names, or `*.example.com` for every name under example.com; `*` accepts any Host.
   */
  readonly allowedHosts: readonly string[];
  /** Origins (`https://ui.example.com:8443`) whose pages may call the agent; `*` allows any. */
  readonly allowedOrigins: readonly string[];
  /** Names the agent is known by anyway: the machine's hostname, the name it listens on. */
  readonly knownNames: readonly string[];
}

/** What the guard needs of a request (node's IncomingMessage has it). */
export interface GuardedRequest {
  readonly url?: string | undefined;
  readonly httpVersion: string;
  readonly headers: IncomingHttpHeaders;
}

/** A request the guard let through, and what it learned. */
export interface GuardVerdict {
  /** The refusal, or undefined when the request may go on. */
  readonly error: MeshError | undefined;
  /** The Origin when it is allowed by `allowedOrigins` (not same-origin): CORS applies. */
  readonly corsOrigin?: string;
}

const PASS: GuardVerdict = Object.freeze({ error: undefined });

/** `host[:port]` as RFC 9110 7.2 writes it: a reg-name or IPv4, or an IPv6 literal in brackets. */
const HOST_HEADER = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]/@\s]+))(?::(\d{1,5}))?$/;

/** A Host header's host (lowercase, no brackets, no trailing dot) and port. */
interface HostPort {
  readonly host: string;
  readonly port: number | undefined;
}

/** The host and port of a Host header, if well formed. */
function parseHost(value: string): HostPort | undefined {
  const m = HOST_HEADER.exec(value);
  if (m === null) return undefined;
  const v6 = m[1];
  if (v6 !== undefined && isIP(v6) !== 6) return undefined;
  const host = (v6 ?? m[2] ?? '').toLowerCase().replace(/\.$/, '');
  return { host, port: m[3] === undefined ? undefined : Number(m[3]) };
}

/**
 * Builds the guard the HTTP server runs on every request, before routing. It answers a verdict
 * and never throws. Host values seen are remembered, parsed (a bounded cache), so the hot path is
 * one lookup, and the same-origin check reuses the parse.
 * @example
 * const guard = createRequestGuard({ allowedHosts: ['consul.internal'], allowedOrigins: [], knownNames: [] });
 * guard({ httpVersion: '1.1', headers: { host: 'evil.example:8500' } }).error?.code; // MESHWORK_ERR_API_HOST_NOT_ALLOWED
 */
export function createRequestGuard(
  options: RequestGuardOptions,
): (req: GuardedRequest) => GuardVerdict {
  const anyHost = options.allowedHosts.includes('*');
  const names = new Set(['localhost', ...options.knownNames, ...options.allowedHosts]);
  const exact = new Set([...names].filter((n) => !n.startsWith('*.')).map(normaliseName));
  const suffixes = [
    '.localhost',
    ...[...names].filter((n) => n.startsWith('*.')).map((n) => normaliseName(n.slice(1))),
  ];
  const anyOrigin = options.allowedOrigins.includes('*');
  // Browsers serialise an origin lowercase and without its scheme's default port: so do we.
  const origins = new Set(options.allowedOrigins.map(canonicalOrigin));
  // Host header values already found allowed, parsed (undefined: not well formed, let through by
  // `*`); bounded, since clients choose them.
  const seenHosts = new Map<string, HostPort | undefined>();

  /** The Host header parsed (undefined when not well formed), or false when it is refused. */
  const checkHost = (value: string): HostPort | undefined | false => {
    if (seenHosts.has(value)) return seenHosts.get(value);
    const parsed = parseHost(value);
    const host = parsed?.host;
    // Rebinding needs a name the attacker's DNS answers: an IP literal cannot be rebound.
    const ok =
      anyHost ||
      (host !== undefined &&
        (isIP(host) !== 0 || exact.has(host) || suffixes.some((s) => host.endsWith(s))));
    if (!ok) return false;
    if (seenHosts.size < 256) seenHosts.set(value, parsed);
    return parsed;
  };

  return (req) => {
    if ((req.url?.length ?? 0) > LIMITS.maxUrlBytes) {
      return { error: errors.uriTooLong('the URL', LIMITS.maxUrlBytes) };
    }
    const host = req.headers.host;
    let hostPort: HostPort | undefined;
    if (host === undefined) {
      // HTTP/1.0 may omit Host; browsers always send it, so there is nothing to rebind.
      if (req.httpVersion !== '1.0')
        return { error: errors.badRequest('an HTTP/1.1 request needs a Host header') };
    } else {
      const checked = checkHost(host);
      if (checked === false) return { error: errors.hostNotAllowed(host) };
      hostPort = checked;
    }
    const origin = req.headers.origin;
    if (origin === undefined) {
      // Requests a page makes without CORS (img, script, no-cors fetch) carry no Origin; only a
      // navigation (the user following a link) may come from another site.
      const site = req.headers['sec-fetch-site'];
      if (
        (site === 'cross-site' || site === 'same-site') &&
        req.headers['sec-fetch-mode'] !== 'navigate'
      )
        return { error: errors.originNotAllowed(undefined) };
      return PASS;
    }
    if (hostPort !== undefined && sameOrigin(origin, hostPort)) return PASS;
    if (anyOrigin || origins.has(origin.toLowerCase()))
      return { error: undefined, corsOrigin: origin };
    return { error: errors.originNotAllowed(origin) };
  };
}

/** Whether `origin` (a page's) is the agent's own: scheme http(s), same host and port as Host. */
function sameOrigin(origin: string, h: HostPort): boolean {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false; // "null" (sandboxed frames, file:) and garbage
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
  const defaultPort = url.protocol === 'https:' ? 443 : 80;
  const originHost = url.hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '');
  return (
    originHost === h.host &&
    (url.port === '' ? defaultPort : Number(url.port)) === (h.port ?? defaultPort)
  );
}

function canonicalOrigin(origin: string): string {
  try {
    return new URL(origin).origin;
  } catch {
    return origin.toLowerCase();
  }
}

function normaliseName(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}
