/**
 * @module The route config schema: how a request is matched (path prefix, exact path or regex,
 * methods, headers, query, host) and where it goes (a service, optionally a subset of its
 * instances, with weighted splits), with the per-route filters (prefix rewrite, header edits).
 */
import { z } from 'zod';
import { SERVICE_NAME } from '../protocol/registration.js';
import { userRegexSchema } from '../protocol/user-regex.js';
import { HTTP_TOKEN } from './headers.js';

/** A path, header or query regex: RE2 syntax, anchored at both ends when matched (route-table). */
const regexString = userRegexSchema(1000);

const headerName = z
  .string()
  .max(256)
  .regex(HTTP_TOKEN, 'must be an HTTP header name')
  .transform((s) => s.toLowerCase());

/** One header or query parameter condition: exactly one of exact, regex, present. */
const valueMatchSchema = z
  .object({
    name: z.string().min(1).max(256),
    exact: z.string().max(8192).optional(),
    regex: regexString.optional(),
    present: z.boolean().optional(),
  })
  .strict()
  .refine(
    (m) => [m.exact, m.regex, m.present].filter((v) => v !== undefined).length === 1,
    'give exactly one of exact, regex, present',
  );

const pathMatchSchema = z
  .object({
    prefix: z.string().startsWith('/', 'must start with "/"').max(4096).optional(),
    exact: z.string().startsWith('/', 'must start with "/"').max(4096).optional(),
    regex: regexString.optional(),
  })
  .strict()
  .refine(
    (m) => [m.prefix, m.exact, m.regex].filter((v) => v !== undefined).length === 1,
    'give exactly one of prefix, exact, regex',
  );

const METHOD = z.string().regex(/^[A-Z]{1,20}$/, 'must be an upper-case HTTP method');

export const routeMatchSchema = z
  .object({
    path: pathMatchSchema.optional(),
    methods: z.array(METHOD).min(1).max(20).optional(),
    /** The Host header without the port, compared case-insensitively. */
    host: z.string().min(1).max(253).optional(),
    headers: z.array(valueMatchSchema).max(32).optional(),
    query: z.array(valueMatchSchema).max(32).optional(),
  })
  .strict();

const serviceName = z.string().regex(SERVICE_NAME, 'must be a service name (a DNS label)');

/** Instances of a service whose tags and meta all match. */
export const subsetSchema = z
  .object({
    tags: z.array(z.string().min(1).max(256)).max(32).optional(),
    meta: z.record(z.string().min(1).max(128), z.string().max(512)).optional(),
  })
  .strict();

export const backendSchema = z
  .object({
    service: serviceName,
    subset: subsetSchema.optional(),
    /** Share of the route's requests, relative to the other backends' weights. */
    weight: z.number().int().min(0).max(10_000).default(1),
  })
  .strict();

// No CR, LF or NUL: a value is written into the upstream request head as it is.
const headerValues = z.record(
  headerName,
  z
    .string()
    .max(8192)
    .regex(/^[^\r\n\0]*$/, 'must not contain CR, LF or NUL'),
);

const headerEditsSchema = z
  .object({
    /** Set these headers (replacing any value the message had). */
    set: headerValues.optional(),
    /** Add these values (keeping any the message had). */
    add: headerValues.optional(),
    remove: z.array(headerName).max(64).optional(),
  })
  .strict();

/** A balancer spec as the SDK takes it; createBalancer validates the options. */
const balancerSpec = z.union([
  z.string().min(1),
  z.object({ type: z.string().min(1) }).passthrough(),
]);

export const routeSchema = z
  .object({
    /** A name for metrics and logs (default route-<index>). */
    name: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,64}$/)
      .optional(),
    match: routeMatchSchema.default({}),
    /** Shorthand for one backend. */
    service: serviceName.optional(),
    subset: subsetSchema.optional(),
    backends: z.array(backendSchema).min(1).max(32).optional(),
    balancer: balancerSpec.optional(),
    /** Replaces the matched path prefix (path.prefix routes only) with this one. */
    prefixRewrite: z
      .string()
      .regex(/^\/[^\s\0]*$/, 'must start with / and hold no whitespace or NUL')
      .max(4096)
      .optional(),
    requestHeaders: headerEditsSchema.optional(),
    responseHeaders: headerEditsSchema.optional(),
    /** Deadline of the whole request, retries included (0: the gateway's default). */
    timeoutMs: z.number().int().min(0).max(3_600_000).optional(),
  })
  .strict()
  .refine((r) => (r.service === undefined) !== (r.backends === undefined), {
    message: 'give either service or backends',
  })
  .refine((r) => r.backends === undefined || r.subset === undefined, {
    message: 'subset goes inside each backend when backends are given',
    path: ['subset'],
  })
  .refine((r) => r.backends === undefined || r.backends.some((b) => b.weight > 0), {
    message: 'at least one backend needs a weight above 0',
    path: ['backends'],
  })
  .refine((r) => r.prefixRewrite === undefined || r.match.path?.prefix !== undefined, {
    message: 'prefixRewrite needs match.path.prefix',
    path: ['prefixRewrite'],
  });

export type RouteConfig = z.output<typeof routeSchema>;
export type RouteMatchConfig = z.output<typeof routeMatchSchema>;
export type SubsetConfig = z.output<typeof subsetSchema>;
export type BackendConfig = z.output<typeof backendSchema>;
export type BalancerSpecConfig = z.output<typeof balancerSpec>;
