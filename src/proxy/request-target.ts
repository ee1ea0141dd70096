/**
 * @module A request's target as RFC 9112 3.2 has a server find it: one Host line of valid value
 * (required of HTTP/1.1), the authority of an absolute-form target in its place, and the
 * origin-form path sent on; or the reason the request is refused with a 400.
 */
import { scanRequestHead, type ForwardedFacts, type RequestHeadScan } from './headers.js';

/** The parts of a request head the target is found from. */
export interface TargetRequest {
  readonly url?: string | undefined;
  readonly rawHeaders: readonly string[];
  readonly httpVersionMajor: number;
  readonly httpVersionMinor: number;
}

/** Where a request goes, as the proxy routes and forwards it. */
export interface RequestTarget extends ForwardedFacts {
  /** The authority (host and port as sent): the request's one Host upstream. */
  readonly host: string;
  readonly head: RequestHeadScan;
  /** The authority's host, lower case and without the port: what routes match on. */
  readonly hostname: string;
  /** The origin-form target sent on: path and query. */
  readonly path: string;
}

/**
 * RFC 3986 3.2.2 reg-name: unreserved, sub-delims, and "%" (which must start a pct-encoded
 * octet). Everything else (space, "@", "/", control bytes, non-ASCII) is refused.
 */
const REG_NAME = new Uint8Array(128);
/** RFC 3986 3.2.2 IP-literal, between the brackets: IPv6address or IPvFuture (no "%"). */
const IP_LITERAL = new Uint8Array(128);
for (const c of "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-._~!$&'()*+,;=") {
  REG_NAME[c.charCodeAt(0)] = IP_LITERAL[c.charCodeAt(0)] = 1;
}
REG_NAME[0x25] = 1; // %
IP_LITERAL[0x3a] = 1; // :

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66);
}

/** The last authorityHost() answer: a proxy sees the same few Host values over and over. */
let lastAuthority = '';
let lastHostname = '';

/**
 * The host of an authority (`uri-host [":" port]`, RFC 9110 7.2), lower case and without the
 * port; undefined when it is not one. An empty authority (a Host that names nothing, allowed by
 * RFC 9112 3.2) is '', but an empty host with a port is refused (RFC 9110 4.2.1).
 */
export function authorityHost(authority: string): string | undefined {
  if (authority === lastAuthority) return lastHostname;
  const n = authority.length;
  let i = 0;
  if (authority.charCodeAt(0) === 0x5b /* [ */) {
    const close = authority.indexOf(']');
    if (close < 2) return undefined;
    for (i = 1; i < close; i++) if (IP_LITERAL[authority.charCodeAt(i)] !== 1) return undefined;
    i = close + 1;
  } else {
    for (; i < n; i++) {
      const c = authority.charCodeAt(i);
      if (c === 0x3a /* : */) break;
      if (REG_NAME[c] !== 1) return undefined;
      if (c === 0x25 /* % */) {
        if (!isHex(authority.charCodeAt(i + 1)) || !isHex(authority.charCodeAt(i + 2)))
          return undefined;
        i += 2;
      }
    }
    if (i === 0 && i < n) return undefined; // ":80": a port of no host
  }
  const end = i;
  if (i < n) {
    if (authority.charCodeAt(i) !== 0x3a) return undefined;
    for (i++; i < n; i++) {
      const c = authority.charCodeAt(i);
      if (c < 0x30 || c > 0x39) return undefined;
    }
  }
  const hostname = authority.slice(0, end).toLowerCase();
  lastAuthority = authority;
  lastHostname = hostname;
  return hostname;
}

/** RFC 9112 3.2.2 absolute-form: scheme "://" authority, then path and query (maybe empty). */
const ABSOLUTE_FORM = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)(.*)$/s;

/**
 * The target of a request arriving over `proto` from `remoteAddress`, from one walk over its
 * headers (kept in `head` for the upstream head), or the reason it gets a 400.
 */
export function requestTarget(
  req: TargetRequest,
  remoteAddress: string,
  proto: 'http' | 'https',
): RequestTarget | string {
  const raw = req.rawHeaders;
  const head = scanRequestHead(raw);
  // RFC 9112 3.2: a server MUST answer 400 to a request with more than one Host line, with an
  // invalid Host value, or (HTTP/1.1) with none, whatever the form of its target.
  if (head.hosts > 1) return 'more than one Host header';
  let host = head.hostAt === -1 ? undefined : (raw[head.hostAt + 1] as string);
  if (host === undefined && req.httpVersionMajor === 1 && req.httpVersionMinor >= 1)
    return 'HTTP/1.1 request without a Host header';
  let hostname = host === undefined ? '' : authorityHost(host);
  if (hostname === undefined) return 'invalid Host header';
  let path = req.url ?? '/';
  if (path.charCodeAt(0) !== 0x2f /* / */ && path !== '*') {
    // RFC 9112 3.2.2: the Host of an absolute-form request is ignored for the target's
    // authority, and the request goes on in origin-form with that authority as its Host.
    const m = ABSOLUTE_FORM.exec(path);
    if (m === null) return 'invalid request target';
    // Only the scheme this listener serves: no forwarding to elsewhere (RFC 9110 7.4).
    if ((m[1] as string).toLowerCase() !== proto) return `scheme "${m[1]}" not served here`;
    host = m[2] as string;
    // RFC 9110 4.2.4: a recipient SHOULD treat userinfo in an http(s) URI as an error.
    if (host.includes('@')) return 'userinfo in the request target';
    hostname = authorityHost(host);
    if (hostname === undefined || hostname === '') return 'invalid authority in the request target';
    const rest = m[3] as string;
    // RFC 9112 3.2.1: an empty path is sent as "/".
    path = rest.charCodeAt(0) === 0x2f ? rest : `/${rest}`;
  }
  return { remoteAddress, proto, host: host ?? '', head, hostname, path };
}
