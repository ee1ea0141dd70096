/**
 * @module Response cache (a DestinationRule's `cache`): GET and HEAD responses of a cluster
 * kept in memory and answered from there while fresh, with an `age` header (seconds) and
 * `x-meshwork-cache: hit`; the upstream's answers carry `x-meshwork-cache: miss` (looked up, not
 * found) or `bypass` (not looked up). The rules, deliberately simple and safe for a shared
 * cache (RFC 9111):
 * - looked up: GET and HEAD (separate entries) by Host and path with query (after rewrites);
 *   bypassed: a request with `Cache-Control: no-cache` or `no-store`, `Pragma: no-cache`, or an
 *   `Authorization` header;
 * - stored: a complete response of status 200, 203, 204, 300, 301, 308, 404 or 410 whose
 *   Cache-Control has no `no-store`, `no-cache` (revalidation is not implemented) or `private`,
 *   with no `Vary` (variants are not kept) and no `Set-Cookie`, whose body is at most
 *   `maxBodyBytes`; fresh for `s-maxage`, else `max-age`, else `defaultTtlMs` (absent: not
 *   stored); 0 is not stored;
 * - at most `maxEntries` entries, the least recently used dropped first; an expired entry is
 *   dropped when next asked for.
 */
import type { Clock } from '../../../core/clock.js';
import { systemClock } from '../../../core/clock.js';
import type { Filter, FilterExchange, FilterStatus, ResponseTap } from '../../filter.js';
import type { ResponseHeaderList } from '../../headers.js';

export interface ResponseCacheOptions {
  readonly maxEntries: number;
  readonly maxBodyBytes: number;
  readonly defaultTtlMs?: number | undefined;
}

/** The problems of cache options, each naming its field under `field`. */
export function responseCacheProblems(o: ResponseCacheOptions, field: string): string[] {
  const problems: string[] = [];
  if (!(Number.isInteger(o.maxEntries) && o.maxEntries >= 1 && o.maxEntries <= 1_000_000))
    problems.push(`${field}.maxEntries: must be a whole number 1..1000000`);
  if (!(Number.isInteger(o.maxBodyBytes) && o.maxBodyBytes >= 0 && o.maxBodyBytes <= 64 * 2 ** 20))
    problems.push(`${field}.maxBodyBytes: must be a whole number 0..67108864 (64 MiB)`);
  const ttl = o.defaultTtlMs;
  if (ttl !== undefined && !(Number.isInteger(ttl) && ttl >= 0 && ttl <= 31_536_000_000))
    problems.push(`${field}.defaultTtlMs: must be a whole number of ms, 0..31536000000`);
  return problems;
}

/** Counts what the cache did (the proxy's metrics read them). */
export interface CacheCounts {
  cacheHit: number;
  cacheMiss: number;
  cacheBypass: number;
}

interface Entry {
  readonly status: number;
  /** The head as stored: content-length set to the body's, no age or cache marker. */
  readonly headers: readonly string[];
  readonly body: Buffer;
  readonly storedAt: number;
  readonly ttlMs: number;
}

const STORABLE = new Set([200, 203, 204, 300, 301, 308, 404, 410]);
/** Headers not stored: set again on every hit, or hop-by-hop framing. */
const NOT_STORED = new Set(['age', 'x-meshwork-cache', 'content-length', 'transfer-encoding']);
const BYPASS = 0;

/** The directives of a Cache-Control value, lower-cased (`max-age=60` -> ['max-age', '60']). */
function directives(value: string | string[] | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (value === undefined) return out;
  for (const part of (Array.isArray(value) ? value.join(',') : value).split(',')) {
    const eq = part.indexOf('=');
    const name = (eq === -1 ? part : part.slice(0, eq)).trim().toLowerCase();
    if (name !== '')
      out.set(
        name,
        eq === -1
          ? ''
          : part
              .slice(eq + 1)
              .trim()
              .replace(/^"|"$/g, ''),
      );
  }
  return out;
}

/** A delta-seconds directive's value in ms, or undefined when absent or not a number. */
function seconds(d: Map<string, string>, name: string): number | undefined {
  const v = d.get(name);
  return v !== undefined && /^\d+$/.test(v) ? Number(v) * 1000 : undefined;
}

