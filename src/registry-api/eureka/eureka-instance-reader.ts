/**
 * @module Reads a parsed registration document (`{"instance": {...}}`, from JSON or from XML turned
 * into the same shape by eureka-xml.ts) into a validated {@link EurekaInstanceInput}, with Eureka's
 * defaults. Accepts the variants real clients send (Eureka's Java client, Spring Cloud,
 * eureka-js-client 4.x): ports as numbers, numeric strings or `{"$": n, "@enabled": ...}`, both
 * spellings of `overriddenStatus`, nulls as absent, numbers and booleans in metadata as strings.
 * Throws only {@link EurekaBodyError}, naming the dotted path of the field.
 */
import {
  DEFAULT_DATACENTER_CLASS,
  DEFAULT_LEASE,
  EUREKA_STATUSES,
  EurekaBodyError,
  type EurekaDataCenter,
  type EurekaInstanceInput,
  type EurekaLeaseInput,
  type EurekaPort,
  type EurekaStatus,
} from './eureka-model.js';

/** Longest string field (hostName has its own, DNS's 253). */
export const MAX_STRING_LENGTH = 512;
export const MAX_HOSTNAME_LENGTH = 253;
export const MAX_METADATA_KEYS = 64;
export const MAX_LEASE_SECONDS = 86_400;

/**
 * What no string field may hold: C0/C1 controls, U+FFFE/U+FFFF and lone surrogates (in `u` mode a
 * pair is one code point), so that every accepted string can be written in XML 1.0.
 */
// eslint-disable-next-line no-control-regex -- control characters are what it looks for
export const FORBIDDEN_CHARS = /[\u0000-\u001f\u007f-\u009f\ufffe\uffff]|[\ud800-\udfff]/u;
const NUMERIC = /^\s*\d{1,15}\s*$/;

/** Tag names fast-xml-parser renames (`__` prefixed) as dangerous properties. */
export const PARSER_RENAMED_NAMES: readonly string[] = Object.freeze([
  'hasOwnProperty',
  'toString',
  'valueOf',
  '__defineGetter__',
  '__defineSetter__',
  '__lookupGetter__',
  '__lookupSetter__',
]);

/**
 * Keys no metadata map may use: names that reach `Object.prototype`, which fast-xml-parser refuses
 * as tag names, and the ones it renames. Refused in both formats so that JSON and XML agree.
 */
export const RESERVED_KEYS: ReadonlySet<string> = new Set([
  '__proto__',
  'constructor',
  'prototype',
  ...PARSER_RENAMED_NAMES,
]);

type Doc = Readonly<Record<string, unknown>>;

const isObject = (v: unknown): v is Doc => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The value at `key`, with JSON null read as absent. */
function get(obj: Doc, key: string): unknown {
  const v = Object.hasOwn(obj, key) ? obj[key] : undefined;
  return v === null ? undefined : v;
}

function checkText(value: string, field: string, max: number): string {
  if (value.length > max) throw new EurekaBodyError(field, `longer than ${max} characters`);
  if (FORBIDDEN_CHARS.test(value)) {
    throw new EurekaBodyError(field, 'contains a control character or an invalid code point');
  }
  return value;
}

function optionalString(
  obj: Doc,
  key: string,
  path: string,
  max = MAX_STRING_LENGTH,
): string | undefined {
  const v = get(obj, key);
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new EurekaBodyError(`${path}.${key}`, 'must be a string');
  return checkText(v, `${path}.${key}`, max);
}

function requiredString(obj: Doc, key: string, path: string, max = MAX_STRING_LENGTH): string {
  const v = optionalString(obj, key, path, max);
  if (v === undefined || v.trim() === '') {
    throw new EurekaBodyError(`${path}.${key}`, 'required, and must not be empty');
  }
  return v;
}

function status(obj: Doc, key: string, path: string): EurekaStatus | undefined {
  const v = optionalString(obj, key, path);
  if (v === undefined) return undefined;
  const upper = v.trim().toUpperCase();
  const found = EUREKA_STATUSES.find((s) => s === upper);
  if (found === undefined) {
    throw new EurekaBodyError(
      `${path}.${key}`,
      `unknown status ${JSON.stringify(v)} (one of ${EUREKA_STATUSES.join(', ')})`,
    );
  }
  return found;
}

/** A whole number from a JSON number or a numeric string, within [min, max]. */
function wholeNumber(v: unknown, field: string, min: number, max: number): number {
  let n: number;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string' && NUMERIC.test(v)) n = Number(v);
  else throw new EurekaBodyError(field, 'must be a whole number');
  if (!Number.isInteger(n)) throw new EurekaBodyError(field, 'must be a whole number');
  if (n < min || n > max) throw new EurekaBodyError(field, `must be between ${min} and ${max}`);
  return n;
}

function flag(v: unknown, field: string): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') {
    const lower = v.trim().toLowerCase();
    if (lower === 'true') return true;
    if (lower === 'false') return false;
  }
  throw new EurekaBodyError(field, 'must be true or false');
}

