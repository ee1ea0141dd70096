/**
 * @module Mesh resource documents (YAML or JSON, already parsed) to their normalised form
 * (./specs.ts), or every problem with its field path. The schemas of the kinds are in the
 * ./schema-*.ts files; the seeds' non-Istio spellings are read by ./seed-spellings.ts.
 */
import { z } from 'zod';
import { protoKeyPath } from '../validation.js';
import { problemsOf } from './problems.js';
import {
  MESH_KINDS,
  MESH_KIND_INFO,
  meshApiVersion,
  type MeshKind,
  type MeshResource,
  type MeshResourceMetadata,
  type MeshSpecs,
  type ResourceProblem,
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
import { respellSeedFields } from './seed-spellings.js';

/** What {@link parseMeshResource} made of a document. */
export type ParseResult =
  | {
      readonly ok: true;
      readonly resource: MeshResource;
      /** Each starts with the path it is about (`spec.http[0].route[0].weight: ignored: ...`). */
      readonly warnings: readonly string[];
    }
  | { readonly ok: false; readonly problems: readonly ResourceProblem[] };

/** The spec schema of each kind; its output is the kind's normalised spec type. */
const SPEC_SCHEMAS = {
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
  readonly [K in MeshKind]: Same<Shape<z.output<(typeof SPEC_SCHEMAS)[K]>>, Shape<MeshSpecs[K]>>;
};
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

/** The whole document of each kind. */
const DOCUMENT_SCHEMAS = new Map(
  MESH_KINDS.map((kind) => [
    kind,
    z.strictObject({
      apiVersion: apiVersionOf(kind),
      kind: z.literal(kind),
      metadata,
      spec: SPEC_SCHEMAS[kind] as z.ZodType<MeshSpecs[MeshKind]>,
    }),
  ]),
);

/** A document of a kind we do not know: its kind is the problem; the envelope is checked too. */
const UNKNOWN_KIND_SCHEMA = z.strictObject({
  apiVersion: z.string(),
  kind: z
    .string()
    .refine(() => false, `unknown kind: the supported kinds are ${MESH_KINDS.join(', ')}`),
  metadata,
  spec: z.unknown(),
});

const isKind = (k: unknown): k is MeshKind =>
  typeof k === 'string' && Object.hasOwn(MESH_KIND_INFO, k);

/**
 * Whether `doc` (one parsed YAML or JSON document) is a mesh resource rather than an instance:
 * it has a string `apiVersion` and a string `kind`, of any value (a wrong one is then
 * {@link parseMeshResource}'s to report).
 */
export function isMeshDocument(doc: unknown): boolean {
  return (
    typeof doc === 'object' &&
    doc !== null &&
    !Array.isArray(doc) &&
    typeof (doc as { apiVersion?: unknown }).apiVersion === 'string' &&
    typeof (doc as { kind?: unknown }).kind === 'string'
  );
}

/**
 * Validates one mesh resource document and returns its normalised form (defaults filled in,
 * header names lower-cased, the seeds' spellings rewritten to Istio's with a warning each), or
 * every problem found, each with its field path (`spec.http[0].route[1].weight`) and reason.
 * References to other resources (a route's subset) are checked by ./references.ts on the set.
 * Never throws.
 * @example
 * const r = parseMeshResource(YAML.parse(text));
 * if (!r.ok) for (const p of r.problems) console.error(`${p.path}: ${p.reason}`);
 */
export function parseMeshResource(doc: unknown): ParseResult {
  try {
    return parse(doc);
  } catch (err) {
    // Plain data cannot get here; a document built of getters or proxies could.
    const message = err instanceof Error ? err.message : String(err);
    return { ok: false, problems: [{ path: '', reason: `could not be read (${message})` }] };
  }
}

function parse(doc: unknown): ParseResult {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    return {
      ok: false,
      problems: [{ path: '', reason: 'must be a map with apiVersion, kind, metadata and spec' }],
    };
  }
  // A `__proto__` key would vanish when a map is copied (it sets the prototype instead).
  const proto = protoKeyPath(doc);
  if (proto !== undefined) {
    return { ok: false, problems: [{ path: proto, reason: 'must not be a key' }] };
  }
  const respelled = respellSeedFields(doc as Readonly<Record<string, unknown>>);
  const kind = respelled.doc['kind'];
  const schema = (isKind(kind) ? DOCUMENT_SCHEMAS.get(kind) : undefined) ?? UNKNOWN_KIND_SCHEMA;
  const result = schema.safeParse(respelled.doc, { reportInput: true });
  const problems = [
    ...respelled.problems,
    ...(result.success ? [] : problemsOf(result.error, '', respelled.renamed)),
  ];
  if (!result.success || problems.length > 0 || !isKind(kind)) {
    return { ok: false, problems: dedupe(problems) };
  }
  const resource = {
    apiVersion: meshApiVersion(kind),
    kind,
    metadata: result.data.metadata,
    spec: result.data.spec,
  } as MeshResource;
  return { ok: true, resource, warnings: respelled.warnings };
}

function dedupe(problems: readonly ResourceProblem[]): ResourceProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.path}\n${p.reason}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
