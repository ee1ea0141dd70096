/**
 * @module MeshIndex: the mesh resources indexed the way the compiler looks them up (by host, by
 * gateway, by namespace), built once per resource change and shared by every proxy's compile.
 */
import {
  meshResourceKey,
  type MeshKind,
  type MeshResourceKey,
  type StoredMeshResource,
} from '../protocol/mesh/resource.js';
import type {
  DestinationRuleSpec,
  LocalRateLimitSpec,
  ResponseCacheSpec,
  RetryBudgetSpec,
  ServiceEntrySpec,
  VirtualServiceSpec,
} from '../protocol/mesh/specs.js';
import { boundToMesh, gatewayName, type HostKind, type NamespaceKind } from './mesh-deps.js';
import { isWildcardHost, resolveHost } from './mesh-hosts.js';

const NONE: readonly StoredMeshResource[] = Object.freeze([]);

/** The resources, indexed. Every list is in precedence order: creation index, then key. */
export interface MeshIndex {
  readonly byKey: ReadonlyMap<MeshResourceKey, StoredMeshResource>;
  /** Resources of a host-keyed kind configuring `host` (resolved). */
  ofHost(kind: HostKind, host: string): readonly StoredMeshResource[];
  /** Namespace-scoped resources (LocalRateLimit: those without `host`) in `namespace`. */
  inNamespace(kind: NamespaceKind, namespace: string): readonly StoredMeshResource[];
  /** Sidecar-bound VirtualServices. */
  readonly meshVirtualServices: readonly StoredMeshResource[];
  /** Sidecar-bound VirtualServices with `host` (resolved) among their hosts. */
  meshVirtualServicesOf(host: string): readonly StoredMeshResource[];
  /** Sidecar-bound VirtualServices with a wildcard host. */
  readonly meshWildcardVirtualServices: readonly StoredMeshResource[];
  /** VirtualServices whose `gateways` name the gateway `name` (as `name` or `namespace/name`). */
  gatewayVirtualServices(name: string, namespace: string): readonly StoredMeshResource[];
  /** Every ServiceEntry host, resolved, sorted. */
  readonly serviceEntryHosts: readonly string[];
}

/** Precedence of resources: creation index, then key (Istio: the oldest wins). */
export function byPrecedence(a: StoredMeshResource, b: StoredMeshResource): number {
  if (a.createIndex !== b.createIndex) return a.createIndex - b.createIndex;
  const ka = meshResourceKey(a.resource);
  const kb = meshResourceKey(b.resource);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/** Indexes `resources` (any order). */
export function indexMeshResources(resources: readonly StoredMeshResource[]): MeshIndex {
  const sorted = [...resources].sort(byPrecedence);
  const byKey = new Map<MeshResourceKey, StoredMeshResource>();
  const hostMap = new Map<string, StoredMeshResource[]>();
  const nsMap = new Map<string, StoredMeshResource[]>();
  const meshVsByHost = new Map<string, StoredMeshResource[]>();
  const gatewayMap = new Map<string, StoredMeshResource[]>();
  const meshVirtualServices: StoredMeshResource[] = [];
  const meshWildcardVirtualServices: StoredMeshResource[] = [];
  const seHosts = new Set<string>();
  const push = (map: Map<string, StoredMeshResource[]>, key: string, r: StoredMeshResource) => {
    const list = map.get(key);
    if (list === undefined) map.set(key, [r]);
    else if (list[list.length - 1] !== r) list.push(r);
  };
  const hostKey = (kind: HostKind, host: string) => `${kind}:${host}`;
  const nsKey = (kind: MeshKind, namespace: string) => `${kind}@${namespace}`;

  for (const stored of sorted) {
    const r = stored.resource;
    const ns = r.metadata.namespace;
    byKey.set(meshResourceKey(r), stored);
    switch (r.kind) {
      case 'VirtualService': {
        const spec = r.spec as VirtualServiceSpec;
        for (const g of spec.gateways ?? []) {
          const name = gatewayName(g);
          if (name !== undefined) push(gatewayMap, g.includes('/') ? g : `*/${name}`, stored);
        }
        if (!boundToMesh(spec)) break;
        meshVirtualServices.push(stored);
        let wildcard = false;
        for (const h of spec.hosts) {
          if (isWildcardHost(h)) wildcard = true;
          else push(meshVsByHost, resolveHost(h, ns), stored);
        }
        if (wildcard) meshWildcardVirtualServices.push(stored);
        break;
      }
      case 'DestinationRule':
      case 'RetryBudget':
      case 'ResponseCache': {
        const spec = r.spec as DestinationRuleSpec | RetryBudgetSpec | ResponseCacheSpec;
        push(hostMap, hostKey(r.kind, resolveHost(spec.host, ns)), stored);
        break;
      }
      case 'ServiceEntry':
        for (const h of (r.spec as ServiceEntrySpec).hosts) {
          const host = resolveHost(h, ns);
          seHosts.add(host);
          push(hostMap, hostKey('ServiceEntry', host), stored);
        }
        break;
      case 'LocalRateLimit': {
        const spec = r.spec as LocalRateLimitSpec;
        if (spec.host !== undefined)
          push(hostMap, hostKey('LocalRateLimit', resolveHost(spec.host, ns)), stored);
        else push(nsMap, nsKey(r.kind, ns), stored);
        break;
      }
      case 'PeerAuthentication':
      case 'AuthorizationPolicy':
      case 'Sidecar':
        push(nsMap, nsKey(r.kind, ns), stored);
        break;
    }
  }

  return {
    byKey,
    ofHost: (kind, host) => hostMap.get(hostKey(kind, host)) ?? NONE,
    inNamespace: (kind, namespace) => nsMap.get(nsKey(kind, namespace)) ?? NONE,
    meshVirtualServices,
    meshVirtualServicesOf: (host) => meshVsByHost.get(host) ?? NONE,
    meshWildcardVirtualServices,
    gatewayVirtualServices: (name, namespace) => {
      const any = gatewayMap.get(`*/${name}`) ?? NONE;
      const qualified = gatewayMap.get(`${namespace}/${name}`) ?? NONE;
      if (qualified.length === 0) return any;
      if (any.length === 0) return qualified;
      return [...new Set([...any, ...qualified])].sort(byPrecedence);
    },
    serviceEntryHosts: [...seHosts].sort(),
  };
}
