/**
 * @module Trace context on the wire (issue 21): W3C Trace Context (`traceparent`, `tracestate`,
 * https://www.w3.org/TR/trace-context/) and Zipkin's B3 (`b3`, `x-b3-*`,
 * https://github.com/openzipkin/b3-propagation), parsed by hand: the proxies read them on every
 * request of a traced listener. A malformed header parses to undefined (the caller ignores it and
 * starts a new trace); nothing here throws.
 */

/** A caller's span as a header carried it. Ids are lowercase hex. */
export interface TraceContext {
  /** 32 hex digits, not all zero (a 64-bit B3 trace id is left-padded with zeros). */
  readonly traceId: string;
  /** The caller's span: 16 hex digits, not all zero. */
  readonly spanId: string;
  /** The caller's sampling decision; undefined: it deferred (B3 without a sampling state). */
  readonly sampled: boolean | undefined;
}

/** B3 as it came: a context, or a sampling decision alone (`b3: 1`, `x-b3-sampled: 0`). */
export interface B3Header {
  /** undefined: the header carried no ids, only a sampling state. */
  readonly context: TraceContext | undefined;
  /** The sampling state when no ids came; with ids, `context.sampled`. */
  readonly sampled: boolean | undefined;
  /** The trace id came as 16 hex digits (64 bits): sent on in the same width. */
  readonly shortTraceId: boolean;
  /** `single`: the `b3` header; `multi`: the `x-b3-*` headers. */
  readonly form: 'single' | 'multi';
}

/** Whether `s[from, from + length)` is lowercase hex and not all zeros. */
function isHexId(s: string, from: number, length: number): boolean {
  let nonZero = false;
  for (let i = from; i < from + length; i++) {
    const c = s.charCodeAt(i);
    if (c === 48) continue;
    if ((c > 48 && c <= 57) || (c >= 97 && c <= 102)) nonZero = true;
    else return false;
  }
  return nonZero;
}

