/**
 * @module The field schemas the mesh kinds share: bounded lists and maps, names, hosts,
 * durations, percentages, label selectors, string matches and header operations. Every
 * schema gives its reason in words (`must be 0..100`), which ./parse.ts pairs with the path.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { formatDurationMs, parseDurationMs } from '../../core/duration.js';
import { SERVICE_NAME, printable } from '../registration.js';
import { userRegexSize } from '../user-regex.js';
import type { HeaderOperations, Headers, Percent, StringMatch, WorkloadSelector } from './specs.js';

/**
 * Bounds on the size of a resource, so that a hostile document costs little to refuse. Each is
 * well above what a hand-written resource holds (Istio has no such bounds; its API server's
 * 1.5 MiB object limit plays that part).
 */
export const MESH_LIMITS = Object.freeze({
  maxHosts: 64,
  maxGateways: 16,
  maxHttpRoutes: 256,
  maxMatches: 32,
  maxDestinations: 64,
  maxSubsets: 64,
  maxServicePorts: 32,
  maxEndpoints: 1024,
  maxRules: 64,
  /** Entries of a rule's from, to and when lists. */
  maxRuleEntries: 64,
  /** Values of one field of a rule (principals, paths, methods ...). */
  maxRuleValues: 256,
  /** Entries of a label map, a selector, a header map or a header operation. */
  maxMapEntries: 64,
  maxHostLength: 253,
  maxRegexLength: 1024,
  /**
   * RE2 instructions of all the regexes of one resource (each counts at least 64): 50 to 100 ms
   * of compiling at most, room for 512 small regexes or 16 of the largest.
   */
  maxRegexInstructions: 32_768,
  /** URIs, prefixes, exact values, paths, principals. */
  maxTextLength: 1024,
  maxHeaderNameLength: 256,
  maxHeaderValueLength: 4096,
  maxAnnotationValueLength: 4096,
  /** Retry attempts per request (Istio takes any number; more than 10 only multiplies load). */
  maxRetryAttempts: 10,
  /** Longest duration of any field. */
  maxDurationMs: 86_400_000,
  /** Largest count of a connection pool, outlier detection or token bucket (int32). */
  maxCount: 2_147_483_647,
});

/** A list of at most `max` items (checked before any item is parsed) of `item`. */
export function list<T extends z.ZodType>(item: T, max: number, min = 0) {
  return z
    .array(z.unknown())
    .min(min, min === 1 ? 'must not be empty' : `must have at least ${min} entries`)
    .max(max, `must have at most ${max} entries`)
    .pipe(z.array(item));
}

/**
 * Options of a cross-field refinement: it runs even when other fields of the object failed
 * (so that every problem is reported at once), but not when a field it reads is not of its
 * type (its value may then be anything). Fields it only tests for presence need not be listed.
 * A field that failed only a refinement (`custom`: out of range, say) has its type, so the
 * refinement still runs and must read such values with care.
 */
export function unlessFailed(...fields: readonly string[]): z.core.$ZodSuperRefineParams {
  return {
    when: (payload) =>
      typeof payload.value === 'object' &&
      payload.value !== null &&
      !payload.issues.some((i) => i.code !== 'custom' && fields.includes(String(i.path?.[0]))),
  };
}

/** The value of `name` in `v` if `v` is a map (items of a list may not have been parsed). */
export function fieldOf(name: string): (v: unknown) => unknown {
  return (v) =>
    typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[name] : undefined;
}

/**
 * A list like {@link list} whose items (or, with `by`, the values of each of these fields of its
 * items: `['number', 'name']`) are all different. Duplicates are found even when other items
 * failed; the problem is at the second item (and its field).
 */
