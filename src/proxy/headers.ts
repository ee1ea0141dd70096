/**
 * @module Header rules of a forwarding proxy: hop-by-hop headers are dropped both ways (RFC 9110
 * 7.6.1), the forwarding headers (X-Forwarded-For/-Proto/-Host, RFC 7239 Forwarded) are added,
 * and the caller's retry headers are replaced by the proxy's own attempt numbering.
 */
import { ATTEMPT_HEADER, DEADLINE_HEADER } from '../client/resilience/index.js';

/**
 * RFC 9110 7.6.1 names Connection, Proxy-Connection, Keep-Alive, TE, Transfer-Encoding and
 * Upgrade; Proxy-Authenticate/-Authorization and Trailer are hop-by-hop per RFC 2616 13.5.1.
 * `expect` is answered by this hop (node sends 100 Continue itself), so it goes no further.
 */
const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'proxy-connection',
  'keep-alive',
  'te',
  'transfer-encoding',
  'upgrade',
  'trailer',
  'proxy-authenticate',
  'proxy-authorization',
  'expect',
]);

/** Request headers the proxy sets itself: the caller's values are replaced or extended. */
const REPLACED: ReadonlySet<string> = new Set([
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'forwarded',
  ATTEMPT_HEADER,
]);

/** Connection values that name no header (keep-alive, close, upgrade are options, not names). */
const NO_TOKENS: ReadonlySet<string> = new Set(['close', 'keep-alive', 'upgrade']);

/**
 * End-to-end headers a Connection header cannot make hop-by-hop (RFC 9110 7.6.1 lets a sender
 * name any header; a proxy need not obey it where that would break the message it forwards):
 * - `host`: RFC 9112 3.2 requires it of every HTTP/1.1 request; the gateway routes by it and the
 *   upstream's virtual hosting reads it. Stripped, the upstream client would put the instance's
 *   own address in its place.
 * - `content-length`: the message's framing (RFC 9112 6.3), which the engine reads to know
 *   whether a body follows; stripped, a sized body would go on chunked (which some upstreams
 *   refuse with 411), and a response to HEAD would lose its size.
 * Transfer-Encoding is hop-by-hop anyway (each hop frames its own body). The headers the proxy
 * sets itself (X-Forwarded-*, Forwarded, the attempt and deadline headers, a route's own) are
 * added after the named ones are dropped, so a client cannot strip those either.
 */
const NOT_HOP_BY_HOP: ReadonlySet<string> = new Set(['host', 'content-length']);

/** RFC 9110 5.6.2: a token (a header name, an RFC 7239 value that needs no quotes). */
export const HTTP_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * The lengths of `names`, for a cheap first test: a name of no listed length is none of them
 * (most header names are rejected on their length alone, without lower-casing).
 */
function lengthsOf(names: Iterable<string>): (name: string) => boolean {
  const list = [...names];
  const lengths = new Uint8Array(Math.max(...list.map((n) => n.length)) + 1);
  for (const name of list) lengths[name.length] = 1;
  return (name) => name.length < lengths.length && lengths[name.length] === 1;
}

/** Whether a request header name may be one the proxy drops or replaces. */
const mayBeDropped = lengthsOf([...HOP_BY_HOP, ...REPLACED, DEADLINE_HEADER]);
/** Whether a response header name may be hop-by-hop. */
const mayBeHopByHop = lengthsOf(HOP_BY_HOP);

/** True for a header that applies to one connection only and is never forwarded. */
export function isHopByHop(lowerName: string): boolean {
  return HOP_BY_HOP.has(lowerName);
}

/** The header names a Connection header value lists (they are hop-by-hop too). */
export function connectionTokens(value: string | undefined): ReadonlySet<string> | undefined {
  if (value === undefined || value === '') return undefined;
  // The usual values list no header: answer them without splitting.
  if (value.length <= 10 && NO_TOKENS.has(value.toLowerCase())) return undefined;
  let tokens: Set<string> | undefined;
  for (const raw of value.split(',')) {
    const t = raw.trim().toLowerCase();
    if (t === '' || NO_TOKENS.has(t) || NOT_HOP_BY_HOP.has(t)) continue;
    (tokens ??= new Set()).add(t);
  }
  return tokens;
}

/** What the proxy reads itself of a request's raw headers, found in one walk over them. */
export interface RequestHeadScan {
  /** Host lines (RFC 9112 3.2 allows one), and the index of the first one's name (-1: none). */
  readonly hosts: number;
  readonly hostAt: number;
  /** The values of these headers, lines of one name joined with ", " (undefined: none). */
  readonly connection: string | undefined;
  readonly xff: string | undefined;
  readonly forwarded: string | undefined;
}