function port(obj: Doc, key: string, path: string, fallback: EurekaPort): EurekaPort {
  const field = `${path}.${key}`;
  const v = get(obj, key);
  if (v === undefined) return fallback;
  let enabled = fallback.enabled;
  let raw: unknown = v;
  if (isObject(v)) {
    const e = get(v, '@enabled');
    if (e !== undefined) enabled = flag(e, `${field}.@enabled`);
    raw = get(v, '$');
    if (raw === undefined) throw new EurekaBodyError(`${field}.$`, 'required');
  }
  const where = isObject(v) ? `${field}.$` : field;
  return { port: wholeNumber(raw, where, enabled ? 1 : 0, 65_535), enabled };
}

function lease(obj: Doc, path: string): EurekaLeaseInput {
  const v = get(obj, 'leaseInfo');
  if (v === undefined) return DEFAULT_LEASE;
  const field = `${path}.leaseInfo`;
  if (!isObject(v)) throw new EurekaBodyError(field, 'must be an object');
  const seconds = (key: keyof EurekaLeaseInput): number => {
    const s = get(v, key);
    return s === undefined
      ? DEFAULT_LEASE[key]
      : wholeNumber(s, `${field}.${key}`, 1, MAX_LEASE_SECONDS);
  };
  return {
    renewalIntervalInSecs: seconds('renewalIntervalInSecs'),
    durationInSecs: seconds('durationInSecs'),
  };
}

/** A string map: metadata, or Amazon's dataCenterInfo metadata. Jackson's `@class` marker skipped. */
function stringMap(v: unknown, field: string): Readonly<Record<string, string>> {
  if (v === undefined) return {};
  if (!isObject(v)) throw new EurekaBodyError(field, 'must be an object of strings');
  const entries: [string, string][] = [];
  for (const [key, value] of Object.entries(v)) {
    if (key === '@class' || value === null) continue;
    const at = `${field}.${key}`;
    if (key === '') throw new EurekaBodyError(at, 'a key must not be empty');
    checkText(key, at, MAX_STRING_LENGTH);
    if (RESERVED_KEYS.has(key)) throw new EurekaBodyError(at, 'a reserved key name');
    let text: string;
    if (typeof value === 'string') text = value;
    else if (typeof value === 'number' || typeof value === 'boolean') text = String(value);
    else throw new EurekaBodyError(at, 'must be a string, a number or a boolean');
    entries.push([key, checkText(text, at, MAX_STRING_LENGTH)]);
    if (entries.length > MAX_METADATA_KEYS) {
      throw new EurekaBodyError(field, `more than ${MAX_METADATA_KEYS} keys`);
    }
  }
  // fromEntries defines own properties, so even an odd key stays data (never a prototype).
  return Object.fromEntries(entries);
}

function dataCenter(obj: Doc, path: string): EurekaDataCenter {
  const field = `${path}.dataCenterInfo`;
  const v = get(obj, 'dataCenterInfo');
  if (v === undefined) throw new EurekaBodyError(field, 'required');
  if (!isObject(v)) throw new EurekaBodyError(field, 'must be an object');
  return {
    name: requiredString(v, 'name', field),
    className: optionalString(v, '@class', field) ?? DEFAULT_DATACENTER_CLASS,
    metadata: stringMap(get(v, 'metadata'), `${field}.metadata`),
  };
}

/**
 * The registration in `doc`, the parsed body: an object whose `instance` is the instance.
 * MUST NOT be given anything but what JSON.parse (or the XML reader) produced; throws only
 * {@link EurekaBodyError}.
 */
export function readInstanceDocument(doc: unknown): EurekaInstanceInput {
  const v = isObject(doc) ? get(doc, 'instance') : undefined;
  if (!isObject(v)) throw new EurekaBodyError('instance', 'the body must be an instance document');
  const p = 'instance';
  const overridden = status(v, 'overriddenStatus', p) ?? status(v, 'overriddenstatus', p);
  return {
    instanceId: optionalString(v, 'instanceId', p),
    app: requiredString(v, 'app', p),
    appGroupName: optionalString(v, 'appGroupName', p),
    hostName: requiredString(v, 'hostName', p, MAX_HOSTNAME_LENGTH),
    ipAddr: requiredString(v, 'ipAddr', p),
    status: status(v, 'status', p) ?? 'UP',
    overriddenStatus: overridden ?? 'UNKNOWN',
    port: port(v, 'port', p, { port: 7001, enabled: true }),
    securePort: port(v, 'securePort', p, { port: 7002, enabled: false }),
    vipAddress: optionalString(v, 'vipAddress', p),
    secureVipAddress: optionalString(v, 'secureVipAddress', p),
    homePageUrl: optionalString(v, 'homePageUrl', p),
    statusPageUrl: optionalString(v, 'statusPageUrl', p),
    healthCheckUrl: optionalString(v, 'healthCheckUrl', p),
    secureHealthCheckUrl: optionalString(v, 'secureHealthCheckUrl', p),
    dataCenterInfo: dataCenter(v, p),
    leaseInfo: lease(v, p),
    metadata: stringMap(get(v, 'metadata'), `${p}.metadata`),
  };
}