export function uniqueList<T extends z.ZodType>(
  item: T,
  max: number,
  { min = 0, by = [] }: { readonly min?: number; readonly by?: readonly string[] } = {},
) {
  const keys: readonly { field?: string; keyOf: (v: unknown) => unknown }[] =
    by.length === 0 ? [{ keyOf: (v) => v }] : by.map((field) => ({ field, keyOf: fieldOf(field) }));
  return list(item, max, min).superRefine(
    (items, ctx) => {
      for (const { field, keyOf } of keys) {
        const seen = new Set<unknown>();
        items.forEach((v: unknown, i) => {
          const k = keyOf(v);
          if (k === undefined || (typeof k === 'object' && k !== null)) return;
          if (seen.has(k)) {
            ctx.addIssue({
              code: 'custom',
              path: field === undefined ? [i] : [i, field],
              message: `duplicate: ${JSON.stringify(k)} is listed twice`,
            });
          }
          seen.add(k);
        });
      }
    },
    { when: (payload) => Array.isArray(payload.value) },
  );
}

/** A map of at most `max` entries (checked before any entry is parsed). */
export function map<K extends z.ZodType<string, string>, V extends z.ZodType>(
  key: K,
  value: V,
  max: number = MESH_LIMITS.maxMapEntries,
) {
  return z
    .record(z.string(), z.unknown())
    .refine((m) => Object.keys(m).length <= max, `must have at most ${max} entries`)
    .pipe(z.record(key, value));
}

/** An integer from `min` to `max`, both included. */
export function int(min: number, max: number): z.ZodNumber {
  return z
    .number()
    .refine(
      (n) => Number.isInteger(n) && n >= min && n <= max,
      `must be an integer ${min}..${max}`,
    );
}

/** A port number. */
export const portNumber = int(1, 65535);

/** A count of a connection pool or a token bucket: 1 or more. */
export const count = int(1, MESH_LIMITS.maxCount);

/** Text of 1 to `max` characters without control characters. */
export const text = (max: number = MESH_LIMITS.maxTextLength, min = 1) => printable(max, min);

const DNS_LABEL_REASON =
  'must be a DNS label: 1-63 lower-case letters, digits or hyphens, not starting or ending with a hyphen';

/** A DNS label (RFC 1123): subset names, namespaces, port names. */
export const dnsLabel = z.string().max(63, DNS_LABEL_REASON).regex(SERVICE_NAME, DNS_LABEL_REASON);

const SUBDOMAIN = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;
const SUBDOMAIN_REASON =
  'must be a DNS subdomain: lower-case letters, digits, hyphens and dots, at most 253 characters';

/** A DNS-1123 subdomain (a resource's name, a gateway's name). */
export const dnsSubdomain = z
  .string()
  .max(253, SUBDOMAIN_REASON)
  .pipe(z.string().regex(SUBDOMAIN, SUBDOMAIN_REASON));

const HOST = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?)*$/;
const HOST_REASON =
  'must be a host: a service name (payments), its long form (payments.default.svc.cluster.local) or an external host name, lower-case';

/** A destination host: a service name, its long form, or an external (ServiceEntry) host. */
export const host = z
  .string()
  .max(MESH_LIMITS.maxHostLength, `must be at most ${MESH_LIMITS.maxHostLength} characters`)
  .pipe(z.string().regex(HOST, HOST_REASON));

/** A host that may also be a wildcard (`*`, `*.example.com`): VirtualService and ServiceEntry hosts, a DestinationRule's host. */
export const hostOrWildcard = z
  .string()
  .max(MESH_LIMITS.maxHostLength, `must be at most ${MESH_LIMITS.maxHostLength} characters`)
  .pipe(
    z
      .string()
      .refine(
        (s) => s === '*' || HOST.test(s.startsWith('*.') ? s.slice(2) : s),
        `${HOST_REASON}, or a wildcard (*, *.example.com)`,
      ),
  );

/** Whether `h` is a wildcard host. */
export function isWildcardHost(h: string): boolean {
  return h.startsWith('*');
}

/** An IP address or a CIDR block (`10.0.0.0/8`, `2001:db8::/32`). */
export const ipOrCidr = z
  .string()
  .max(64, 'must be an IP address or a CIDR block')
  .refine((s) => {
    const slash = s.indexOf('/');
    const ip = slash < 0 ? s : s.slice(0, slash);
    const family = isIP(ip);
    if (family === 0) return false;
    if (slash < 0) return true;
    const bits = s.slice(slash + 1);
    return /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
  }, 'must be an IP address or a CIDR block (10.0.0.0/8)');

