/**
 * @module The body of `POST /api/v1/mesh/apply`: its documents sorted into mesh resources (parsed
 * and normalised) and at most one instance set, with every problem of every document collected
 * before anything is refused, so that one answer names them all.
 */
import { z } from 'zod';
import { ERROR_CODES, errors, isMeshError } from '../../core/errors.js';
import type { MeshApplyWarning, MeshDocumentProblem } from '../../protocol/mesh/api.js';
import { isMeshDocument, parseMeshResource } from '../../protocol/mesh/parse.js';
import {
  MESH_KIND_INFO,
  meshResourceKey,
  type MeshResource,
  type MeshResourceKey,
} from '../../protocol/mesh/resource.js';
import { LIMITS } from '../../protocol/limits.js';
import {
  printable,
  registrationInputSchema,
  type ParsedRegistration,
} from '../../protocol/registration.js';
import { parseOrThrow, toValidationError } from '../../protocol/validation.js';

/** At most this many documents in one apply (the body's 1 MiB bounds it anyway). */
export const MAX_MESH_DOCUMENTS = 1000;

const setSchema = printable(256, 1);

const envelopeSchema = z
  .object({
    documents: z.array(z.unknown()).max(MAX_MESH_DOCUMENTS),
    set: setSchema.optional(),
    dryRun: z.boolean().optional(),
  })
  .strict();

/** An apply request, sorted and parsed. */
export interface ParsedMeshApply {
  readonly resources: readonly MeshResource[];
  /** The document each resource came from. */
  readonly documentOf: ReadonlyMap<MeshResourceKey, number>;
  readonly instances?: {
    readonly set: string;
    readonly inputs: readonly ParsedRegistration[];
    readonly document: number;
  };
  readonly warnings: readonly MeshApplyWarning[];
  readonly dryRun: boolean;
}

const isMapping = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** `Kind/namespace/name` of a document that names a known kind and a name, before parsing. */
function keyOfDocument(doc: Record<string, unknown>): string | undefined {
  const kind = doc.kind;
  const meta = doc.metadata;
  if (typeof kind !== 'string' || !Object.hasOwn(MESH_KIND_INFO, kind) || !isMapping(meta))
    return undefined;
  const { name, namespace } = meta;
  if (typeof name !== 'string' || name === '') return undefined;
  return `${kind}/${typeof namespace === 'string' && namespace !== '' ? namespace : 'default'}/${name}`;
}

/**
 * Sorts and parses an apply body. Throws one validation MeshError listing every problem
 * (`details.problems`), or, for a body that is not `{documents: [...]}`, the first.
 */
export function parseMeshApplyBody(body: unknown): ParsedMeshApply {
  const envelope = parseOrThrow(envelopeSchema, body);
  const problems: MeshDocumentProblem[] = [];
  const resources: MeshResource[] = [];
  const documentOf = new Map<MeshResourceKey, number>();
  const warnings: MeshApplyWarning[] = [];
  let instances:
    { set: string | undefined; inputs: ParsedRegistration[]; document: number } | undefined;

  envelope.documents.forEach((doc, i) => {
    if (!isMapping(doc)) {
      problems.push({
        document: i,
        path: '',
        reason:
          'must be a mapping: a mesh resource (apiVersion, kind) or an instance set (services)',
      });
      return;
    }
    if (isMeshDocument(doc)) {
      const known = keyOfDocument(doc);
      const parsed = parseMeshResource(doc);
      if (!parsed.ok) {
        for (const p of parsed.problems)
          problems.push({ document: i, ...(known === undefined ? {} : { resource: known }), ...p });
        return;
      }
      const key = meshResourceKey(parsed.resource);
      const earlier = documentOf.get(key);
      if (earlier !== undefined) {
        problems.push({
          document: i,
          resource: key,
          path: 'metadata.name',
          reason: 'the same resource as an earlier document: each may appear once',
        });
        return;
      }
      documentOf.set(key, i);
      resources.push(parsed.resource);
      for (const message of parsed.warnings) warnings.push({ document: i, resource: key, message });
      return;
    }
    if (!Object.hasOwn(doc, 'services')) {
      problems.push({
        document: i,
        path: '',
        reason:
          'neither a mesh resource (apiVersion and kind) nor an instance set (services: [...])',
      });
      return;
    }
    if (instances !== undefined) {
      problems.push({
        document: i,
        path: 'services',
        reason: 'a second instance set: a file holds at most one',
      });
      return;
    }
    instances = { ...parseInstanceSet(doc, i, problems), document: i };
  });

  let instanceSet: ParsedMeshApply['instances'];
  if (instances !== undefined) {
    const { set: own, inputs, document } = instances;
    const set = own ?? envelope.set;
    if (set === undefined) {
      problems.push({
        document,
        path: 'set',
        reason: 'name the instance set: "set:" in the document, or "set" in the request',
      });
    } else instanceSet = { set, inputs, document };
  }
  if (problems.length > 0) throw errors.meshDocumentsInvalid(problems);
  return {
    resources,
    documentOf,
    ...(instanceSet === undefined ? {} : { instances: instanceSet }),
    warnings,
    dryRun: envelope.dryRun ?? false,
  };
}