/** Whether `s[from, from + 2)` is two lowercase hex digits. */
function isHexByte(s: string, from: number): boolean {
  for (let i = from; i < from + 2; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}

const DASH = 45;

/**
 * Parses a `traceparent` header (`00-<trace-id>-<parent-id>-<flags>`). Version 00 is exactly 55
 * characters; a later version may carry more after a `-` (W3C Trace Context §3.2.4: parse what
 * version 00 defines); version ff is invalid. A list (the header sent twice, joined by node with
 * ", ") is invalid too.
 *
 * @example
 * parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')
 * // { traceId: '4bf92f35...', spanId: '00f067aa0ba902b7', sampled: true }
 */
export function parseTraceparent(value: unknown): TraceContext | undefined {
  const sampled = traceparentSampled(value);
  if (sampled === undefined) return undefined;
  const v = value as string;
  return { traceId: v.slice(3, 35), spanId: v.slice(36, 52), sampled };
}

/**
 * The sampled flag of a well-formed `traceparent` (as parseTraceparent reads it), undefined when
 * it is malformed: a hop that only passes an unsampled caller's context on reads this much of
 * it, with nothing made.
 */
export function traceparentSampled(value: unknown): boolean | undefined {
  if (typeof value !== 'string' || value.length < 55) return undefined;
  if (!isHexByte(value, 0)) return undefined;
  const v0 = value.charCodeAt(0);
  const v1 = value.charCodeAt(1);
  if (v0 === 102 && v1 === 102) return undefined; // version ff
  const version00 = v0 === 48 && v1 === 48;
  if (version00 ? value.length !== 55 : value.length > 55 && value.charCodeAt(55) !== DASH)
    return undefined;
  if (value.charCodeAt(2) !== DASH || value.charCodeAt(35) !== DASH) return undefined;
  if (value.charCodeAt(52) !== DASH) return undefined;
  if (!isHexId(value, 3, 32) || !isHexId(value, 36, 16) || !isHexByte(value, 53)) return undefined;
  // The flags byte's low bit; its high digit (character 53) carries no sampling.
  const low = value.charCodeAt(54);
  return ((low <= 57 ? low - 48 : low - 87) & 1) === 1;
}

/** `00-<traceId>-<spanId>-<01|00>`. */
export function formatTraceparent(traceId: string, spanId: string, sampled: boolean): string {
  return `00-${traceId}-${spanId}-${sampled ? '01' : '00'}`;
}

/**
 * A B3 trace id (`x-b3-traceid`, or the first field of `b3`: 16 or 32 lowercase hex digits, not
 * all zeros) as 32 digits (a 16-digit one left-padded with zeros); undefined if malformed.
 *
 * @example
 * parseB3TraceId('a3ce929d0e0e4736') // '0000000000000000a3ce929d0e0e4736'
 */
export function parseB3TraceId(s: unknown): string | undefined {
  if (typeof s !== 'string') return undefined;
  if (s.length === 32) return isHexId(s, 0, 32) ? s : undefined;
  if (s.length === 16) return isHexId(s, 0, 16) ? `0000000000000000${s}` : undefined;
  return undefined;
}

/** B3's sampling state: `1`/`d` (debug) sampled, `0` not; anything else undefined. */
function b3Sampling(s: string): boolean | undefined {
  if (s === '1' || s === 'd') return true;
  if (s === '0') return false;
  return undefined;
}

/**
 * Parses the `b3` single header: `{traceId}-{spanId}[-{sampling}[-{parentSpanId}]]`, or a
 * sampling state alone (`0`, `1`, `d`). Malformed: undefined.
 *
 * @example
 * parseB3Single('80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90')
 */
export function parseB3Single(value: unknown): B3Header | undefined {
  if (typeof value !== 'string') return undefined;
  if (value.length === 1) {
    const sampled = b3Sampling(value);
    return sampled === undefined && value !== '0'
      ? undefined
      : { context: undefined, sampled, shortTraceId: false, form: 'single' };
  }
  const parts = value.split('-');
  if (parts.length < 2 || parts.length > 4) return undefined;
  const [rawTrace, rawSpan, rawSampling, rawParent] = parts as [string, string, string?, string?];
  const traceId = parseB3TraceId(rawTrace);
  if (traceId === undefined || rawSpan.length !== 16 || !isHexId(rawSpan, 0, 16)) return undefined;
  let sampled: boolean | undefined;
  if (rawSampling !== undefined) {
    sampled = b3Sampling(rawSampling);
    if (sampled === undefined) return undefined;
  }
  if (rawParent !== undefined && (rawParent.length !== 16 || !isHexId(rawParent, 0, 16)))
    return undefined;
  return {
    context: { traceId, spanId: rawSpan, sampled },
    sampled,
    shortTraceId: rawTrace.length === 16,
    form: 'single',
  };
}

/**
 * Request headers by lowercase name (node's IncomingHttpHeaders): parseB3Multi reads
 * `x-b3-traceid`, `x-b3-spanid`, `x-b3-sampled` and `x-b3-flags`.
 */
export type B3MultiHeaders = { readonly [lowerName: string]: unknown };

/**
 * Parses the `x-b3-*` headers: `x-b3-traceid` with `x-b3-spanid`, `x-b3-sampled` (`1`/`0`, and
 * the legacy `true`/`false`), `x-b3-flags: 1` (debug: sampled). A sampling state may come without
 * ids. Undefined: none of them, or malformed.
 */
export function parseB3Multi(headers: B3MultiHeaders): B3Header | undefined {
  const rawTrace = headers['x-b3-traceid'];
  const rawSpan = headers['x-b3-spanid'];
  const rawSampled = headers['x-b3-sampled'];
  const debug = headers['x-b3-flags'] === '1';
  let sampled: boolean | undefined;
  if (rawSampled !== undefined) {
    if (rawSampled === '1' || rawSampled === 'true') sampled = true;
    else if (rawSampled === '0' || rawSampled === 'false') sampled = false;
    else return undefined;
  }
  if (debug) sampled = true;
  if (rawTrace === undefined && rawSpan === undefined) {
    return sampled === undefined
      ? undefined
      : { context: undefined, sampled, shortTraceId: false, form: 'multi' };
  }
  if (typeof rawTrace !== 'string' || typeof rawSpan !== 'string') return undefined;
  const traceId = parseB3TraceId(rawTrace);
  if (traceId === undefined || rawSpan.length !== 16 || !isHexId(rawSpan, 0, 16)) return undefined;
  return {
    context: { traceId, spanId: rawSpan, sampled },
    sampled,
    shortTraceId: rawTrace.length === 16,
    form: 'multi',
  };
}

/** At most this many list members in a `tracestate` (W3C Trace Context §3.3.1.1). */
export const TRACESTATE_MAX_MEMBERS = 32;

// §3.3.1.3: a simple key, or tenant@system (multi-tenant); §3.3.1.4: the value.
const TRACESTATE_KEY =
  /^(?:[a-z][a-z0-9_\-*/]{0,255}|[a-z0-9][a-z0-9_\-*/]{0,240}@[a-z][a-z0-9_\-*/]{0,13})$/;
const TRACESTATE_VALUE = /^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;

/**
 * Parses a `tracestate` header into its list members, in order (`key=value`, comma separated,
 * optional spaces and tabs around each, empty members allowed). Undefined when malformed: a bad
 * key or value, a key twice, more than 32 members. The header sent twice and joined by node with
 * ", " is one list (§3.3.1.1 combines them so).
 *
 * @example
 * parseTraceState('rojo=00f067aa0ba902b7, congo=t61rcWkgMzE') // [['rojo', '00f0...'], ['congo', 't61rcWkgMzE']]
 */
export function parseTraceState(value: unknown): [string, string][] | undefined {
  if (typeof value !== 'string') return undefined;
  const out: [string, string][] = [];
  const keys = new Set<string>();
  for (const raw of value.split(',')) {
    const member = raw.replace(/^[ \t]+|[ \t]+$/g, '');
    if (member === '') continue;
    const eq = member.indexOf('=');
    if (eq <= 0) return undefined;
    const key = member.slice(0, eq);
    const val = member.slice(eq + 1);
    if (!TRACESTATE_KEY.test(key) || !TRACESTATE_VALUE.test(val) || keys.has(key)) return undefined;
    keys.add(key);
    out.push([key, val]);
    if (out.length > TRACESTATE_MAX_MEMBERS) return undefined;
  }
  return out;
}

/** The list members as a `tracestate` header. */
export function formatTraceState(members: readonly (readonly [string, string])[]): string {
  return members.map(([k, v]) => `${k}=${v}`).join(',');
}