// Istio writes durations as protobuf durations ("1.5s") and, in YAML, also "100ms", "1m", "1h".
const DURATION = /^(?:\d{1,9}(?:\.\d{1,9})?(?:h|ms|m|s))+$/;
const DURATION_REASON = 'must be a duration like "100ms", "5s", "1.5s", "1m" or "1h"';

/** An Istio duration ("100ms", "5s", "1.5s", "1m", "1h", "1m30s"), from `minMs` (at least 1) to `maxMs`. */
export function duration(minMs = 1, maxMs: number = MESH_LIMITS.maxDurationMs): z.ZodString {
  return z.string({ error: DURATION_REASON }).superRefine((s, ctx) => {
    const ms = s.length <= 40 && DURATION.test(s) ? parseDurationMs(s) : undefined;
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: DURATION_REASON });
    } else if (ms < minMs) {
      ctx.addIssue({
        code: 'custom',
        message: minMs <= 1 ? 'must be more than 0' : `must be at least ${formatDurationMs(minMs)}`,
      });
    } else if (ms > maxMs) {
      ctx.addIssue({ code: 'custom', message: `must be at most ${formatDurationMs(maxMs)}` });
    }
  });
}

/** A percentage: `{ value: 0..100 }`, fractions allowed. */
export const percent = z.strictObject(
  { value: z.number().refine((n) => n >= 0 && n <= 100, 'must be 0..100') },
  { error: 'must be a percentage: { value: 0..100 }' },
) satisfies z.ZodType<Percent>;

/**
 * The compile work left to the resource being parsed, in RE2 instructions (see
 * {@link withRegexBudget}); undefined outside a parse, where regexes are not counted.
 */
let regexBudget: { remaining: number; refused: boolean } | undefined;

/** Each regex is charged at least this many instructions: compiling has a cost of its own. */
const MIN_REGEX_CHARGE = 64;

/**
 * Runs `parse` (synchronous: a schema's safeParse) with a budget of RE2 instructions for all the
 * regexes of one resource. One regex is capped at 2,048 instructions, but compiling costs 1 to 3
 * µs an instruction in re2js, so a resource of many large regexes (`a{0,900}`: 8 characters,
 * 1,805 instructions, about 2 ms) would cost seconds. Past the budget, the first regex is refused
 * (naming the budget) and the rest are not read.
 */
export function withRegexBudget<T>(parse: () => T): T {
  const outer = regexBudget;
  regexBudget = { remaining: MESH_LIMITS.maxRegexInstructions, refused: false };
  try {
    return parse();
  } finally {
    regexBudget = outer;
  }
}

/** A regex field: RE2 syntax (the reason names what RE2 refuses), within the resource's budget. */
export const regex = z
  .string()
  .min(1, 'must not be empty')
  .max(MESH_LIMITS.maxRegexLength, `must be at most ${MESH_LIMITS.maxRegexLength} characters`)
  .pipe(
    z.string().superRefine((pattern, ctx) => {
      const budget = regexBudget;
      if (budget !== undefined && budget.remaining <= 0) {
        if (budget.refused) return;
        budget.refused = true;
        ctx.addIssue({
          code: 'custom',
          message: `not compiled: the regexes of this resource come to more than ${MESH_LIMITS.maxRegexInstructions} RE2 instructions (each counts at least ${MIN_REGEX_CHARGE}); use fewer or smaller ones`,
        });
        return;
      }
      const size = userRegexSize(pattern);
      if (typeof size === 'string') ctx.addIssue({ code: 'custom', message: size });
      else if (budget !== undefined) budget.remaining -= Math.max(size, MIN_REGEX_CHARGE);
    }),
  );

/**
 * Istio's StringMatch: exactly one of exact, prefix, regex. `prefix: false` for the fields
 * where Istio does not support it (query parameters).
 */
