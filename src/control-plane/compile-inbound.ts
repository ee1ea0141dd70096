/**
 * @module A sidecar's inbound side (the PeerAuthentication, AuthorizationPolicies and local rate
 * limit of the service it fronts) and its egress mode (from a Sidecar resource).
 */
import { meshResourceKey, type StoredMeshResource } from '../protocol/mesh/resource.js';
import type { MeshSnapshot, SnapshotInbound } from '../protocol/mesh/snapshot.js';
import type {
  AuthorizationPolicySpec,
  LocalRateLimitSpec,
  MtlsMode,
  PeerAuthenticationSpec,
  SidecarSpec,
  WorkloadSelector,
} from '../protocol/mesh/specs.js';
import { tokenBucket } from './compile-clusters.js';
import { compact, ROOT_NAMESPACE, selects, type CompileContext } from './compile-context.js';
import { depKeys, type NamespaceKind } from './mesh-deps.js';

/** Reads the namespace-scoped resources of `kind` in `namespace`, recording the lookup. */
function inNamespace(
  ctx: CompileContext,
  kind: NamespaceKind,
  namespace: string,
): readonly StoredMeshResource[] {
  ctx.deps.resources.add(depKeys.inNamespace(kind, namespace));
  return ctx.mesh.inNamespace(kind, namespace);
}

/**
 * The resource of `kind` that applies to a workload, Istio's order: in its namespace, the oldest
 * whose selector matches it, else the oldest without a selector; else the oldest without a
 * selector in the root namespace (mesh-wide).
 */
function applicable(
  ctx: CompileContext,
  kind: NamespaceKind,
  labels: Readonly<Record<string, string>>,
  selectorOf: (spec: unknown) => WorkloadSelector | undefined,
): { workload?: StoredMeshResource; namespace?: StoredMeshResource; mesh?: StoredMeshResource } {
  const own = inNamespace(ctx, kind, ctx.proxy.namespace);
  const root = ctx.proxy.namespace === ROOT_NAMESPACE ? [] : inNamespace(ctx, kind, ROOT_NAMESPACE);
  const wide = (r: StoredMeshResource) => selectorOf(r.resource.spec) === undefined;
  return compact({
    workload: own.find((r) => !wide(r) && selects(selectorOf(r.resource.spec), labels)),
    namespace: own.find(wide),
    mesh: root.find(wide),
  });
}

/** The labels a sidecar's policies select it by: `app: <service>` (the catalog's label). */
function workloadLabels(service: string): Record<string, string> {
  return { app: service };
}

/**
 * The mTLS mode of a workload: the most specific PeerAuthentication's, where UNSET (or no `mtls`)
 * inherits the next level's (Istio), down to PERMISSIVE. `portLevelMtls` comes from the
 * workload-level policy only (Istio takes it only with a selector).
 */
function peerAuthentication(
  ctx: CompileContext,
  labels: Readonly<Record<string, string>>,
): Pick<SnapshotInbound, 'mtls' | 'portLevelMtls'> {
  const levels = applicable(
    ctx,
    'PeerAuthentication',
    labels,
    (s) => (s as PeerAuthenticationSpec).selector,
  );
  const modeOf = (r: StoredMeshResource | undefined): MtlsMode | undefined => {
    const mode = (r?.resource.spec as PeerAuthenticationSpec | undefined)?.mtls?.mode;
    return mode === 'UNSET' ? undefined : mode;
  };
  const mtls =
    modeOf(levels.workload) ?? modeOf(levels.namespace) ?? modeOf(levels.mesh) ?? 'PERMISSIVE';
  const ports = (levels.workload?.resource.spec as PeerAuthenticationSpec | undefined)
    ?.portLevelMtls;
  if (ports === undefined) return { mtls };
  const portLevelMtls: Record<string, MtlsMode> = {};
  for (const port of Object.keys(ports).sort()) {
    const mode = ports[port]?.mode;
    portLevelMtls[port] = mode === undefined || mode === 'UNSET' ? mtls : mode;
  }
  return { mtls, portLevelMtls };
}

/** The inbound side of the sidecar of `ctx.proxy` (its service is `proxy.name`). */
export function compileInbound(ctx: CompileContext): SnapshotInbound {
  const service = ctx.proxy.name;
  const labels = workloadLabels(service);
  const namespaces =
    ctx.proxy.namespace === ROOT_NAMESPACE
      ? [ROOT_NAMESPACE]
      : [ctx.proxy.namespace, ROOT_NAMESPACE];
  const authorization = namespaces
    .flatMap((ns) => inNamespace(ctx, 'AuthorizationPolicy', ns))
    .filter((r) => selects((r.resource.spec as AuthorizationPolicySpec).selector, labels))
    .map((r) => ({
      key: meshResourceKey(r.resource),
      spec: r.resource.spec as AuthorizationPolicySpec,
    }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const own = inNamespace(ctx, 'LocalRateLimit', ctx.proxy.namespace);
  const selected = (r: StoredMeshResource) => (r.resource.spec as LocalRateLimitSpec).selector;
  const limit =
    own.find((r) => selected(r) !== undefined && selects(selected(r), labels)) ??
    own.find((r) => selected(r) === undefined);
  return compact({
    service,
    ...peerAuthentication(ctx, labels),
    authorization,
    rateLimit: limit && tokenBucket(limit.resource.spec as LocalRateLimitSpec),
  });
}

/** The egress mode of a sidecar: the Sidecar resource that applies (see applicable), else ALLOW_ANY. */
export function compileEgress(ctx: CompileContext): MeshSnapshot['egress'] {
  const levels = applicable(
    ctx,
    'Sidecar',
    workloadLabels(ctx.proxy.name),
    (s) => (s as SidecarSpec).workloadSelector,
  );
  const modeOf = (r: StoredMeshResource | undefined) =>
    (r?.resource.spec as SidecarSpec | undefined)?.outboundTrafficPolicy?.mode;
  return {
    mode: modeOf(levels.workload) ?? modeOf(levels.namespace) ?? modeOf(levels.mesh) ?? 'ALLOW_ANY',
  };
}
