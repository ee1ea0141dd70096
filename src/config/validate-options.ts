/**
 * @module validateOptions: merged option values checked against a component's schema, every
 * problem listed in one CONFIG_INVALID error, the result deep-frozen.
 */
import type { z } from 'zod';
import { errors } from '../core/errors.js';
import { formatPath } from '../protocol/validation.js';

/**
 * Validates `merged` with `schema` and answers it deep-frozen, or throws one CONFIG_INVALID
 * listing `problems` (found while reading the sources), then the schema's issues or, when the
 * schema accepts, what `check` finds that a schema cannot see.
 *
 * @example
 * const env = readEnv(process.env, ENV_KEYS);
 * const options = validateOptions(schema, mergeSections(DEFAULTS, env.values), env.problems);
 */
export function validateOptions<S extends z.ZodType>(
  schema: S,
  merged: unknown,
  problems: readonly string[] = [],
  check: (options: z.output<S>) => string[] = () => [],
): z.output<S> {
  const r = schema.safeParse(merged);
  const all = [...problems, ...(r.success ? check(r.data) : issueLines(r.error.issues))];
  if (all.length > 0 || !r.success) throw errors.configInvalid(all);
  return deepFreeze(r.data);
}

/** One "path: problem" line per zod issue (unknown keys named), `prefix` before each path. */
export function issueLines(issues: readonly z.core.$ZodIssue[], prefix = ''): string[] {
  return issues.map((issue) => {
    const path =
      issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys.join(', ')] : issue.path;
    return `${formatPath(path, prefix) || '(top level)'}: ${issue.code === 'unrecognized_keys' ? 'unknown key' : issue.message}`;
  });
}

/** Freezes `o` and everything below it; answers `o`. */
export function deepFreeze<T>(o: T): T {
  if (o !== null && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}