/** Whether a name starting with h/H is Host, in any case (no lower-cased copy per request). */
function isHost(name: string): boolean {
  return (
    name.length === 4 &&
    (name.charCodeAt(1) | 0x20) === 0x6f &&
    (name.charCodeAt(2) | 0x20) === 0x73 &&
    (name.charCodeAt(3) | 0x20) === 0x74
  );
}

/** Walks a request's raw headers (node's `rawHeaders`) once for the ones the proxy reads. */
export function scanRequestHead(raw: readonly string[]): RequestHeadScan {
  let hosts = 0;
  let hostAt = -1;
  let connection: string | undefined;
  let xff: string | undefined;
  let forwarded: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    // Cheap pre-check: only these few names need the lower-cased comparison.
    const c = name.charCodeAt(0) | 0x20;
    if (c === 0x68 /* h */) {
      if (isHost(name) && hosts++ === 0) hostAt = i;
      continue;
    }
    if (c !== 0x63 && c !== 0x78 && c !== 0x66) continue; // c, x, f
    const lower = name.toLowerCase();
    if (lower === 'connection') connection = join(connection, raw[i + 1] as string);
    else if (lower === 'x-forwarded-for') xff = join(xff, raw[i + 1] as string);
    else if (lower === 'forwarded') forwarded = join(forwarded, raw[i + 1] as string);
  }
  return { hosts, hostAt, connection, xff, forwarded };
}

/** What the proxy knows about a request and its downstream connection, for the upstream head. */
export interface ForwardedFacts {
  readonly remoteAddress: string;
  readonly proto: 'http' | 'https';
  /**
   * The authority the request is for: it replaces the value of the request's Host line (or is
   * added as one where there is none, unless empty) and is the X-Forwarded-Host.
   */
  readonly host: string;
  /** scanRequestHead() of the same raw headers, when the caller has it (else walked again). */
  readonly head?: RequestHeadScan | undefined;
}

/** RFC 7239 6: an IPv6 node is quoted and bracketed. */
function forwardedNode(address: string): string {
  return address.includes(':') ? `"[${address}]"` : address;
}

/** The last forwardedValue() answer: a proxy sees the same few Host values over and over. */
let lastForwardedIn = '';
let lastForwardedOut = '';

/** RFC 7239 4: a value that is not a token is a quoted string. */
function forwardedValue(value: string): string {
  if (value === lastForwardedIn) return lastForwardedOut;
  const out = HTTP_TOKEN.test(value) ? value : `"${value.replace(/["\\]/g, (c) => `\\${c}`)}"`;
  lastForwardedIn = value;
  lastForwardedOut = out;
  return out;
}

/** lengthMask(): every length may be a removed name's (one is 32 characters or longer). */
const ALL_LENGTHS = -1;

/**
 * The lengths of `names` as bits (bit n: a name of n characters), for a filter that skips the
 * lower-casing of names no removed name can match; ALL_LENGTHS when one is too long to be a bit.
 */
function lengthMask(names: ReadonlySet<string> | undefined): number {
  if (names === undefined) return 0;
  let mask = 0;
  for (const n of names) {
    if (n.length >= 32) return ALL_LENGTHS;
    mask |= 1 << n.length;
  }
  return mask;
}

/** Whether `name`'s length is one of `mask`'s (lengthMask). */
function hasLength(mask: number, name: string): boolean {
  return name.length < 32 && ((mask >>> name.length) & 1) === 1;
}

/**
 * Builds the upstream request's headers from the downstream raw headers (node's `rawHeaders`,
 * name/value pairs with duplicates kept) as a flat name/value array for undici: hop-by-hop
 * headers and the ones Connection lists are dropped, the forwarding headers are appended to, and
 * `extra` (the attempt/deadline headers, filter additions) is added. `remove` holds lower-case
 * names to drop as well. `keepUpgrade` keeps Connection: upgrade and Upgrade (for an Upgrade
 * request, which must carry them to the next hop, RFC 9110 7.8). The caller MUST have refused a
 * request of more than one Host line (see requestTarget): the first one's value is replaced.
 */
