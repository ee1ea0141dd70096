/**
 * @module The pieces every component's options share: env vars read against a key table,
 * zod issues turned into "path: problem" lines, and a deep freeze of the validated result.
 */
import type { z } from 'zod';
import { formatPath } from '../protocol/validation.js';

/** How one MESHWORK_<SECTION>__<KEY> env var maps onto an option. */
export interface EnvKey {
  readonly key: string;
  readonly type: 'string' | 'boolean' | 'number' | 'list';
}

/** Reads the env vars of `keys`; unparsable values become problems (named by the variable). */
export function readEnv(
  env: NodeJS.ProcessEnv,
  keys: Readonly<Record<string, EnvKey>>,
): { values: Record<string, unknown>; problems: string[] } {
  const values: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [name, spec] of Object.entries(keys)) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    // A dotted key (`dns.listen`) lands in its section's object.
    const [head = spec.key, key] = spec.key.split('.');
    const target = key === undefined ? values : ((values[head] ??= {}) as Record<string, unknown>);
    const field = key ?? head;
    if (spec.type === 'boolean') {
      if (!/^(true|false|1|0)$/i.test(raw)) problems.push(`${name}: must be true or false`);
      else target[field] = /^(true|1)$/i.test(raw);
    } else if (spec.type === 'number') {
      if (!/^\d+$/.test(raw)) problems.push(`${name}: must be a whole number`);
      else target[field] = Number(raw);
    } else if (spec.type === 'list') {
      target[field] = raw
        .split(',')
        .map((v) => v.trim())
        .filter((v) => v !== '');
    } else target[field] = raw;
  }
  return { values, problems };
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
