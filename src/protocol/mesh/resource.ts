/**
 * @module Mesh resources: the kinds the control plane takes (Istio's shapes, and Meshwork's own
 * where Istio has no first-class field), their envelope, keys and stored form. The specs are
 * typed in ./specs.ts (their normalised form: what is stored and what the compiler reads); the
 * schemas that produce them from user YAML are in ./parse.ts.
 */
import type {
  AuthorizationPolicySpec,
  DestinationRuleSpec,
  LocalRateLimitSpec,
  PeerAuthenticationSpec,
  ResponseCacheSpec,
  RetryBudgetSpec,
  ServiceEntrySpec,
  SidecarSpec,
  VirtualServiceSpec,
} from './specs.js';

/** Every kind, with its API group, the versions accepted, and its plural (CLI and URL) name. */
export const MESH_KIND_INFO = {
  VirtualService: {
    group: 'networking.istio.io',
    versions: ['v1', 'v1beta1', 'v1alpha3'],
    plural: 'virtualservices',
    short: 'vs',
  },
  DestinationRule: {
    group: 'networking.istio.io',
    versions: ['v1', 'v1beta1', 'v1alpha3'],
    plural: 'destinationrules',
    short: 'dr',
  },
  ServiceEntry: {
    group: 'networking.istio.io',
    versions: ['v1', 'v1beta1', 'v1alpha3'],
    plural: 'serviceentries',
    short: 'se',
  },
  Sidecar: {
    group: 'networking.istio.io',
    versions: ['v1', 'v1beta1', 'v1alpha3'],
    plural: 'sidecars',
    short: 'sidecar',
  },
  AuthorizationPolicy: {
    group: 'security.istio.io',
    versions: ['v1', 'v1beta1'],
    plural: 'authorizationpolicies',
    short: 'ap',
  },
  PeerAuthentication: {
    group: 'security.istio.io',
    versions: ['v1', 'v1beta1'],
    plural: 'peerauthentications',
    short: 'pa',
  },
  LocalRateLimit: {
    group: 'meshwork.dev',
    versions: ['v1'],
    plural: 'localratelimits',
    short: 'lrl',
  },
  ResponseCache: {
    group: 'meshwork.dev',
    versions: ['v1'],
    plural: 'responsecaches',
    short: 'rc',
  },
  RetryBudget: {
    group: 'meshwork.dev',
    versions: ['v1'],
    plural: 'retrybudgets',
    short: 'rb',
  },
} as const;

export type MeshKind = keyof typeof MESH_KIND_INFO;
export const MESH_KINDS = Object.freeze(Object.keys(MESH_KIND_INFO) as MeshKind[]);

/** The spec type of each kind (normalised: as stored and compiled). */
export interface MeshSpecs {
  VirtualService: VirtualServiceSpec;
  DestinationRule: DestinationRuleSpec;
  ServiceEntry: ServiceEntrySpec;
  Sidecar: SidecarSpec;
  AuthorizationPolicy: AuthorizationPolicySpec;
  PeerAuthentication: PeerAuthenticationSpec;
  LocalRateLimit: LocalRateLimitSpec;
  ResponseCache: ResponseCacheSpec;
  RetryBudget: RetryBudgetSpec;
}

/** The kind a CLI or URL word names: plural (`virtualservices`), kind (any case) or short name. */
export function meshKindOf(word: string): MeshKind | undefined {
  const w = word.toLowerCase();
  for (const kind of MESH_KINDS) {
    const info = MESH_KIND_INFO[kind];
    if (w === info.plural || w === kind.toLowerCase() || w === info.short) return kind;
  }
  return undefined;
}

export interface MeshResourceMetadata {
  readonly name: string;
  /** Defaults to `default`. */
  readonly namespace: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** One resource, normalised (the stored form). */
export interface MeshResource<K extends MeshKind = MeshKind> {
  readonly apiVersion: string;
  readonly kind: K;
  readonly metadata: MeshResourceMetadata;
  readonly spec: MeshSpecs[K];
}

/** `Kind/namespace/name`: a resource's identity in the store and in watches. */
export type MeshResourceKey = `${MeshKind}/${string}/${string}`;

export function meshResourceKey(r: {
  readonly kind: MeshKind;
  readonly metadata: { readonly namespace: string; readonly name: string };
}): MeshResourceKey {
  return `${r.kind}/${r.metadata.namespace}/${r.metadata.name}`;
}

/** A resource as the store holds it. */
export interface StoredMeshResource {
  readonly resource: MeshResource;
  readonly createIndex: number;
  readonly modifyIndex: number;
}

/** One problem found in a resource: the field path (`spec.http[0].route[1].weight`) and why. */
export interface ResourceProblem {
  readonly path: string;
  readonly reason: string;
}

/** `apiVersion` of a kind at its newest version (what `get` prints for the normalised form). */
export function meshApiVersion(kind: MeshKind): string {
  const info = MESH_KIND_INFO[kind];
  return `${info.group}/${info.versions[0]}`;
}
