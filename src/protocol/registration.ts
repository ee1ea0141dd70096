/**
 * @module Registration bodies of the native API (`PUT /api/v1/instances`), config files and
 * `meshwork apply`: one schema, defaults applied, checks normalised.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { formatDurationMs, parseDurationMs } from '../core/duration.js';
import type { CheckDefinition, CheckKind } from '../core/types.js';
import { DEFAULT_CHECK_FLOORS, LIMITS, type CheckFloors } from './limits.js';
import { hasControlChars, NO_CONTROL_CHARS } from './validation.js';

/** DNS-label safe service names: lowercase letters, digits, hyphens, 1-63 chars (RFC 1123). */
export const SERVICE_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
const META_KEY = /^[A-Za-z0-9_-]+$/;
const PORT_NAME = /^[a-z0-9](?:[a-z0-9-]{0,13}[a-z0-9])?$/;
const ID = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;

export const serviceNameSchema = z
  .string()
  .regex(
    SERVICE_NAME,
    'must be 1-63 lowercase letters, digits or hyphens, not starting or ending with a hyphen',
  );

/** A string of `min` to `max` characters and no control character (names, tags, headers). */
export const printable = (max: number, min = 0) =>
  z
    .string()
    .min(min, 'must not be empty')
    .max(max, `must be at most ${max} characters`)
    .refine((s) => !hasControlChars(s), NO_CONTROL_CHARS);

const port = z
  .number()
  .int('must be an integer')
  .min(1, 'must be 1-65535')
  .max(65535, 'must be 1-65535');

const duration = (max: number) =>
  z.union([z.number(), z.string()]).transform((v, ctx) => {
    const ms = typeof v === 'number' ? v : parseDurationMs(v);
    if (ms === undefined || !Number.isFinite(ms) || ms < 0 || !Number.isInteger(ms)) {
      ctx.addIssue({
        code: 'custom',
        message: 'must be a non-negative whole number of ms or a duration like "10s"',
      });
      return z.NEVER;
    }
    if (ms > max) {
      ctx.addIssue({ code: 'custom', message: `must be at most ${max} ms` });
      return z.NEVER;
    }
    return ms;
  });

const DAY_MS = 86_400_000;
const count = z.number().int('must be an integer').min(1).max(100);

const httpTargetSchema = z.union([
  z.string().url('must be an http or https URL'),
  z
    .object({
      url: z.string().url('must be an http or https URL'),
      method: z
        .string()
        .regex(/^[A-Z]{1,16}$/, 'must be an upper-case HTTP method')
        .optional(),
      headers: z
        .record(printable(256), printable(4096))
        .refine(
          (h) => Object.keys(h).length <= LIMITS.maxHeaders,
          `at most ${LIMITS.maxHeaders} headers`,
        )
        .optional(),
      tlsSkipVerify: z.boolean().optional(),
    })
    .strict(),
]);

/** A check as written in a request or file (durations as ms numbers or strings). */
export const checkInputSchema = z
  .object({
    id: z
      .string()
      .regex(ID, 'must start with a letter or digit and use letters, digits, . _ : -')
      .max(LIMITS.maxIdLength)
      .optional(),
    name: printable(256).optional(),
    kind: z.enum(['http', 'tcp', 'ttl']).optional(),
    role: z.enum(['startup', 'readiness', 'liveness']).optional(),
    http: httpTargetSchema.optional(),
    tcp: z.string().max(300).optional(),
    ttlMs: duration(DAY_MS).optional(),
    ttl: duration(DAY_MS).optional(),
    intervalMs: duration(DAY_MS).optional(),
    interval: duration(DAY_MS).optional(),
    timeoutMs: duration(DAY_MS).optional(),
    timeout: duration(DAY_MS).optional(),
    successesBeforePassing: count.optional(),
    failuresBeforeWarning: count.optional(),
    failuresBeforeCritical: count.optional(),
    startPeriodMs: duration(DAY_MS).optional(),
    startPeriod: duration(DAY_MS).optional(),
    deregisterCriticalAfterMs: duration(30 * DAY_MS).optional(),
    deregisterCriticalAfter: duration(30 * DAY_MS).optional(),
    initialStatus: z.enum(['passing', 'warning', 'critical']).optional(),
    notes: z.string().max(LIMITS.maxOutputLength).optional(),
  })
  .strict();

export type CheckInput = z.input<typeof checkInputSchema>;

