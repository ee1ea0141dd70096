/**
 * @module What the parts of one compile share: the inputs (proxy, catalog, resource index), the
 * record of what was read (deps), and small helpers every part uses.
 */
import { parseDurationMs } from '../core/duration.js';
import type { StoredMeshResource } from '../protocol/mesh/resource.js';
import type {
  ProxyIdentity,
  SnapshotCluster,
  SnapshotEndpoint,
} from '../protocol/mesh/snapshot.js';
import type { WorkloadSelector } from '../protocol/mesh/specs.js';
import type { SnapshotDeps } from './mesh-deps.js';
import type { MeshIndex } from './mesh-index.js';

/** Istio's root namespace: policies there apply mesh-wide. */
export const ROOT_NAMESPACE = 'istio-system';

/** The catalog as a compile reads it. */
export interface CompileCatalog {
  /** Every catalog service name (read only for sidecars without declared upstreams). */
  services(): readonly string[];
  /** A service's endpoints, every status, ordered by id (see instanceEndpoints). */
  endpoints(service: string): readonly SnapshotEndpoint[];
}

/** The deps of one compile, filled in as it reads. */
export interface DepsRecorder extends SnapshotDeps {
  readonly services: Set<string>;
  allServices: boolean;
  readonly resources: Set<string>;
}

export function createDepsRecorder(): DepsRecorder {
  return { services: new Set(), allServices: false, resources: new Set() };
}

/** A cluster as compiled once, with what it read, for reuse by later compiles. */
export interface CompiledCluster {
  /** Frozen. */
  readonly cluster: SnapshotCluster;
  readonly services: readonly string[];
  readonly resources: readonly string[];
}

/**
 * Clusters kept between compiles (and shared between proxies): a cluster is a function of the
 * proxy's namespace, its host, subset and port, the host's endpoints and its host-keyed
 * resources. The owner MUST drop a host's entries when its service changes and every entry when
 * a host-keyed resource (DestinationRule, ServiceEntry, RetryBudget, ResponseCache,
 * LocalRateLimit) changes.
 */
export interface ClusterCache {
  get(host: string, key: string): CompiledCluster | undefined;
  set(host: string, key: string, entry: CompiledCluster): void;
}

export interface CompileContext {
  readonly proxy: ProxyIdentity;
  readonly mesh: MeshIndex;
  readonly catalog: CompileCatalog;
  readonly deps: DepsRecorder;
  readonly clusters?: ClusterCache;
}

/** `obj` without its undefined members (snapshots compare and print without them). */
export function compact<T extends object>(obj: T): T {
  for (const key of Object.keys(obj) as (keyof T)[]) {
    if (obj[key] === undefined) delete obj[key];
  }
  return obj;
}

/** A duration string of a normalised spec in ms (specs are validated: a bad one reads as absent). */
export function durationMs(text: string | undefined): number | undefined {
  return text === undefined ? undefined : parseDurationMs(text);
}

/**
 * The resource that applies among `list` (already in precedence order): the first in the first
 * of `namespaces` that has one, else the oldest. Istio's lookup order for a DestinationRule:
 * the client's namespace, the service's namespace, the root namespace.
 */
export function preferred(
  list: readonly StoredMeshResource[],
  namespaces: readonly string[],
): StoredMeshResource | undefined {
  if (list.length <= 1) return list[0];
  for (const ns of namespaces) {
    const hit = list.find((r) => r.resource.metadata.namespace === ns);
    if (hit !== undefined) return hit;
  }
  return list[0];
}

/** True when every label of `selector` is in `labels` (an absent selector selects everything). */
export function selects(
  selector: WorkloadSelector | undefined,
  labels: Readonly<Record<string, string>>,
): boolean {
  if (selector === undefined) return true;
  return labelsMatch(selector.matchLabels, labels);
}

/** True when `labels` hold every entry of `wanted`. */
export function labelsMatch(
  wanted: Readonly<Record<string, string>>,
  labels: Readonly<Record<string, string>>,
): boolean {
  for (const key of Object.keys(wanted)) if (labels[key] !== wanted[key]) return false;
  return true;
}
