/**
 * @module Consul request bodies: JSON keys matched as Go's encoding/json matches them
 * (case-insensitively, plus Consul's snake_case aliases), unknown fields ignored, values typed and
 * durations turned into ms. Keys inside user maps (Meta, NodeMeta, Header) are kept verbatim.
 */
import { parseDurationMs } from '../../core/duration.js';
import { errors } from '../../core/errors.js';
import { assertNoProtoKey } from '../body.js';

/** How one field is read. Durations come out as whole ms; `any` is kept as parsed. */
export type FieldSpec =
  | 'string'
  | 'bool'
  | 'int'
  | 'duration'
  | 'strings'
  | 'stringMap'
  | 'headerMap'
  | 'any'
  | { readonly object: BodySpec }
  | { readonly array: BodySpec };

/** The canonical (PascalCase) fields of one object, and extra spellings that mean them. */
export interface BodySpec {
  readonly fields: Readonly<Record<string, FieldSpec>>;
  /** Normalised alias (lowercase, no `_`) -> canonical field. */
  readonly aliases?: Readonly<Record<string, string>>;
}

/** A normalised body: canonical keys, typed values. */
export type NormalisedBody = { readonly [field: string]: unknown };

/** Consul's field-name rule: Go matches case-insensitively; Consul adds snake_case aliases. */
export const normaliseKey = (key: string): string => key.toLowerCase().replaceAll('_', '');

const lookups = new WeakMap<BodySpec, Map<string, string>>();

function lookupOf(spec: BodySpec): Map<string, string> {
  let m = lookups.get(spec);
  if (m === undefined) {
    m = new Map();
    for (const f of Object.keys(spec.fields)) m.set(normaliseKey(f), f);
    for (const [a, f] of Object.entries(spec.aliases ?? {})) m.set(a, f);
    lookups.set(spec, m);
  }
  return m;
}

/** Largest nanosecond count taken from a JSON number (about 285 years). */
const MAX_NS = Number.MAX_SAFE_INTEGER;

/**
 * Reads `value` (parsed JSON) as an object of `spec`. Throws a validation MeshError naming the
 * field (`Check.Interval`) and what was wrong; anything else in the input is ignored.
 * @example
 * normaliseBody({ name: 'web', check: { ttl: '10s' } }, SERVICE_SPEC) // { Name: 'web', Check: { TTL: 10000 } }
 */
export function normaliseBody(value: unknown, spec: BodySpec, path = ''): NormalisedBody {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw errors.validation(path, 'must be a JSON object');
  }
  const lookup = lookupOf(spec);
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    const field = lookup.get(normaliseKey(key));
    if (field === undefined) continue; // unknown fields are ignored (python-consul 0.7 sends some)
    const fieldSpec = spec.fields[field];
    if (fieldSpec === undefined || v === null) continue; // Go leaves null fields at their zero value
    out[field] = readField(v, fieldSpec, path === '' ? field : `${path}.${field}`);
  }
  return out;
}

function readField(v: unknown, spec: FieldSpec, path: string): unknown {
  switch (spec) {
    case 'string':
      if (typeof v !== 'string') throw errors.validation(path, 'must be a string');
      return v;
    case 'bool':
      if (typeof v !== 'boolean') throw errors.validation(path, 'must be true or false');
      return v;
    case 'int':
      if (typeof v !== 'number' || !Number.isSafeInteger(v))
        throw errors.validation(path, 'must be a whole number');
      return v;
    case 'duration':
      return readDuration(v, path);
    case 'strings':
      if (!Array.isArray(v) || !v.every((s) => typeof s === 'string'))
        throw errors.validation(path, 'must be a list of strings');
      return v;
    case 'stringMap':
      return readMap(v, path, (x) => typeof x === 'string', 'a string');
    case 'headerMap':
      return readMap(
        v,
        path,
        (x) => Array.isArray(x) && x.every((s) => typeof s === 'string'),
        'a list of strings',
      );
    case 'any':
      return v;
    default:
      if ('object' in spec) return normaliseBody(v, spec.object, path);
      if (!Array.isArray(v)) throw errors.validation(path, 'must be a list of objects');
      return v.map((item, i) => normaliseBody(item, spec.array, `${path}[${i}]`));
  }
}

function readMap(
  v: unknown,
  path: string,
  ok: (x: unknown) => boolean,
  what: string,
): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw errors.validation(path, 'must be a JSON object');
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (!ok(x)) throw errors.validation(`${path}.${k}`, `must be ${what}`);
    out[k] = x;
  }
  return out;
}