/** An instance set document: `{set?, services: [...]}`; each bad entry is a problem. */
function parseInstanceSet(
  doc: Record<string, unknown>,
  document: number,
  problems: MeshDocumentProblem[],
): { set: string | undefined; inputs: ParsedRegistration[] } {
  const inputs: ParsedRegistration[] = [];
  let set: string | undefined;
  for (const key of Object.keys(doc)) {
    if (key !== 'set' && key !== 'services')
      problems.push({ document, path: key, reason: 'unknown field' });
  }
  if (doc.set !== undefined) {
    const r = setSchema.safeParse(doc.set);
    if (r.success) set = r.data;
    else problems.push({ document, ...problemOf(toValidationError(r.error, 'set')) });
  }
  const services = doc.services;
  if (!Array.isArray(services)) {
    problems.push({ document, path: 'services', reason: 'must be a list of registrations' });
    return { set, inputs };
  }
  if (services.length > LIMITS.maxApplyInstances) {
    problems.push({
      document,
      path: 'services',
      reason: `at most ${LIMITS.maxApplyInstances} instances`,
    });
    return { set, inputs };
  }
  services.forEach((s, j) => {
    const r = registrationInputSchema.safeParse(s);
    if (r.success) inputs.push(r.data);
    else problems.push({ document, ...problemOf(toValidationError(r.error, `services[${j}]`)) });
  });
  return { set, inputs };
}

function problemOf(err: unknown): { path: string; reason: string } {
  if (isMeshError(err)) {
    const field = err.details?.field;
    const reason = err.details?.reason;
    return {
      path: typeof field === 'string' ? field : '',
      reason: typeof reason === 'string' ? reason : err.message,
    };
  }
  return { path: '', reason: (err as Error).message };
}

/**
 * The registry's refusal of an apply, with its problems' resources mapped back to the documents
 * they came from (a problem in a stored resource the request left alone names no document).
 */
export function withDocuments(err: unknown, documentOf: ReadonlyMap<string, number>): unknown {
  if (!isMeshError(err, ERROR_CODES.VALIDATION) || !Array.isArray(err.details?.problems))
    return err;
  const problems = (err.details.problems as unknown[]).flatMap((p): MeshDocumentProblem[] => {
    if (!isMapping(p) || typeof p.path !== 'string' || typeof p.reason !== 'string') return [];
    const resource = typeof p.resource === 'string' ? p.resource : undefined;
    const document = resource === undefined ? undefined : documentOf.get(resource);
    return [
      {
        ...(document === undefined ? {} : { document }),
        ...(resource === undefined ? {} : { resource }),
        path: p.path,
        reason: p.reason,
      },
    ];
  });
  return problems.length === 0 ? err : errors.meshDocumentsInvalid(problems);
}