export function stringMatch({ prefix = true }: { readonly prefix?: boolean } = {}) {
  return z
    .strictObject({
      exact: text(MESH_LIMITS.maxTextLength, 0).optional(),
      prefix: prefix
        ? text(MESH_LIMITS.maxTextLength, 0).optional()
        : z
            .unknown()
            .refine(() => false, "not supported here (Istio's rule): use exact or regex")
            .optional(),
      regex: regex.optional(),
    })
    .superRefine(
      (m, ctx) => exactlyOne(m, prefix ? ['exact', 'prefix', 'regex'] : ['exact', 'regex'], ctx),
      unlessFailed(),
    )
    .transform((m) => m as StringMatch);
}

// RFC 9110 section 5.6.2: a field name is a token (so is a cookie name, RFC 6265 section 4.1.1).
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** An HTTP token (a header or cookie name), case kept. */
export const httpToken = z
  .string()
  .min(1, 'must not be empty')
  .max(
    MESH_LIMITS.maxHeaderNameLength,
    `must be at most ${MESH_LIMITS.maxHeaderNameLength} characters`,
  )
  .pipe(z.string().regex(TOKEN, "must be an HTTP token (letters, digits and !#$%&'*+-.^_`|~)"));

/** An HTTP header name, lower-cased. */
export const headerName = httpToken.transform((s) => s.toLowerCase());

/** A header value: no CR, LF or NUL (they would split or end the header). */
export const headerValue = z
  .string()
  .max(
    MESH_LIMITS.maxHeaderValueLength,
    `must be at most ${MESH_LIMITS.maxHeaderValueLength} characters`,
  )
  .refine((s) => !/[\r\n\0]/.test(s), 'must not contain CR, LF or NUL');

/** A map keyed by header names (lower-cased; two spellings of one name are refused). */
export function headerMap<V extends z.ZodType>(value: V) {
  return z
    .record(z.string(), z.unknown())
    .superRefine((m, ctx) => {
      const seen = new Set<string>();
      for (const k of Object.keys(m)) {
        const lower = k.toLowerCase();
        if (seen.has(lower)) {
          ctx.addIssue({
            code: 'custom',
            path: [k],
            message: 'duplicate header name (header names are case-insensitive)',
          });
        }
        seen.add(lower);
      }
    })
    .pipe(map(headerName, value));
}

const headerOperations = z.strictObject({
  set: headerMap(headerValue).optional(),
  add: headerMap(headerValue).optional(),
  remove: uniqueList(headerName, MESH_LIMITS.maxMapEntries).optional(),
}) satisfies z.ZodType<HeaderOperations>;

/** Header operations on requests and responses. */
export const headers = z.strictObject({
  request: headerOperations.optional(),
  response: headerOperations.optional(),
}) satisfies z.ZodType<Headers>;

const META_KEY = /^[A-Za-z0-9_-]{1,128}$/;

/**
 * Labels that select instances: an instance's labels are its meta (keys of letters, digits,
 * `_` and `-`), plus `app: <service>`, so a key no meta can hold would select nothing.
 */
export const selectorLabels = map(
  z
    .string()
    .regex(
      META_KEY,
      'must be an instance meta key (1-128 letters, digits, _ or -), as instance labels are their meta',
    ),
  text(512, 0),
);

/** A workload selector: `matchLabels` with at least one label. */
export const workloadSelector = z.strictObject({
  matchLabels: selectorLabels.refine(
    (m) => Object.keys(m).length > 0,
    'must hold at least one label (omit the selector to select every workload of the namespace)',
  ),
}) satisfies z.ZodType<WorkloadSelector>;

/** Adds an issue unless exactly one of `keys` is set in `o`, naming them. */
export function exactlyOne(
  o: Readonly<Record<string, unknown>>,
  keys: readonly string[],
  ctx: z.RefinementCtx,
): void {
  const set = keys.filter((k) => o[k] !== undefined);
  if (set.length === 1) return;
  ctx.addIssue({
    code: 'custom',
    message:
      set.length === 0
        ? `must set one of ${keys.join(', ')}`
        : `must set only one of ${keys.join(', ')} (got ${set.join(', ')})`,
  });
}
