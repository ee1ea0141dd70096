/**
 * @module FakeMeshCatalog: the catalog as the control plane reads it (instances by service, mesh
 * resources, the change feed), in memory, for unit tests and benchmarks of code that compiles
 * snapshots. Builders for instances and resources beside it.
 */
import type { InstanceStatus } from '../core/types.js';
import type { InstanceDto, ServiceSummaryDto } from '../protocol/api-types.js';
import {
  meshApiVersion,
  meshResourceKey,
  type MeshKind,
  type MeshResource,
  type MeshResourceKey,
  type MeshSpecs,
  type StoredMeshResource,
} from '../protocol/mesh/resource.js';
import type { CatalogReader } from '../registry/catalog-facade.js';
import type { CatalogChange, InstanceChange, MeshCatalogReader } from '../registry/mesh-catalog.js';

/** An instance as readers see it; `meta.namespace` puts it in a namespace. */
export function fakeInstance(
  id: string,
  service: string,
  over: Partial<Omit<InstanceDto, 'id' | 'service'>> = {},
): InstanceDto {
  return {
    id,
    service,
    address: '10.0.0.1',
    port: 8080,
    ports: {},
    tags: [],
    meta: {},
    weights: { passing: 1, warning: 1 },
    priority: 0,
    capacity: 0,
    protocols: ['http'],
    source: 'self',
    managedBy: '',
    maintenance: { enabled: false, reason: '' },
    createdAt: 0,
    updatedAt: 0,
    status: 'passing',
    statusReason: '',
    checks: [],
    createIndex: 1,
    modifyIndex: 1,
    ...over,
  } as InstanceDto;
}

/** A resource of `kind` in `namespace` (default `default`). */
export function fakeResource<K extends MeshKind>(
  kind: K,
  name: string,
  spec: MeshSpecs[K],
  namespace = 'default',
): MeshResource<K> {
  return { apiVersion: meshApiVersion(kind), kind, metadata: { name, namespace }, spec };
}

/** Stored forms of `resources`, created in the order given (createIndex 1, 2, ...). */
export function fakeStored(resources: readonly MeshResource[]): StoredMeshResource[] {
  return resources.map((r, i) => ({ resource: r, createIndex: i + 1, modifyIndex: i + 1 }));
}

/** The reads the control plane makes (`createControlPlane`'s `catalog`). */
export type FakeMeshCatalogReads = Pick<
  CatalogReader,
  'index' | 'serviceInstances' | 'listServices'
> &
  Pick<MeshCatalogReader, 'meshResources' | 'onCatalogChange'>;

/**
 * Instances and mesh resources in memory. Each write is published to `onCatalogChange`
 * listeners as the Registry publishes: synchronously, after the view changed, one change per
 * write, with the index moved.
 */
export class FakeMeshCatalog implements FakeMeshCatalogReads {
  index = 1;
  readonly #instances = new Map<string, InstanceDto>();
  readonly #byService = new Map<string, Map<string, InstanceDto>>();
  readonly #resources = new Map<MeshResourceKey, StoredMeshResource>();
  readonly #listeners = new Set<(change: CatalogChange) => void>();
  /** Changes published so far. */
  readonly changes: CatalogChange[] = [];

  constructor(instances: readonly InstanceDto[] = [], resources: readonly MeshResource[] = []) {
    for (const i of instances) this.#set(i);
    for (const r of resources) this.#store(r);
  }

  serviceInstances(service: string): InstanceDto[] {
    return [...(this.#byService.get(service)?.values() ?? [])];
  }

  listServices(): { index: number; services: ServiceSummaryDto[] } {
    const names = [...this.#byService.keys()].sort();
    const services = names.map((name) => {
      const list = this.serviceInstances(name);
      const byStatus = { passing: 0, warning: 0, critical: 0, maintenance: 0, starting: 0 };
      for (const i of list) byStatus[i.status] += 1;
      return { name, instances: list.length, byStatus, tags: [], modifyIndex: this.index };
    });
    return { index: this.index, services };
  }

  meshResources(kind?: MeshKind): readonly StoredMeshResource[] {
    return [...this.#resources.entries()]
      .filter(([, s]) => kind === undefined || s.resource.kind === kind)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, s]) => s);
  }

  onCatalogChange(listener: (change: CatalogChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Adds or replaces an instance. */
  putInstance(i: InstanceDto): void {
    const before = this.#instances.get(i.id);
    if (before !== undefined) this.#delete(before);
    this.#set(i);
    this.#publish([...new Set([i.service, ...(before ? [before.service] : [])])], [], {
      kind: 'upsert',
      service: i.service,
      id: i.id,
    });
  }

  setStatus(id: string, status: InstanceStatus): void {
    const i = this.#instances.get(id);
    if (i === undefined) throw new Error(`FakeMeshCatalog: no instance ${id}`);
    this.putInstance({ ...i, status });
  }

  removeInstance(id: string): void {
    const i = this.#instances.get(id);
    if (i === undefined) return;
    this.#delete(i);
    this.#publish([i.service], [], {
      kind: 'delete',
      service: i.service,
      id: i.id,
      lastKnown: () => i,
    });
  }

  #set(i: InstanceDto): void {
    this.#instances.set(i.id, i);
    let list = this.#byService.get(i.service);
    if (list === undefined) this.#byService.set(i.service, (list = new Map()));
    list.set(i.id, i);
  }

  #delete(i: InstanceDto): void {
    this.#instances.delete(i.id);
    const list = this.#byService.get(i.service);
    list?.delete(i.id);
    if (list?.size === 0) this.#byService.delete(i.service);
  }

  putResource(r: MeshResource): void {
    this.#store(r);
    this.#publish([], [meshResourceKey(r)]);
  }

  deleteResource(key: MeshResourceKey): void {
    if (this.#resources.delete(key)) this.#publish([], [key]);
  }

  #store(r: MeshResource): void {
    const key = meshResourceKey(r);
    this.index += 1;
    const before = this.#resources.get(key);
    this.#resources.set(key, {
      resource: r,
      createIndex: before?.createIndex ?? this.index,
      modifyIndex: this.index,
    });
  }

  #publish(
    services: string[],
    meshResources: MeshResourceKey[],
    instance?: Omit<InstanceChange, 'index'>,
  ): void {
    if (services.length > 0) this.index += 1;
    const instances = instance === undefined ? [] : [{ ...instance, index: this.index }];
    const change: CatalogChange = { index: this.index, services, instances, meshResources };
    this.changes.push(change);
    for (const l of this.#listeners) l(change);
  }
}
