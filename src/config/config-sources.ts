/**
 * @module Where option values come from and how they layer: a YAML or JSON file, env vars read
 * against a key table, and sources merged section by section (defaults < file < env < flags).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';
import { errors } from '../core/errors.js';

/** How one MESHWORK_<SECTION>__<KEY> env var maps onto an option. */
export interface EnvKey {
  readonly key: string;
  /** `number`: a whole number; `decimal`: a number with an optional fraction (`0.25`). */
  readonly type: 'string' | 'boolean' | 'number' | 'decimal' | 'list';
}

/** The text of a UTF-8 file; one that cannot be read is MESHWORK_ERR_CONFIG_UNREADABLE. */
export function readTextFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw errors.configUnreadable(
      path,
      (err as NodeJS.ErrnoException).code ?? (err as Error).message,
      err,
    );
  }
}

/**
 * The yaml package, loaded on the first config file: a sidecar or gateway started from flags
 * alone never needs its 73 modules (~4 MB of RSS). Its CommonJS build, so the load stays
 * synchronous.
 */
let yaml: typeof Yaml | undefined;
function parseYaml(text: string, options: Yaml.ParseOptions & Yaml.ToJSOptions): unknown {
  yaml ??= createRequire(import.meta.url)('yaml') as typeof Yaml;
  return yaml.parse(text, options);
}

/** Reads a YAML or JSON file into a plain object; throws CONFIG_UNREADABLE with the reason. */
export function readConfigFile(path: string): Record<string, unknown> {
  const text = readTextFile(path);
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: true, maxAliasCount: 100 });
  } catch (err) {
    throw errors.configUnreadable(
      path,
      (err as Error).message.split('\n')[0] ?? 'invalid YAML',
      err,
    );
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw errors.configUnreadable(path, 'the top level must be a mapping of keys to values');
  }
  return doc as Record<string, unknown>;
}

/** A comma-separated list as its entries, trimmed, empty ones dropped (`a, b,` is a and b). */
export function splitList(raw: string): string[] {
  return raw
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v !== '');
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
    } else if (spec.type === 'decimal') {
      if (!/^\d+(\.\d+)?$/.test(raw)) problems.push(`${name}: must be a number like 0.25`);
      else target[field] = Number(raw);
    } else if (spec.type === 'list') {
      target[field] = splitList(raw);
    } else target[field] = raw;
  }
  return { values, problems };
}

/** Where a process's options come from, besides its defaults: a config file, env vars, flags. */
export interface OptionSources {
  file?: string;
  env?: NodeJS.ProcessEnv;
  flags?: Record<string, unknown>;
}

/**
 * Reads the sources of `input`: the config file's values (none without a file; throws
 * CONFIG_UNREADABLE), the env vars of `keys` with their problems, and the flags.
 */
export function readOptionSources(
  input: OptionSources,
  keys: Readonly<Record<string, EnvKey>>,
): {
  file: Record<string, unknown>;
  env: { values: Record<string, unknown>; problems: string[] };
  flags: Record<string, unknown>;
} {
  return {
    file: input.file === undefined ? {} : readConfigFile(input.file),
    env: readEnv(input.env ?? {}, keys),
    flags: input.flags ?? {},
  };
}

/**
 * Merges sources, later ones winning; a section (an object, such as the agent's `consul`) merges
 * key by key, so a flag for one key keeps the file's others. Arrays and scalars are replaced.
 */
export function mergeSections(...sources: Record<string, unknown>[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const src of sources) {
    for (const [k, v] of Object.entries(src)) {
      const prev = out[k];
      out[k] = isSection(prev) && isSection(v) ? { ...prev, ...v } : v;
    }
  }
  return out;
}

function isSection(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}
