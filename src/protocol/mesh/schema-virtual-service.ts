/**
 * @module The VirtualService spec schema: http routes (match, weighted destinations, rewrite,
 * headers, retries, timeout, fault, mirror) and the gateways the VirtualService binds to.
 */
import { z } from 'zod';
import {
  MESH_LIMITS,
  dnsLabel,
  duration,
  fieldOf,
  headerMap,
  headers,
  host,
  hostOrWildcard,
  int,
  list,
  map,
  percent,
  portNumber,
  stringMatch,
  text,
  uniqueList,
  unlessFailed,
} from './schema-common.js';
import type {
  Destination,
  HttpFaultInjection,
  HttpMatchRequest,
  HttpRetry,
  VirtualServiceSpec,
} from './specs.js';

/** Envoy's retry conditions Meshwork's proxies implement (besides bare status codes). */
export const RETRY_ON_CONDITIONS = Object.freeze([
  '5xx',
  'gateway-error',
  'reset',
  'connect-failure',
  'retriable-4xx',
  'refused-stream',
  'retriable-status-codes',
]);

const destination = z.strictObject({
  host,
  subset: dnsLabel.optional(),
  port: z.strictObject({ number: portNumber }).optional(),
}) satisfies z.ZodType<Destination>;

const routeDestination = z.strictObject({
  destination,
  weight: int(0, 100).optional(),
  headers: headers.optional(),
});

const matchRequest = z.strictObject({
  name: text(253).optional(),
  uri: stringMatch().optional(),
  method: stringMatch().optional(),
  authority: stringMatch().optional(),
  headers: headerMap(stringMatch()).optional(),
  queryParams: map(text(256), stringMatch({ prefix: false })).optional(),
  ignoreUriCase: z.boolean().optional(),
}) satisfies z.ZodType<HttpMatchRequest>;

const retryOn = z
  .string()
  .max(512, 'must be at most 512 characters')
  .superRefine((s, ctx) => {
    const bad = s.split(',').filter((t) => {
      if (RETRY_ON_CONDITIONS.includes(t)) return false;
      return !(/^\d{3}$/.test(t) && Number(t) >= 100 && Number(t) <= 599);
    });
    if (bad.length === 0) return;
    ctx.addIssue({
      code: 'custom',
      message: `unknown retry condition ${bad.map((t) => JSON.stringify(t)).join(', ')}: use a comma-separated list of ${RETRY_ON_CONDITIONS.join(', ')} and status codes (503)`,
    });
  });

const retries = z.strictObject({
  attempts: int(0, MESH_LIMITS.maxRetryAttempts),
  perTryTimeout: duration().optional(),
  retryOn: retryOn.optional(),
}) satisfies z.ZodType<HttpRetry>;

const fault = z
  .strictObject({
    delay: z.strictObject({ fixedDelay: duration(), percentage: percent.optional() }).optional(),
    abort: z.strictObject({ httpStatus: int(200, 599), percentage: percent.optional() }).optional(),
  })
  .superRefine((f, ctx) => {
    if (f.delay === undefined && f.abort === undefined) {
      ctx.addIssue({ code: 'custom', message: 'must set delay or abort, or both' });
    }
  }, unlessFailed()) satisfies z.ZodType<HttpFaultInjection>;

const AUTHORITY = /^[A-Za-z0-9.-]{1,253}(?::\d{1,5})?$/;

const rewrite = z
  .strictObject({
    uri: text()
      .refine((s) => s.startsWith('/'), 'must start with /')
      .optional(),
    authority: z.string().regex(AUTHORITY, 'must be a host or host:port').optional(),
  })
  .superRefine((r, ctx) => {
    if (r.uri === undefined && r.authority === undefined) {
      ctx.addIssue({ code: 'custom', message: 'must set uri or authority' });
    }
  }, unlessFailed());

const httpRoute = z
  .strictObject({
    name: text(253).optional(),
    match: list(matchRequest, MESH_LIMITS.maxMatches).optional(),
    route: list(routeDestination, MESH_LIMITS.maxDestinations, 1),
    rewrite: rewrite.optional(),
    timeout: duration().optional(),
    retries: retries.optional(),
    fault: fault.optional(),
    mirror: destination.optional(),
    mirrorPercentage: percent.optional(),
    headers: headers.optional(),
  })
  .superRefine((r, ctx) => {
    if (r.mirrorPercentage !== undefined && r.mirror === undefined) {
      ctx.addIssue({ code: 'custom', path: ['mirrorPercentage'], message: 'needs mirror' });
    }
  }, unlessFailed())
  .superRefine(
    (r, ctx) => {
      // Read defensively: the destinations may have failed (a bad host), their weights not.
      const route: readonly unknown[] = r.route;
      if (route.length < 2) return;
      // Istio's rule: a destination without a weight gets 0 when the route has several.
      const weights = route.map((d) => fieldOf('weight')(d) ?? 0);
      if (!weights.every((w) => typeof w === 'number' && Number.isInteger(w) && w >= 0 && w <= 100))
        return;
      const sum = (weights as number[]).reduce((a, b) => a + b, 0);
      if (sum !== 100) {
        ctx.addIssue({
          code: 'custom',
          path: ['route'],
          message: `the weights of the destinations sum to ${sum}: they must sum to 100 (a destination without a weight counts 0)`,
        });
      }
    },
    { when: (payload) => Array.isArray(fieldOf('route')(payload.value)) },
  )
  .transform((r) => {
    if (r.route.length < 2) return r;
    return { ...r, route: r.route.map((d) => ('weight' in d ? d : { ...d, weight: 0 })) };
  });

const GATEWAY =
  /^(?:[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?\/)?[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;

const gatewayName = z
  .string()
  .max(317, 'must be at most 317 characters')
  .pipe(
    z.string().regex(GATEWAY, 'must be mesh, a gateway name (meshwork-gateway) or namespace/name'),
  );

/** VirtualService `spec`. `hosts` is required here: ./seed-spellings.ts fills it first when missing. */
export const virtualServiceSpecSchema = z.strictObject({
  hosts: uniqueList(hostOrWildcard, MESH_LIMITS.maxHosts, { min: 1 }),
  gateways: uniqueList(gatewayName, MESH_LIMITS.maxGateways, { min: 1 }).optional(),
  http: list(httpRoute, MESH_LIMITS.maxHttpRoutes, 1),
}) satisfies z.ZodType<VirtualServiceSpec>;