/** A registration as written in a request body or file. */
export const registrationInputSchema = z
  .object({
    service: serviceNameSchema,
    id: z
      .string()
      .max(LIMITS.maxIdLength, `must be at most ${LIMITS.maxIdLength} characters`)
      .regex(ID, 'must start with a letter or digit and use letters, digits, . _ : -')
      .optional(),
    address: z
      .string()
      .max(LIMITS.maxAddressLength)
      .refine(
        (a) => isIP(a) !== 0 || HOSTNAME.test(a),
        'must be an IPv4 or IPv6 address or a hostname',
      ),
    port,
    ports: z
      .record(
        z.string().regex(PORT_NAME, 'port names are 1-15 lowercase letters, digits or hyphens'),
        port,
      )
      .refine(
        (p) => Object.keys(p).length <= LIMITS.maxPorts,
        `at most ${LIMITS.maxPorts} named ports`,
      )
      .optional(),
    tags: z
      .array(printable(LIMITS.maxTagLength, 1))
      .max(LIMITS.maxTags, `at most ${LIMITS.maxTags} tags`)
      .optional(),
    meta: z
      .record(
        z
          .string()
          .max(LIMITS.maxMetaKeyLength)
          .regex(META_KEY, 'meta keys use letters, digits, _ and -'),
        z
          .string()
          .max(
            LIMITS.maxMetaValueLength,
            `meta values are at most ${LIMITS.maxMetaValueLength} characters`,
          ),
      )
      .refine(
        (m) => Object.keys(m).length <= LIMITS.maxMetaPairs,
        `at most ${LIMITS.maxMetaPairs} meta pairs`,
      )
      .optional(),
    weights: z
      .object({
        passing: z.number().int().min(1).max(65535),
        warning: z.number().int().min(0).max(65535),
      })
      .strict()
      .optional(),
    priority: z.number().int().min(0).max(65535).optional(),
    capacity: z.number().int().min(0).max(1e9).optional(),
    protocols: z.array(printable(32, 1)).max(LIMITS.maxProtocols).optional(),
    source: z.enum(['self', 'sidecar', 'config', 'orchestrator']).optional(),
    checks: z
      .array(checkInputSchema)
      .max(LIMITS.maxChecks, `at most ${LIMITS.maxChecks} checks`)
      .optional(),
  })
  .strict();

export type RegistrationInput = z.input<typeof registrationInputSchema>;
export type ParsedRegistration = z.output<typeof registrationInputSchema>;
export type ParsedCheck = z.output<typeof checkInputSchema>;

export const DEFAULT_CHECK_OPTIONS = Object.freeze({
  intervalMs: 10_000,
  timeoutMs: 5_000,
  successesBeforePassing: 1,
  failuresBeforeWarning: 1,
  failuresBeforeCritical: 1,
  startPeriodMs: 0,
  deregisterCriticalAfterMs: 0,
});

/** Default check names, one string each rather than one per check. */
const DEFAULT_CHECK_NAMES: Readonly<Record<CheckKind, string>> = Object.freeze({
  http: 'http check',
  tcp: 'tcp check',
  ttl: 'ttl check',
});

/** Error thrown by {@link normalizeChecks}: a field path (relative to the check) and a reason. */
export class CheckShapeError extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
  }
}

/** The durations that have a floor: the two spellings of each field, and its floor's key. */
const FLOORED = [
  ['intervalMs', 'interval', 'intervalMs'],
  ['timeoutMs', 'timeout', 'timeoutMs'],
  ['ttlMs', 'ttl', 'ttlMs'],
  ['deregisterCriticalAfterMs', 'deregisterCriticalAfter', 'deregisterCriticalAfterMs'],
] as const;

/**
 * Why `valueMs` is below `floorMs`, saying the unit: a bare number is milliseconds, so `ttl: 5`
 * meant as seconds is refused with the spelling that was meant.
 * @example belowFloorReason(5, 1000, false) // 'must be at least 1000 ms ("1s"), got 5 ms: ...'
 */
export function belowFloorReason(valueMs: number, floorMs: number, zeroIsNever: boolean): string {
  const least = `${zeroIsNever ? 'must be 0 (never) or' : 'must be'} at least ${floorMs} ms ("${formatDurationMs(floorMs)}")`;
  const hint =
    valueMs > 0 && valueMs * 1000 >= floorMs
      ? `: a bare number is milliseconds, write "${valueMs}s" for ${valueMs} seconds`
      : '';
  return `${least}, got ${valueMs} ms${hint}`;
}

/** The first duration of `c` below its floor, as the field it was given in and why. */
function floorProblem(
  c: ParsedCheck,
  floors: CheckFloors,
): { field: string; reason: string } | undefined {
  for (const [msField, field, floorKey] of FLOORED) {
    const given = c[msField] !== undefined ? msField : c[field] !== undefined ? field : undefined;
    if (given === undefined) continue;
    const v = c[given] as number;
    const zeroIsNever = floorKey === 'deregisterCriticalAfterMs';
    if (v < floors[floorKey] && !(zeroIsNever && v === 0))
      return { field: given, reason: belowFloorReason(v, floors[floorKey], zeroIsNever) };
  }
  return undefined;
}

