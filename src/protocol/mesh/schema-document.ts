/**
 * @module The schema of a whole mesh resource document per kind: the envelope (apiVersion of
 * the kind's group and versions, kind, metadata) around the kind's spec schema, and the
 * compile-time check that each spec schema's output is the kind's type in ./specs.ts.
 */
import { z } from 'zod';
import {
  MESH_KINDS,
  MESH_KIND_INFO,
  type MeshKind,
  type MeshResourceMetadata,
  type MeshSpecs,
} from './resource.js';
import { MESH_LIMITS, dnsLabel, dnsSubdomain, map } from './schema-common.js';
import { destinationRuleSpecSchema } from './schema-destination-rule.js';
import {
  localRateLimitSpecSchema,
  responseCacheSpecSchema,
  retryBudgetSpecSchema,
} from './schema-meshwork.js';
import { authorizationPolicySpecSchema, peerAuthenticationSpecSchema } from './schema-security.js';
import { serviceEntrySpecSchema, sidecarSpecSchema } from './schema-service-entry.js';
import { virtualServiceSpecSchema } from './schema-virtual-service.js';

/** The spec schema of each kind; its output is the kind's normalised spec type. */
export const MESH_SPEC_SCHEMAS = {
  VirtualService: virtualServiceSpecSchema,
  DestinationRule: destinationRuleSpecSchema,
  ServiceEntry: serviceEntrySpecSchema,
  Sidecar: sidecarSpecSchema,
  AuthorizationPolicy: authorizationPolicySpecSchema,
  PeerAuthentication: peerAuthenticationSpecSchema,
  LocalRateLimit: localRateLimitSpecSchema,
  ResponseCache: responseCacheSpecSchema,
  RetryBudget: retryBudgetSpecSchema,
} satisfies { readonly [K in MeshKind]: z.ZodType<MeshSpecs[K], unknown> };

// The other direction, field by field at every depth: each field of a spec type has its
// schema (a field the schema lacked would pass the `satisfies` above, being optional, and then
// be refused as unknown). Compiles only while the two agree.
type Shape<T> = T extends readonly (infer U)[]
  ? Shape<U>[]
  : T extends object
    ? { [K in keyof T]-?: Shape<NonNullable<T[K]>> }
    : 'value';
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type SpecShapesMatch = {
  readonly [K in MeshKind]: Same<
    Shape<z.output<(typeof MESH_SPEC_SCHEMAS)[K]>>,
    Shape<MeshSpecs[K]>
  >;
};
/** Compile-time only: `true` for each kind while its schema and its spec type agree. */
export const SPEC_SHAPES_MATCH: SpecShapesMatch = {
  VirtualService: true,
  DestinationRule: true,
  ServiceEntry: true,
  Sidecar: true,
  AuthorizationPolicy: true,
  PeerAuthentication: true,
  LocalRateLimit: true,
  ResponseCache: true,
  RetryBudget: true,
};

// Kubernetes' label syntax: an optional DNS-subdomain prefix and `/`, then a name of 1-63.
const LABEL_KEY =
  /^(?:[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?\/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

const labelKey = z
  .string()
  .max(317, 'must be at most 317 characters')
  .pipe(
    z
      .string()
      .regex(
        LABEL_KEY,
        'must be a label key: [prefix/]name, the name 1-63 letters, digits, -, _ or .',
      ),
  );

const metadata = z.strictObject({
  name: dnsSubdomain,
  namespace: dnsLabel.default('default'),
  labels: map(
    labelKey,
    z
      .string()
      .max(63, 'must be at most 63 characters')
      .pipe(z.string().regex(LABEL_VALUE, 'must be a label value: letters, digits, -, _ or .')),
  ).optional(),
  annotations: map(
    labelKey,
    z
      .string()
      .max(
        MESH_LIMITS.maxAnnotationValueLength,
        `must be at most ${MESH_LIMITS.maxAnnotationValueLength} characters`,
      ),
  ).optional(),
}) satisfies z.ZodType<MeshResourceMetadata>;

function apiVersionOf(kind: MeshKind) {
  const info = MESH_KIND_INFO[kind];
  const accepted: readonly string[] = info.versions.map((v) => `${info.group}/${v}`);
  return z
    .string()
    .refine(
      (v) => accepted.includes(v),
      `must be ${accepted.length > 1 ? 'one of ' : ''}${accepted.join(', ')} for ${kind}`,
    );
}

const DOCUMENT_SCHEMAS = new Map(
  MESH_KINDS.map((kind) => [
    kind,
    z.strictObject({
      apiVersion: apiVersionOf(kind),
      kind: z.literal(kind),
      metadata,
      spec: MESH_SPEC_SCHEMAS[kind] as z.ZodType<MeshSpecs[MeshKind]>,
    }),
  ]),
);

const UNKNOWN_KIND_SCHEMA = z.strictObject({
  apiVersion: z.string(),
  kind: z.string().superRefine((kind, ctx) => {
    const meant = MESH_KINDS.find((k) => k.toLowerCase() === kind.toLowerCase());
    ctx.addIssue({
      code: 'custom',
      message:
        meant === undefined
          ? `unknown kind: the supported kinds are ${MESH_KINDS.join(', ')}`
          : `unknown kind: kinds are case-sensitive; write ${meant}`,
    });
  }),
  metadata,
  spec: z.unknown(),
});

/**
 * The schema of a whole document of `kind`; for a kind that is not one (or no string), a schema
 * that refuses the kind and still checks the envelope, so that its problems are reported too.
 */
export function documentSchemaOf(kind: unknown) {
  return (
    (typeof kind === 'string' && Object.hasOwn(MESH_KIND_INFO, kind)
      ? DOCUMENT_SCHEMAS.get(kind as MeshKind)
      : undefined) ?? UNKNOWN_KIND_SCHEMA
  );
}
