/**
 * @module The clusters of a snapshot: one per (host, subset) its routes and mirrors name, with
 * endpoints from the catalog (or a ServiceEntry) filtered to the subset's labels, and the
 * policies of the host's DestinationRule and meshwork.dev kinds.
 */
import type { InstanceDto } from '../protocol/api-types.js';
import type { StoredMeshResource } from '../protocol/mesh/resource.js';
import type { SnapshotCluster, SnapshotEndpoint } from '../protocol/mesh/snapshot.js';
import type {
  DestinationRuleSpec,
  LocalRateLimitSpec,
  ResponseCacheSpec,
  RetryBudgetSpec,
  ServiceEntrySpec,
  Subset,
} from '../protocol/mesh/specs.js';
import {
  compact,
  createDepsRecorder,
  durationMs,
  preferred,
  ROOT_NAMESPACE,
  type CompileContext,
} from './compile-context.js';
import { compileTrafficPolicy, mergeTrafficPolicy } from './compile-policy.js';
import { depKeys, type HostKind } from './mesh-deps.js';

/** What a route or mirror asks for: a resolved host, maybe a subset and a port. */
export interface ClusterRef {
  readonly host: string;
  readonly subset?: string;
  readonly port?: number;
}

/** `<host>` or `<host>|<subset>`. */
export function clusterName(ref: ClusterRef): string {
  return ref.subset === undefined ? ref.host : `${ref.host}|${ref.subset}`;
}