/**
 * Turns parsed check inputs into full definitions: infers the kind, applies defaults, assigns
 * stable ids (`<kind>`, then `<kind>-2`...). Throws CheckShapeError with the offending field,
 * also for a duration below its floor in `floors`.
 */
export function normalizeChecks(
  inputs: readonly ParsedCheck[],
  floors: CheckFloors = DEFAULT_CHECK_FLOORS,
): CheckDefinition[] {
  const seen = new Set<string>();
  const kindCount = new Map<string, number>();
  return inputs.map((c, i) => {
    const at = (f: string): string => `checks[${i}].${f}`;
    const present = (['http', 'tcp', 'ttl'] as const).filter((k) =>
      k === 'ttl' ? c.ttlMs !== undefined || c.ttl !== undefined : c[k] !== undefined,
    );
    const kind: CheckKind | undefined = c.kind ?? (present.length === 1 ? present[0] : undefined);
    if (kind === undefined) {
      throw new CheckShapeError(
        at('kind'),
        present.length === 0
          ? 'give one of http, tcp or ttlMs (or kind)'
          : `ambiguous: ${present.join(' and ')} both given`,
      );
    }
    const n = (kindCount.get(kind) ?? 0) + 1;
    kindCount.set(kind, n);
    const id = c.id ?? (n === 1 ? kind : `${kind}-${n}`);
    if (seen.has(id)) throw new CheckShapeError(at('id'), `duplicate check id "${id}"`);
    seen.add(id);
    const low = floorProblem(c, floors);
    if (low !== undefined) throw new CheckShapeError(at(low.field), low.reason);
    const intervalMs = c.intervalMs ?? c.interval ?? DEFAULT_CHECK_OPTIONS.intervalMs;
    const timeoutMs = Math.min(
      c.timeoutMs ?? c.timeout ?? DEFAULT_CHECK_OPTIONS.timeoutMs,
      Math.max(intervalMs, 1),
    );
    // One literal, then one added field per kind: every definition of a kind shares a hidden
    // class. An object spread here gave each definition a class of its own once optimised
    // (~400 B per instance with 100k instances; docs/benchmarks.md, scale).
    const def: { -readonly [K in keyof CheckDefinition]: CheckDefinition[K] } = {
      id,
      name: c.name ?? DEFAULT_CHECK_NAMES[kind],
      kind,
      role: c.role ?? 'readiness',
      intervalMs,
      timeoutMs,
      successesBeforePassing:
        c.successesBeforePassing ?? DEFAULT_CHECK_OPTIONS.successesBeforePassing,
      failuresBeforeWarning:
        c.failuresBeforeWarning ??
        c.failuresBeforeCritical ??
        DEFAULT_CHECK_OPTIONS.failuresBeforeWarning,
      failuresBeforeCritical:
        c.failuresBeforeCritical ?? DEFAULT_CHECK_OPTIONS.failuresBeforeCritical,
      startPeriodMs: c.startPeriodMs ?? c.startPeriod ?? DEFAULT_CHECK_OPTIONS.startPeriodMs,
      deregisterCriticalAfterMs:
        c.deregisterCriticalAfterMs ??
        c.deregisterCriticalAfter ??
        DEFAULT_CHECK_OPTIONS.deregisterCriticalAfterMs,
      initialStatus: c.initialStatus ?? 'critical',
    };
    if (c.notes !== undefined && c.notes !== '') def.notes = c.notes;
    if (def.failuresBeforeWarning > def.failuresBeforeCritical) {
      throw new CheckShapeError(
        at('failuresBeforeWarning'),
        'must not exceed failuresBeforeCritical',
      );
    }
    if (kind === 'http') {
      if (c.http === undefined) throw new CheckShapeError(at('http'), 'required for an http check');
      const t = typeof c.http === 'string' ? { url: c.http } : c.http;
      const url = new URL(t.url);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        throw new CheckShapeError(at('http'), 'must be an http or https URL');
      }
      def.http = {
        url: t.url,
        method: t.method ?? 'GET',
        headers: t.headers ?? {},
        tlsSkipVerify: t.tlsSkipVerify ?? false,
      };
      return def;
    }
    if (kind === 'tcp') {
      if (c.tcp === undefined) throw new CheckShapeError(at('tcp'), 'required for a tcp check');
      if (!/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/.test(c.tcp)) {
        throw new CheckShapeError(at('tcp'), 'must be host:port or [ipv6]:port');
      }
      def.tcp = { address: c.tcp };
      return def;
    }
    const ttlMs = c.ttlMs ?? c.ttl;
    if (ttlMs === undefined || ttlMs < 1)
      throw new CheckShapeError(at('ttlMs'), 'required for a ttl check');
    def.ttlMs = ttlMs;
    return def;
  });
}
