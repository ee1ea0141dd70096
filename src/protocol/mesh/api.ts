/**
 * @module Wire shapes of the mesh endpoints of the native API (`/api/v1/mesh/...`), shared by
 * the agent's routes and the SDK's RegistryClient (docs/api.md, "Mesh resources").
 */
import type { ApplyResponse } from '../api-types.js';
import type { MeshResource, MeshResourceKey, StoredMeshResource } from './resource.js';

/** `POST /api/v1/mesh/apply`. */
export interface MeshApplyBody {
  /**
   * The documents of one file, in order: mesh resources (`apiVersion`, `kind`, `metadata`,
   * `spec`) and at most one instance set (`{ set?, services: [registrations] }`).
   */
  readonly documents: readonly unknown[];
  /** The instance set's name when its document has no `set:`. */
  readonly set?: string;
  /** Validate and answer what would change; store nothing. */
  readonly dryRun?: boolean;
}

/** What an apply did (or would do) to one resource. */
export interface MeshResourceChange {
  readonly key: MeshResourceKey;
  readonly action: 'created' | 'configured' | 'unchanged';
  /** The stored resource before (configured, unchanged). */
  readonly before?: MeshResource;
  readonly after: MeshResource;
}

/** A note on a document that was accepted (a seed's spelling that strays from Istio's). */
export interface MeshApplyWarning {
  /** The index of the document in `documents`. */
  readonly document: number;
  /** `Kind/namespace/name`, when known. */
  readonly resource?: string;
  readonly message: string;
}

export interface MeshApplyResponse {
  readonly index: number;
  readonly dryRun: boolean;
  readonly resources: readonly MeshResourceChange[];
  /** Present when the documents held an instance set. */
  readonly instances?: ApplyResponse;
  readonly warnings: readonly MeshApplyWarning[];
}

/**
 * One problem of an apply refused with 400: `details.problems` of the error body. `document` is
 * the index in `documents` (absent for a stored resource the apply would break: `resource` names
 * it); `path` is the field path inside that document (`spec.http[0].route[1].weight`).
 */
export interface MeshDocumentProblem {
  readonly document?: number;
  readonly resource?: string;
  readonly path: string;
  readonly reason: string;
}

/** `GET /api/v1/mesh/resources[/{kind}]`. */
export interface MeshResourceListResponse {
  readonly index: number;
  readonly resources: readonly StoredMeshResource[];
}

/** `GET /api/v1/mesh/resources/{kind}/{namespace}/{name}`. */
export interface MeshResourceResponse {
  readonly index: number;
  readonly resource: StoredMeshResource;
}

/** `DELETE /api/v1/mesh/resources/{kind}/{namespace}/{name}`. */
export interface MeshDeleteResponse {
  readonly index: number;
  readonly deleted: boolean;
}
