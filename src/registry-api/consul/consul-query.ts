/**
 * @module Consul's query parameters: blocking (`index`, `wait`), consistency flags, `dc`, `ns`,
 * bools (`passing`), tokens. Messages are Consul's (shared/docs/consul-api.md §1.1, §4).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { parseDurationMs } from '../../core/duration.js';
import type { Query } from '../query.js';
import { refuse } from './consul-refuse.js';

/** Consul's default_query_time: a blocking query without `wait` waits this long. */
export const CONSUL_DEFAULT_WAIT_MS = 300_000;

export const first = (v: string | string[] | undefined): string | undefined =>
  Array.isArray(v) ? v[0] : v;
export const every = (v: string | string[] | undefined): string[] =>
  v === undefined ? [] : Array.isArray(v) ? v : [v];

/** `index` (0: do not block) and `wait` in ms. */
export function parseConsulBlocking(q: Query): { index: number; waitMs: number } {
  const rawIndex = first(q.index);
  let index = 0;
  if (rawIndex !== undefined && rawIndex !== '') {
    if (!/^\d{1,20}$/.test(rawIndex)) throw refuse('Invalid index');
    // Above 2^53 the client's index cannot be one of ours: block (Consul does too) until wait.
    index = Math.min(Number(rawIndex), Number.MAX_SAFE_INTEGER);
  }
  const rawWait = first(q.wait);
  let waitMs = CONSUL_DEFAULT_WAIT_MS;
  if (rawWait !== undefined && rawWait !== '') {
    // Go durations need a unit ("10s"); "0" alone is allowed.
    const ms =
      rawWait === '0' ? 0 : /^\d+(\.\d+)?$/.test(rawWait) ? undefined : parseDurationMs(rawWait);
    if (ms === undefined) throw refuse('Invalid wait time');
    waitMs = ms === 0 ? CONSUL_DEFAULT_WAIT_MS : ms;
  }
  return { index, waitMs };
}

/**
 * Validates `stale` / `consistent` / `dc` / `ns`. A single agent answers every consistency
 * mode the same; it only refuses what Consul refuses.
 */
export function checkReadOptions(q: Query, datacenter: string): void {
  if ('stale' in q && 'consistent' in q)
    throw refuse('Cannot specify ?stale with ?consistent, conflicting semantics.');
  if ('cached' in q && 'consistent' in q)
    throw refuse('Cannot specify ?cached with ?consistent, conflicting semantics.');
  const maxStale = first(q.max_stale);
  if (maxStale !== undefined && maxStale !== '' && parseDurationMs(maxStale) === undefined)
    throw refuse(`Invalid max_stale value "${maxStale}"`);
  checkDatacenter(q, datacenter);
}

/** `?dc=` other than ours has no path (Consul: 500); `?ns=` other than default is Enterprise. */
export function checkDatacenter(q: Query, datacenter: string): void {
  const dc = first(q.dc);
  if (dc !== undefined && dc !== '' && dc !== datacenter)
    throw refuse('No path to datacenter', 500);
  const ns = first(q.ns);
  if (ns !== undefined && ns !== '' && ns !== 'default')
    throw refuse('Invalid query parameter: "ns" - Namespaces are a Consul Enterprise feature');
}

/** Go's strconv.ParseBool, with "present but empty" meaning true (Consul's getBoolQueryParam). */
export function parseBoolParam(q: Query, name: string): boolean {
  if (!(name in q)) return false;
  const v = first(q[name]) ?? '';
  if (v === '' || /^(1|t|T|TRUE|true|True)$/.test(v)) return true;
  if (/^(0|f|F|FALSE|false|False)$/.test(v)) return false;
  throw refuse(`Invalid value for ?${name}`);
}

/** `?enable=` of the maintenance endpoints: required, a Go bool. */
export function parseEnable(q: Query): boolean {
  const v = first(q.enable);
  if (v === undefined || v === '') throw refuse('Missing value for enable');
  if (/^(1|t|T|TRUE|true|True)$/.test(v)) return true;
  if (/^(0|f|F|FALSE|false|False)$/.test(v)) return false;
  throw refuse(`Invalid value for enable: "${v}"`);
}

/**
 * True when a request carries the marks of a browser sending it from another site: such a GET
 * must not reach a write endpoint (a web page could otherwise deregister services with an <img>).
 */
export function fromBrowser(headers: IncomingHttpHeaders): boolean {
  if (headers.origin !== undefined) return true;
  const site = first(headers['sec-fetch-site']);
  return site !== undefined && site !== 'same-origin' && site !== 'none';
}
