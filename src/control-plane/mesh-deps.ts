/**
 * @module What a compiled snapshot read, and what a change touches, as comparable keys: the
 * control plane recompiles a proxy only when a change's keys meet the proxy's.
 */
import type { MeshResource } from '../protocol/mesh/resource.js';
import type {
  DestinationRuleSpec,
  LocalRateLimitSpec,
  ResponseCacheSpec,
  RetryBudgetSpec,
  ServiceEntrySpec,
  VirtualServiceSpec,
} from '../protocol/mesh/specs.js';
import { isWildcardHost, resolveHost } from './mesh-hosts.js';

/** Kinds looked up by the host they configure (resolved, see resolveHost). */
export type HostKind =
  'DestinationRule' | 'ServiceEntry' | 'RetryBudget' | 'ResponseCache' | 'LocalRateLimit';

/** Kinds looked up by the namespace of the workload they select. */
export type NamespaceKind =
  'PeerAuthentication' | 'AuthorizationPolicy' | 'Sidecar' | 'LocalRateLimit';

/** The dependency keys (strings, so sets of them intersect cheaply). */
export const depKeys = {
  /** Any VirtualService bound to sidecars (a sidecar without declared upstreams reads them all). */
  meshVirtualServices: 'VirtualService:mesh',
  /** A sidecar-bound VirtualService with a wildcard host (`*`, `*.example.com`). */
  meshWildcardVirtualServices: 'VirtualService:mesh:*',
  meshVirtualServicesOf: (host: string): string => `VirtualService:mesh:${host}`,
  gatewayVirtualServices: (gateway: string): string => `VirtualService:gateway:${gateway}`,
  /** Every ServiceEntry host (a sidecar without declared upstreams routes to each). */
  serviceEntries: 'ServiceEntry:*',
  ofHost: (kind: HostKind, host: string): string => `${kind}:${host}`,
  inNamespace: (kind: NamespaceKind, namespace: string): string => `${kind}@${namespace}`,
} as const;

/** What one compile read: the caller tells from these which changes touch the proxy. */
export interface SnapshotDeps {
  /** Catalog services whose instances it read. */
  readonly services: ReadonlySet<string>;
  /** It read every catalog service (a sidecar without declared upstreams): any service change counts. */
  readonly allServices: boolean;
  /** Resource lookups it made (depKeys). */
  readonly resources: ReadonlySet<string>;
}

/** The gateway name of a `gateways:` entry (`name` or `namespace/name`); undefined for `mesh`. */
export function gatewayName(entry: string): string | undefined {
  if (entry === 'mesh') return undefined;
  const slash = entry.indexOf('/');
  return slash < 0 ? entry : entry.slice(slash + 1);
}

/** True when a VirtualService applies to sidecars: no `gateways`, or `mesh` among them (Istio). */
export function boundToMesh(spec: VirtualServiceSpec): boolean {
  return (
    spec.gateways === undefined || spec.gateways.length === 0 || spec.gateways.includes('mesh')
  );
}

/**
 * The keys a resource touches when it appears, changes or goes: call it on the version before
 * and the version after a change, and recompile every proxy whose deps hold one of them.
 */
export function resourceTouches(resource: MeshResource): string[] {
  const ns = resource.metadata.namespace;
  switch (resource.kind) {
    case 'VirtualService': {
      const spec = resource.spec as VirtualServiceSpec;
      const keys: string[] = [];
      for (const g of spec.gateways ?? []) {
        const name = gatewayName(g);
        if (name !== undefined) keys.push(depKeys.gatewayVirtualServices(name));
      }
      if (boundToMesh(spec)) {
        keys.push(depKeys.meshVirtualServices);
        for (const h of spec.hosts) {
          keys.push(
            isWildcardHost(h)
              ? depKeys.meshWildcardVirtualServices
              : depKeys.meshVirtualServicesOf(resolveHost(h, ns)),
          );
        }
      }
      return keys;
    }
    case 'DestinationRule':
      return [depKeys.ofHost('DestinationRule', hostOf(resource.spec as DestinationRuleSpec, ns))];
    case 'ServiceEntry':
      return [
        depKeys.serviceEntries,
        ...(resource.spec as ServiceEntrySpec).hosts.map((h) =>
          depKeys.ofHost('ServiceEntry', resolveHost(h, ns)),
        ),
      ];
    case 'RetryBudget':
      return [depKeys.ofHost('RetryBudget', hostOf(resource.spec as RetryBudgetSpec, ns))];
    case 'ResponseCache':
      return [depKeys.ofHost('ResponseCache', hostOf(resource.spec as ResponseCacheSpec, ns))];
    case 'LocalRateLimit': {
      const spec = resource.spec as LocalRateLimitSpec;
      return spec.host !== undefined
        ? [depKeys.ofHost('LocalRateLimit', resolveHost(spec.host, ns))]
        : [depKeys.inNamespace('LocalRateLimit', ns)];
    }
    case 'PeerAuthentication':
    case 'AuthorizationPolicy':
    case 'Sidecar':
      return [depKeys.inNamespace(resource.kind, ns)];
  }
}

function hostOf(spec: { readonly host: string }, namespace: string): string {
  return resolveHost(spec.host, namespace);
}