/** Go durations: a string ("10s", "1m30s") or a number of nanoseconds. Answers whole ms. */
function readDuration(v: unknown, path: string): number {
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || v < 0 || v > MAX_NS)
      throw errors.validation(path, 'must be a non-negative duration');
    return Math.ceil(v / 1e6);
  }
  if (typeof v !== 'string') throw errors.validation(path, 'must be a duration like "10s"');
  if (v === '') return 0;
  // A bare number in a string is not a Go duration (Go's ParseDuration needs a unit, except "0").
  const ms = v === '0' ? 0 : /^\d+(\.\d+)?$/.test(v) ? undefined : parseDurationMs(v);
  if (ms === undefined) throw errors.validation(path, 'must be a duration like "10s"');
  return ms;
}

/** Parses a request body as JSON; an empty body is `whenEmpty` or Consul's `EOF` decode error. */
export function parseJsonBody(buf: Buffer, whenEmpty?: unknown): unknown {
  if (buf.length === 0) {
    if (whenEmpty !== undefined) return whenEmpty;
    throw errors.validation('', 'EOF');
  }
  const text = buf.toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch (err) {
    throw errors.validation('', (err as Error).message);
  }
  assertNoProtoKey(value, text);
  return value;
}

const CHECK_FIELDS: Record<string, FieldSpec> = {
  CheckID: 'string',
  Name: 'string',
  Notes: 'string',
  Status: 'string',
  ServiceID: 'string',
  HTTP: 'string',
  Method: 'string',
  Header: 'headerMap',
  Body: 'string',
  TLSSkipVerify: 'bool',
  TLSServerName: 'string',
  TCP: 'string',
  TTL: 'duration',
  Interval: 'duration',
  Timeout: 'duration',
  DeregisterCriticalServiceAfter: 'duration',
  SuccessBeforePassing: 'int',
  FailuresBeforeWarning: 'int',
  FailuresBeforeCritical: 'int',
  // Kinds Meshwork does not run; read so that they can be refused by name.
  Script: 'string',
  Args: 'strings',
  GRPC: 'string',
  UDP: 'string',
  H2PING: 'string',
  AliasNode: 'string',
  AliasService: 'string',
  DockerContainerID: 'string',
  OSService: 'string',
};

const CHECK_ALIASES = { id: 'CheckID', scriptargs: 'Args' };

/** A check inside a service definition (`Check`, `Checks[]`) or on /v1/agent/check/register. */
export const CHECK_SPEC: BodySpec = { fields: CHECK_FIELDS, aliases: CHECK_ALIASES };

/** A catalog check: the probe fields may also sit under `Definition` (not run by Consul). */
export const CATALOG_CHECK_SPEC: BodySpec = {
  fields: {
    ...CHECK_FIELDS,
    Node: 'string',
    Definition: { object: { fields: CHECK_FIELDS } },
  },
  aliases: CHECK_ALIASES,
};

const SERVICE_FIELDS: Record<string, FieldSpec> = {
  ID: 'string',
  Name: 'string',
  Tags: 'strings',
  Address: 'string',
  Port: 'int',
  Meta: 'stringMap',
  Weights: { object: { fields: { Passing: 'int', Warning: 'int' } } },
  EnableTagOverride: 'bool',
  Kind: 'string',
  TaggedAddresses: 'any',
  Check: { object: CHECK_SPEC },
  Checks: { array: CHECK_SPEC },
};

/** PUT /v1/agent/service/register. */
export const SERVICE_SPEC: BodySpec = { fields: SERVICE_FIELDS };

/** PUT /v1/catalog/register. */
export const CATALOG_REGISTER_SPEC: BodySpec = {
  fields: {
    ID: 'string',
    Node: 'string',
    Address: 'string',
    Datacenter: 'string',
    TaggedAddresses: 'any',
    NodeMeta: 'stringMap',
    SkipNodeUpdate: 'bool',
    // The catalog names the service `Service`; `Name` is not a catalog field but is accepted.
    Service: { object: { fields: { ...SERVICE_FIELDS, Service: 'string' } } },
    Check: { object: CATALOG_CHECK_SPEC },
    Checks: { array: CATALOG_CHECK_SPEC },
  },
};

/** PUT /v1/catalog/deregister. */
export const CATALOG_DEREGISTER_SPEC: BodySpec = {
  fields: { Node: 'string', Datacenter: 'string', ServiceID: 'string', CheckID: 'string' },
};

/** PUT /v1/agent/check/update/:id. */
export const CHECK_UPDATE_SPEC: BodySpec = { fields: { Status: 'string', Output: 'string' } };