/** How long a response may be kept: undefined when it must not be. */
export function freshnessMs(
  status: number,
  headers: ResponseHeaderList,
  defaultTtlMs: number | undefined,
): number | undefined {
  if (!STORABLE.has(status)) return undefined;
  let cacheControl: string | undefined;
  for (let i = 0; i < headers.length; i += 2) {
    const name = (headers[i] as string).toLowerCase();
    if (name === 'vary' || name === 'set-cookie') return undefined;
    if (name === 'cache-control')
      cacheControl =
        cacheControl === undefined ? headers[i + 1] : `${cacheControl},${headers[i + 1]}`;
  }
  const d = directives(cacheControl);
  if (d.has('no-store') || d.has('no-cache') || d.has('private')) return undefined;
  const ttl = seconds(d, 's-maxage') ?? seconds(d, 'max-age') ?? defaultTtlMs;
  return ttl === undefined || ttl <= 0 ? undefined : ttl;
}

/** The cache of one cluster. `options` MUST have passed responseCacheProblems. */
export function createResponseCacheFilter(
  options: ResponseCacheOptions,
  clock: Clock = systemClock,
  counts: CacheCounts = { cacheHit: 0, cacheMiss: 0, cacheBypass: 0 },
): Filter & { readonly size: number } {
  const entries = new Map<string, Entry>();
  /** Per request looked up: its key (a miss to fill), or BYPASS. */
  const pending = new WeakMap<FilterExchange, string | typeof BYPASS>();
  const { maxEntries, maxBodyBytes, defaultTtlMs } = options;

  const store = (key: string, entry: Entry): void => {
    entries.delete(key);
    entries.set(key, entry);
    while (entries.size > maxEntries) entries.delete(entries.keys().next().value as string);
  };

  return {
    name: 'response-cache',
    get size() {
      return entries.size;
    },
    onRequest(ex): FilterStatus {
      const method = ex.method;
      if (method !== 'GET' && method !== 'HEAD') return 'continue';
      const h = ex.headers;
      if (h.upgrade !== undefined) return 'continue'; // a tunnel, not a response to keep
      const req = directives(h['cache-control']);
      if (
        req.has('no-cache') ||
        req.has('no-store') ||
        h.pragma === 'no-cache' ||
        h.authorization !== undefined
      ) {
        counts.cacheBypass++;
        pending.set(ex, BYPASS);
        return 'continue';
      }
      const key = `${method} ${h.host ?? ''} ${ex.path}`;
      const entry = entries.get(key);
      if (entry !== undefined) {
        const age = clock.now() - entry.storedAt;
        if (age < entry.ttlMs) {
          entries.delete(key); // most recently used goes last
          entries.set(key, entry);
          counts.cacheHit++;
          const headers = entry.headers.concat(
            'age',
            String(Math.floor(age / 1000)),
            'x-meshwork-cache',
            'hit',
          );
          return { status: entry.status, body: null, raw: { headers, body: entry.body } };
        }
        entries.delete(key);
      }
      counts.cacheMiss++;
      pending.set(ex, key);
      return 'continue';
    },
    onResponse(ex, status, headers): ResponseTap | undefined {
      const key = pending.get(ex);
      if (key === undefined) return undefined;
      pending.delete(ex);
      if (key === BYPASS) {
        headers.push('x-meshwork-cache', 'bypass');
        return undefined;
      }
      const ttlMs = freshnessMs(status, headers, defaultTtlMs);
      const stored: string[] = [];
      let declared: string | undefined;
      for (let i = 0; i < headers.length; i += 2) {
        const name = (headers[i] as string).toLowerCase();
        if (name === 'content-length') declared = headers[i + 1];
        if (!NOT_STORED.has(name)) stored.push(headers[i] as string, headers[i + 1] as string);
      }
      headers.push('x-meshwork-cache', 'miss');
      if (ttlMs === undefined) return undefined;
      if (declared !== undefined && Number(declared) > maxBodyBytes) return undefined;
      const chunks: Buffer[] = [];
      let size = 0;
      let over = false;
      return {
        onData(chunk) {
          if (over) return;
          size += chunk.length;
          if (size > maxBodyBytes) {
            over = true;
            chunks.length = 0;
          } else chunks.push(chunk);
        },
        onEnd() {
          if (over) return;
          const body = Buffer.concat(chunks, size);
          // A HEAD answer has no body: it keeps the length the upstream declared.
          const length = ex.method === 'HEAD' && declared !== undefined ? declared : String(size);
          stored.push('content-length', length);
          store(key, { status, headers: stored, body, storedAt: clock.now(), ttlMs });
        },
      };
    },
  };
}
