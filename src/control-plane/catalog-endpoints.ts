/**
 * @module The catalog as compiles read it, with each service's endpoints converted once and kept
 * until that service changes, so the proxies that call one service share the work.
 */
import type { InstanceDto } from '../protocol/api-types.js';
import type { SnapshotEndpoint } from '../protocol/mesh/snapshot.js';
import { instanceEndpoints } from './compile-clusters.js';
import type { CompileCatalog } from './compile-context.js';

/** Where the instances come from: the live catalog, or a fixed list. */
export interface InstanceSource {
  serviceInstances(service: string): readonly InstanceDto[];
  serviceNames(): readonly string[];
}

/** A CompileCatalog over `source`; call `invalidate` for each service that changed. */
export interface CachedCompileCatalog extends CompileCatalog {
  invalidate(service: string): void;
}

export function cachedCompileCatalog(source: InstanceSource): CachedCompileCatalog {
  const endpoints = new Map<string, readonly SnapshotEndpoint[]>();
  let services: readonly string[] | undefined;
  let listed: ReadonlySet<string> = new Set();
  return {
    services: () => {
      if (services === undefined) {
        services = source.serviceNames();
        listed = new Set(services);
      }
      return services;
    },
    endpoints: (service) => {
      let list = endpoints.get(service);
      if (list === undefined) {
        list = Object.freeze(instanceEndpoints(source.serviceInstances(service)));
        endpoints.set(service, list);
      }
      return list;
    },
    invalidate: (service) => {
      endpoints.delete(service);
      // The names are read again only when the service appeared or went (listing every
      // service costs a pass over the catalog; most changes are a status or an instance).
      const present = source.serviceInstances(service).length > 0;
      if (services !== undefined && present !== listed.has(service)) services = undefined;
    },
  };
}

/** A CompileCatalog over a fixed list of instances (tests, benchmarks, offline compiles). */
export function staticCompileCatalog(instances: readonly InstanceDto[]): CompileCatalog {
  const byService = new Map<string, InstanceDto[]>();
  for (const i of instances) {
    const list = byService.get(i.service);
    if (list === undefined) byService.set(i.service, [i]);
    else list.push(i);
  }
  const names = [...byService.keys()].sort();
  return cachedCompileCatalog({
    serviceInstances: (service) => byService.get(service) ?? [],
    serviceNames: () => names,
  });
}
