/** @module Turning schema failures into one MeshError that names the field and the reason. */
import type { z } from 'zod';
import { errors, type MeshError } from '../core/errors.js';

/** Formats a zod issue path as `checks[0].intervalMs`. */
export function formatPath(path: readonly PropertyKey[], prefix = ''): string {
  let out = prefix;
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out;
}

/** The first issue of a failed parse, as a validation MeshError. */
export function toValidationError(error: z.ZodError, prefix = ''): MeshError {
  const issue = error.issues[0];
  if (issue === undefined) return errors.validation(prefix, 'invalid');
  let path: PropertyKey[] = [...issue.path];
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') {
    path = [...path, issue.keys[0] ?? ''];
    message = 'unknown field';
  }
  return errors.validation(formatPath(path, prefix), message);
}

/** Parses `value` with `schema` or throws a validation MeshError. */
export function parseOrThrow<T extends z.ZodType>(
  schema: T,
  value: unknown,
  prefix = '',
): z.output<T> {
  const r = schema.safeParse(value);
  if (!r.success) throw toValidationError(r.error, prefix);
  return r.data;
}