/** A service's instances as endpoints (every status: proxies decide by status), ordered by id. */
export function instanceEndpoints(instances: readonly InstanceDto[]): SnapshotEndpoint[] {
  const endpoints = instances.map((i): SnapshotEndpoint => ({
    id: i.id,
    address: i.address,
    port: i.port,
    status: i.status,
    tags: i.tags,
    meta: i.meta,
    weights: { passing: i.weights.passing, warning: i.weights.warning },
  }));
  return endpoints.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** The namespace a service's instances say they are in (the first by id), else `default`. */
function serviceNamespace(endpoints: readonly SnapshotEndpoint[]): string {
  return endpoints[0]?.meta['namespace'] ?? 'default';
}

/**
 * True when an endpoint carries every label of `wanted`. A catalog instance's labels are its
 * meta plus `app: <service>` (`app`, the catalog's name, wins over a meta `app`); a
 * ServiceEntry endpoint's are its own (`app` undefined).
 */
function endpointHasLabels(
  endpoint: SnapshotEndpoint,
  app: string | undefined,
  wanted: Readonly<Record<string, string>>,
): boolean {
  for (const key of Object.keys(wanted)) {
    const value = key === 'app' && app !== undefined ? app : endpoint.meta[key];
    if (value !== wanted[key]) return false;
  }
  return true;
}

/** The endpoints a ServiceEntry gives `host` (status passing: the mesh does not check them). */
function serviceEntryEndpoints(
  spec: ServiceEntrySpec,
  host: string,
  port: number | undefined,
): SnapshotEndpoint[] {
  const servicePort = spec.ports.find((p) => p.number === port) ?? spec.ports[0];
  const number = servicePort?.targetPort ?? servicePort?.number ?? port ?? 80;
  const weights = (w: number | undefined) => ({ passing: w ?? 1, warning: w ?? 1 });
  if (spec.endpoints === undefined || spec.endpoints.length === 0) {
    if (spec.resolution === 'STATIC') return [];
    // DNS and NONE without endpoints: the host itself, resolved by the proxy.
    return [
      {
        id: `${host}:${number}`,
        address: host,
        port: number,
        status: 'passing',
        tags: [],
        meta: {},
        weights: weights(undefined),
      },
    ];
  }
  const endpoints = spec.endpoints.map((e): SnapshotEndpoint => {
    const p = (servicePort && e.ports?.[servicePort.name]) ?? number;
    return {
      id: `${e.address}:${p}`,
      address: e.address,
      port: p,
      status: 'passing',
      tags: [],
      meta: e.labels ?? {},
      weights: weights(e.weight),
    };
  });
  return endpoints.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** Reads the resources of a host-keyed kind for `host`, recording the lookup. */
export function lookupHost(
  ctx: CompileContext,
  kind: HostKind,
  host: string,
): readonly StoredMeshResource[] {
  ctx.deps.resources.add(depKeys.ofHost(kind, host));
  return ctx.mesh.ofHost(kind, host);
}

/** The cluster `ref` names (frozen; from `ctx.clusters` when it holds it). */
export function compileCluster(ctx: CompileContext, ref: ClusterRef): SnapshotCluster {
  const key = `${ctx.proxy.namespace}|${clusterName(ref)}|${ref.port ?? ''}`;
  let entry = ctx.clusters?.get(ref.host, key);
  if (entry === undefined) {
    const deps = createDepsRecorder();
    const cluster = Object.freeze(buildCluster({ ...ctx, deps }, ref));
    entry = { cluster, services: [...deps.services], resources: [...deps.resources] };
    ctx.clusters?.set(ref.host, key, entry);
  }
  for (const s of entry.services) ctx.deps.services.add(s);
  for (const r of entry.resources) ctx.deps.resources.add(r);
  return entry.cluster;
}

function buildCluster(ctx: CompileContext, ref: ClusterRef): SnapshotCluster {
  const { host, subset } = ref;
  const entry = lookupHost(ctx, 'ServiceEntry', host)[0];
  let endpoints: readonly SnapshotEndpoint[];
  let external: SnapshotCluster['external'];
  let ownNamespace: string;
  if (entry !== undefined) {
    const spec = entry.resource.spec as ServiceEntrySpec;
    endpoints = serviceEntryEndpoints(spec, host, ref.port);
    const protocol = (spec.ports.find((p) => p.number === ref.port) ?? spec.ports[0])?.protocol;
    external = compact({ resolution: spec.resolution, protocol });
    ownNamespace = entry.resource.metadata.namespace;
  } else {
    ctx.deps.services.add(host);
    endpoints = ctx.catalog.endpoints(host);
    ownNamespace = serviceNamespace(endpoints);
  }
  const namespaces = [ctx.proxy.namespace, ownNamespace, ROOT_NAMESPACE];
  const rules = lookupHost(ctx, 'DestinationRule', host);
  let rule: DestinationRuleSpec | undefined;
  let subsetSpec: Subset | undefined;
  if (subset === undefined) {
    rule = preferred(rules, namespaces)?.resource.spec as DestinationRuleSpec | undefined;
  } else {
    // The rule that defines the subset (the reference check ensures one does when it was
    // stored); among several, Istio's order.
    const defining = rules.filter((r) =>
      (r.resource.spec as DestinationRuleSpec).subsets?.some((s) => s.name === subset),
    );
    rule = preferred(defining, namespaces)?.resource.spec as DestinationRuleSpec | undefined;
    subsetSpec = rule?.subsets?.find((s) => s.name === subset);
    const labels = subsetSpec?.labels ?? {};
    endpoints =
      subsetSpec === undefined
        ? []
        : endpoints.filter((e) =>
            endpointHasLabels(e, entry === undefined ? host : undefined, labels),
          );
  }
  const policy = compileTrafficPolicy(
    mergeTrafficPolicy(rule?.trafficPolicy, subsetSpec?.trafficPolicy),
  );
  const budget = preferred(lookupHost(ctx, 'RetryBudget', host), namespaces)?.resource.spec as
    RetryBudgetSpec | undefined;
  const cache = preferred(lookupHost(ctx, 'ResponseCache', host), namespaces)?.resource.spec as
    ResponseCacheSpec | undefined;
  const limit = preferred(lookupHost(ctx, 'LocalRateLimit', host), namespaces)?.resource.spec as
    LocalRateLimitSpec | undefined;
  return compact({
    name: clusterName(ref),
    service: host,
    subset,
    port: ref.port,
    endpoints,
    external,
    ...policy,
    retryBudget:
      budget &&
      compact({
        budgetPercent: budget.budgetPercent,
        minRetriesPerSecond: budget.minRetriesPerSecond,
        // Linkerd's default window.
        ttlMs: durationMs(budget.ttl) ?? 10_000,
      }),
    rateLimit: limit && tokenBucket(limit),
    cache:
      cache &&
      compact({
        maxEntries: cache.maxEntries,
        maxBodyBytes: cache.maxBodyBytes,
        defaultTtlMs: durationMs(cache.defaultTtl),
      }),
  });
}

/** A LocalRateLimit's bucket in ms. */
export function tokenBucket(spec: LocalRateLimitSpec): {
  maxTokens: number;
  tokensPerFill: number;
  fillIntervalMs: number;
} {
  return {
    maxTokens: spec.tokenBucket.maxTokens,
    tokensPerFill: spec.tokenBucket.tokensPerFill,
    fillIntervalMs: durationMs(spec.tokenBucket.fillInterval) ?? 1000,
  };
}
