/**
 * @module The mesh side of the registry contract: mesh resources as the catalog holds them
 * (read, watched, written atomically with instances), and the in-process change feed the
 * control plane recompiles from. The `Registry` implements these beside CatalogFacade.
 */
import type { ApplyResponse, InstanceDto } from '../protocol/api-types.js';
import type { MeshResourceChange } from '../protocol/mesh/api.js';
import type {
  MeshKind,
  MeshResource,
  MeshResourceKey,
  StoredMeshResource,
} from '../protocol/mesh/resource.js';
import type { ParsedRegistration } from '../protocol/registration.js';
import type { RegistrationSource } from '../core/types.js';

/** One instance put (new, changed, or its status changed) or deleted, at `index`. */
export interface InstanceChange {
  readonly kind: 'upsert' | 'delete';
  readonly service: string;
  readonly id: string;
  readonly index: number;
  /**
   * A deletion: the instance as it was when it went, made on call (a listener that keeps
   * copies of deleted instances, Eureka's delta, asks; nothing is made for the others).
   */
  readonly lastKnown?: () => InstanceDto;
}

/** What one published change touched (`MeshCatalogReader.onCatalogChange`). */
export interface CatalogChange {
  readonly index: number;
  /** Services whose instances or their status changed. */
  readonly services: readonly string[];
  /** The instances changed, in order (an instance may appear more than once). */
  readonly instances: readonly InstanceChange[];
  /** Mesh resources put or deleted. */
  readonly meshResources: readonly MeshResourceKey[];
}

/** Reads of the mesh resources, synchronous and from memory (as CatalogReader's). */
export interface MeshCatalogReader {
  /** The index of the last change to any mesh resource (the topic `mesh`). */
  readonly meshIndex: number;
  /** Every resource (of one kind), sorted by key. Shared: do not mutate. */
  meshResources(kind?: MeshKind): readonly StoredMeshResource[];
  meshResource(key: MeshResourceKey): StoredMeshResource | undefined;
  /**
   * Calls `listener` synchronously after each change was applied to the view (reads see it),
   * once per published change, in index order. A listener MUST NOT throw (one that does is
   * logged and kept). Returns the unsubscribe function.
   */
  onCatalogChange(listener: (change: CatalogChange) => void): () => void;
}

export interface MeshApplyRequest {
  /** Parsed and normalised (protocol/mesh/parse.ts); put as they are (create or replace). */
  readonly resources: readonly MeshResource[];
  /** Instance sets declared in the same file, applied in the same commit. */
  readonly instances?: {
    readonly set: string;
    readonly inputs: readonly ParsedRegistration[];
    readonly source?: RegistrationSource;
  };
  /** Validate and compute the result, store nothing. */
  readonly dryRun?: boolean;
}

/** What an apply did (or would do) to one resource: the API answers it as it is. */
export type { MeshResourceChange };

export interface MeshApplyResult {
  /** The commit's index (dry run, or nothing changed: the current index). */
  readonly index: number;
  readonly dryRun: boolean;
  readonly resources: readonly MeshResourceChange[];
  readonly instances?: ApplyResponse;
}

/** Writes of mesh resources. Rejects with a MeshError; a validation error names the field path. */
export interface MeshCatalogWriter {
  /**
   * All or nothing: the references of the resulting set are checked (a route to a subset no
   * DestinationRule defines...) before anything is stored; one commit for resources and
   * instances together.
   */
  applyMesh(request: MeshApplyRequest): Promise<MeshApplyResult>;
  /** Deletes one resource; refused (validation, naming the referrer) when another refers to it. */
  deleteMeshResource(key: MeshResourceKey): Promise<{ index: number; deleted: boolean }>;
}
