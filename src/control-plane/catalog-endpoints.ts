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
  return {
    services: () => (services ??= source.serviceNames()),
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
      // A service may have appeared or gone.
      services = undefined;
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
