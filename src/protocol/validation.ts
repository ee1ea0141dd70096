/** @module Turning schema failures into one MeshError that names the field and the reason. */
import type { z } from 'zod';
import { errors, type MeshError } from '../core/errors.js';

// C0 controls, DEL and C1 controls (U+0080-U+009F).
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

/** The reason given when a name, key or tag holds a control character. */
export const NO_CONTROL_CHARS = 'must not contain control characters';

/** Whether `s` holds a control character (C0, DEL or C1): never part of a name, key or tag. */
export function hasControlChars(s: string): boolean {
  return CONTROL_CHARS.test(s);
}

/**
 * The path (`meta.__proto__`) of the first `__proto__` key in parsed JSON, if any. JSON.parse
 * keeps it as an own property, but copying the object (a schema's record, a spread) assigns it,
 * which sets the prototype instead, so the key would vanish without a word. Walks with a stack of
 * its own: JSON.parse accepts nesting deeper than the call stack.
 */
export function protoKeyPath(root: unknown): string | undefined {
  interface Frame {
    readonly value: unknown;
    readonly key: PropertyKey | undefined;
    readonly parent: Frame | undefined;
  }
  const stack: Frame[] = [{ value: root, key: undefined, parent: undefined }];
  for (let f = stack.pop(); f !== undefined; f = stack.pop()) {
    const v = f.value;
    if (typeof v !== 'object' || v === null) continue;
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) stack.push({ value: v[i], key: i, parent: f });
      continue;
    }
    if (Object.hasOwn(v, '__proto__')) {
      const path: PropertyKey[] = ['__proto__'];
      for (let p: Frame | undefined = f; p?.key !== undefined; p = p.parent) path.unshift(p.key);
      return formatPath(path);
    }
    for (const [k, x] of Object.entries(v)) stack.push({ value: x, key: k, parent: f });
  }
  return undefined;
}

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
  let issue = error.issues[0];
  if (issue === undefined) return errors.validation(prefix, 'invalid');
  let path: PropertyKey[] = [...issue.path];
  // A union (a check's `http`: a URL or an object) failed every branch: name the issue that got
  // furthest in, rather than the union itself.
  while (issue.code === 'invalid_union' && issue.errors.length > 0) {
    const deepest: z.core.$ZodIssue | undefined = issue.errors
      .flat()
      .reduce<z.core.$ZodIssue | undefined>(
        (best, i) => (best === undefined || i.path.length > best.path.length ? i : best),
        undefined,
      );
    if (deepest === undefined || deepest.path.length === 0) break;
    path = [...path, ...deepest.path];
    issue = deepest;
  }
  // A record key that failed its schema: that schema's reason, not "Invalid key in record".
  let message =
    issue.code === 'invalid_key' ? (issue.issues[0]?.message ?? issue.message) : issue.message;
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
