/**
 * @module Mesh resource documents (YAML or JSON, already parsed) to their normalised form
 * (./specs.ts), or every problem with its field path. The schemas are in ./schema-document.ts
 * and the ./schema-<kinds>.ts files; the seeds' non-Istio spellings are read by
 * ./seed-spellings.ts.
 */
import { protoKeyPath } from '../validation.js';
import { problemsOf } from './problems.js';
import {
  MESH_KIND_INFO,
  meshApiVersion,
  type MeshKind,
  type MeshResource,
  type ResourceProblem,
} from './resource.js';
import { withRegexBudget } from './schema-common.js';
import { documentSchemaOf } from './schema-document.js';
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
  const schema = documentSchemaOf(kind);
  const result = withRegexBudget(() => schema.safeParse(respelled.doc, { reportInput: true }));
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
