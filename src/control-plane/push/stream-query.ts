/** @module The query of `GET /api/v1/mesh/stream`: who the proxy is and the version it holds. */
import { z } from 'zod';
import type { ProxyIdentity } from '../../protocol/mesh/snapshot.js';
import { printable } from '../../protocol/registration.js';
import { parseOrThrow } from '../../protocol/validation.js';
import { errors } from '../../core/errors.js';

/** A proxy's stream request: its identity, and the last good version it holds (if any). */
export interface StreamRequest {
  readonly proxy: ProxyIdentity;
  readonly version?: string;
}

const NAME_MAX = 256;
const MAX_UPSTREAMS = 1024;

const streamQuerySchema = z
  .object({
    id: printable(NAME_MAX, 1),
    kind: z.enum(['gateway', 'sidecar']),
    name: printable(NAME_MAX, 1),
    namespace: printable(NAME_MAX, 1).optional(),
    upstreams: printable(64 * 1024).optional(),
    version: printable(NAME_MAX, 1).optional(),
  })
  .strict();

/**
 * Parses the stream query (`id`, `kind`, `name`, `namespace`, `upstreams=a,b`, `version`).
 * Throws a validation error naming the parameter: a parameter given twice, an unknown one
 * (a misspelt `upstream` would otherwise widen the snapshot to every service), an empty entry of
 * `upstreams`. `upstreams=` (empty) declares that the proxy calls nothing.
 */
export function parseStreamQuery(query: unknown): StreamRequest {
  const given = (typeof query === 'object' && query !== null ? query : {}) as Record<
    string,
    unknown
  >;
  // `?token=` is the request's ACL token (the API's ACL hook reads it), not a stream option.
  const { token: _token, ...raw } = given;
  for (const [key, value] of Object.entries(raw)) {
    if (Array.isArray(value)) throw errors.validation(key, 'must be given once');
  }
  const q = parseOrThrow(streamQuerySchema, raw);
  let upstreams: string[] | undefined;
  if (q.upstreams !== undefined) {
    upstreams = q.upstreams === '' ? [] : q.upstreams.split(',');
    if (upstreams.some((u) => u.trim() === ''))
      throw errors.validation('upstreams', 'must be a comma-separated list of names, none empty');
    if (upstreams.length > MAX_UPSTREAMS)
      throw errors.validation('upstreams', `must list at most ${MAX_UPSTREAMS} names`);
    upstreams = [...new Set(upstreams.map((u) => u.trim()))];
  }
  const proxy: ProxyIdentity = {
    id: q.id,
    kind: q.kind,
    name: q.name,
    namespace: q.namespace ?? 'default',
    ...(upstreams === undefined ? {} : { upstreams }),
  };
  return q.version === undefined ? { proxy } : { proxy, version: q.version };
}
