/** @module Parsing of query parameters shared by the /api/v1 read endpoints. */
import { parseDurationMs } from '../core/duration.js';
import { errors } from '../core/errors.js';
import { INSTANCE_STATUSES, type InstanceStatus } from '../core/types.js';
import type { FastifyRequest } from 'fastify';
import {
  createWaitCancellation,
  type CatalogWatcher,
  type InstanceFilter,
  type Topic,
} from '../registry/catalog-facade.js';

export type Query = Record<string, string | string[] | undefined>;

/** Blocking-query parameters: `index` (0 = do not block) and `wait` in ms. */
export interface BlockingParams {
  readonly index: number;
  readonly waitMs: number;
}

/** Consul's default wait when `index` is given without `wait`. */
export const DEFAULT_WAIT_MS = 300_000;

/** The first value of a query parameter given once or repeated. */
export const first = (v: string | string[] | undefined): string | undefined =>
  Array.isArray(v) ? v[0] : v;
const all = (v: string | string[] | undefined): string[] =>
  v === undefined ? [] : Array.isArray(v) ? v : [v];

export function parseBlocking(q: Query): BlockingParams {
  const rawIndex = first(q.index);
  let index = 0;
  if (rawIndex !== undefined && rawIndex !== '') {
    if (!/^\d{1,16}$/.test(rawIndex))
      throw errors.validation('index', 'must be a non-negative integer');
    index = Number(rawIndex);
  }
  const rawWait = first(q.wait);
  let waitMs = DEFAULT_WAIT_MS;
  if (rawWait !== undefined && rawWait !== '') {
    const ms = parseDurationMs(rawWait);
    if (ms === undefined)
      throw errors.validation('wait', 'must be a duration like "30s" or a number of ms');
    waitMs = ms;
  }
  return { index, waitMs };
}

export function parseInstanceFilter(q: Query): InstanceFilter {
  const filter: {
    status?: InstanceStatus[];
    tags?: string[];
    meta?: Record<string, string>;
    zone?: string;
  } = {};
  const statuses = all(q.status)
    .flatMap((s) => s.split(','))
    .filter((s) => s !== '');
  if (statuses.length > 0) {
    for (const s of statuses) {
      if (!(INSTANCE_STATUSES as readonly string[]).includes(s)) {
        throw errors.validation('status', `must be one of ${INSTANCE_STATUSES.join(', ')}`);
      }
    }
    filter.status = statuses as InstanceStatus[];
  }
  const tags = all(q.tag).filter((t) => t !== '');
  if (tags.length > 0) filter.tags = tags;
  const zone = first(q.zone);
  if (zone !== undefined && zone !== '') filter.zone = zone;
  for (const [k, v] of Object.entries(q)) {
    if (k.startsWith('meta.') && k.length > 5) {
      filter.meta ??= {};
      filter.meta[k.slice(5)] = first(v) ?? '';
    }
  }
  return filter;
}

/** The query string minus blocking parameters: the cache key of a filtered read. */
export function filterKey(q: Query): string {
  let keys: string[] | undefined;
  for (const k in q) {
    if (k === 'index' || k === 'wait') continue;
    (keys ??= []).push(k);
  }
  // Most reads carry no filter, or one (a blocking query re-issued a thousand times a change).
  if (keys === undefined) return '';
  if (keys.length > 1) keys.sort();
  let out = '';
  for (const k of keys) {
    for (const v of all(q[k])) out += `${out === '' ? '' : '&'}${k}=${v}`;
  }
  return out;
}

/**
 * Runs a blocking query for `req`: waits until `currentIndex()` passes `index` or `waitMs` runs
 * out, and stops waiting when the client goes away. `index` 0 answers at once.
 */
export async function waitForRequest(
  registry: CatalogWatcher,
  req: FastifyRequest,
  topic: Topic,
  { index, waitMs }: BlockingParams,
  currentIndex: () => number,
): Promise<void> {
  if (index === 0) return;
  const cancellation = createWaitCancellation();
  const onClose = (): void => {
    cancellation.cancelled = true;
    cancellation.cancel?.();
  };
  req.raw.once('close', onClose);
  try {
    await registry.waitForChange(topic, index, waitMs, currentIndex, cancellation);
  } finally {
    req.raw.off('close', onClose);
  }
}
