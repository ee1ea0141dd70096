/** @module Validating a policy's options once: defaults merged in, every problem in one error, the result deep-frozen. */
import type { z } from 'zod';
import { errors } from '../../core/errors.js';
import { formatPath } from '../../protocol/validation.js';

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function withoutUndefined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

function deepFreeze<T>(o: T): T {
  if (o !== null && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

/**
 * Merges `input` over `defaults` (nested objects too, so `{ backoff: { maxMs: 50 } }` keeps the
 * default `baseMs`; undefined means "the default"), validates with `schema` and deep-freezes.
 * Throws one CONFIG_INVALID MeshError listing every problem, each prefixed with `name`.
 */
export function resolveOptions<S extends z.ZodType>(
  name: string,
  schema: S,
  defaults: Readonly<Record<string, unknown>>,
  input: unknown,
): Readonly<z.output<S>> {
  if (input !== undefined && !isPlainObject(input))
    throw errors.configInvalid([`${name}: options must be an object`]);
  const merged: Record<string, unknown> = { ...defaults };
  for (const [k, v] of Object.entries(withoutUndefined(input ?? {}))) {
    const d = defaults[k];
    merged[k] = isPlainObject(d) && isPlainObject(v) ? { ...d, ...withoutUndefined(v) } : v;
  }
  const r = schema.safeParse(merged);
  if (r.success) return deepFreeze(r.data);
  throw errors.configInvalid(
    r.error.issues.map((issue) =>
      issue.code === 'unrecognized_keys'
        ? `${formatPath([...issue.path, issue.keys.join(', ')], name)}: unknown option`
        : `${formatPath(issue.path, name)}: ${issue.message}`,
    ),
  );
}