export function upstreamRequestHeaders(
  raw: readonly string[],
  facts: ForwardedFacts,
  extra: Readonly<RequestHeaderExtras> | undefined,
  remove: ReadonlySet<string> | undefined,
  keepUpgrade = false,
): string[] {
  const { hostAt, connection, xff, forwarded } = facts.head ?? scanRequestHead(raw);
  const listed = connectionTokens(connection);
  // Without Connection-listed names, only names of a dropped or removed length need
  // lower-casing (a filter that removes or sets one header must not make every name pay).
  const removedLengths = lengthMask(remove);
  const byLength = listed === undefined && removedLengths !== ALL_LENGTHS;
  const out: string[] = [];
  // RFC 9112 3.2.2: the one Host sent on is the authority the request was routed by (unless a
  // route removes or sets Host itself).
  const host = remove?.has('host') === true ? -2 : hostAt;
  if (host === -1 && facts.host !== '') out.push('host', facts.host);
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (i === host) {
      out.push(name, facts.host);
      continue;
    }
    if (byLength && !mayBeDropped(name) && !hasLength(removedLengths, name)) {
      out.push(name, raw[i + 1] as string);
      continue;
    }
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || REPLACED.has(lower) || lower === DEADLINE_HEADER) {
      if (keepUpgrade && lower === 'upgrade') out.push(name, raw[i + 1] as string);
      continue;
    }
    if (listed?.has(lower) === true || remove?.has(lower) === true) continue;
    out.push(name, raw[i + 1] as string);
  }
  if (keepUpgrade) out.push('connection', 'upgrade');
  const forwardedFor = xff === undefined ? facts.remoteAddress : `${xff}, ${facts.remoteAddress}`;
  const element = `for=${forwardedNode(facts.remoteAddress)};host=${forwardedValue(facts.host)};proto=${facts.proto}`;
  out.push(
    'x-forwarded-for',
    forwardedFor,
    'x-forwarded-proto',
    facts.proto,
    'x-forwarded-host',
    facts.host,
    'forwarded',
    forwarded === undefined ? element : `${forwarded}, ${element}`,
  );
  if (extra !== undefined) {
    for (const k in extra) {
      const v = extra[k] as string | readonly string[];
      if (typeof v === 'string') out.push(k, v);
      else for (const one of v) out.push(k, one);
    }
  }
  return out;
}

/** Headers a filter adds to the upstream request: one value, or several (`add` after `set`). */
export type RequestHeaderExtras = Record<string, string | readonly string[]>;

/** Adds `value` to `name` in `extras` (made when undefined), after any value it holds. */
export function addRequestHeaderExtra(
  extras: RequestHeaderExtras | undefined,
  name: string,
  value: string,
): RequestHeaderExtras {
  const out = extras ?? {};
  const prev = out[name];
  out[name] =
    prev === undefined ? value : typeof prev === 'string' ? [prev, value] : [...prev, value];
  return out;
}

function join(a: string | undefined, b: string): string {
  return a === undefined ? b : `${a}, ${b}`;
}

/**
 * A response head as the engine passes it on: a flat `[name, value, name, value, ...]` list
 * (names as the upstream spelled them, duplicates kept), which `res.writeHead` takes as it is.
 */
export type ResponseHeaderList = string[];

/**
 * The response head of an upstream (undici's raw header Buffers) as a header list, read as
 * latin1 so that every byte passes unchanged.
 */
export function responseHeaderList(raw: readonly (Buffer | string)[]): ResponseHeaderList {
  const out: ResponseHeaderList = new Array<string>(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const v = raw[i] as Buffer | string;
    out[i] = typeof v === 'string' ? v : v.toString('latin1');
  }
  return out;
}

/**
 * Drops the hop-by-hop headers (and those the upstream's Connection lists) from a response
 * header list, in place, and answers the same list.
 */
export function stripResponseHeaders(list: ResponseHeaderList): ResponseHeaderList {
  let connection: string | undefined;
  let w = 0;
  for (let r = 0; r < list.length; r += 2) {
    const name = list[r] as string;
    const value = list[r + 1] as string;
    if (mayBeHopByHop(name)) {
      const lower = name.toLowerCase();
      if (HOP_BY_HOP.has(lower)) {
        if (lower === 'connection') connection = join(connection, value);
        continue;
      }
    }
    list[w++] = name;
    list[w++] = value;
  }
  list.length = w;
  const listed = connectionTokens(connection);
  if (listed !== undefined) for (const name of listed) removeHeader(list, name);
  return list;
}

/** Removes every `lowerName` header from a header list, in place. */
export function removeHeader(list: ResponseHeaderList, lowerName: string): void {
  let w = 0;
  for (let r = 0; r < list.length; r += 2) {
    const name = list[r] as string;
    if (name.length === lowerName.length && name.toLowerCase() === lowerName) continue;
    list[w++] = name;
    list[w++] = list[r + 1] as string;
  }
  list.length = w;
}
