/**
 * @module createControlPlane: per-proxy snapshots kept current from the catalog. One compiled
 * state per distinct proxy identity, shared by its watchers; a catalog change recompiles only
 * the identities whose compile read what it touched, once per burst of changes.
 */
import { systemClock, type Clock } from '../core/clock.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type { Registry as PromRegistry } from 'prom-client';
import type { MeshResourceKey } from '../protocol/mesh/resource.js';
import type { MeshSnapshot, ProxyIdentity, SnapshotTrust } from '../protocol/mesh/snapshot.js';
import type { CatalogReader } from '../registry/catalog-facade.js';
import type { CatalogChange, MeshCatalogReader } from '../registry/mesh-catalog.js';
import { cachedCompileCatalog, type InstanceSource } from './catalog-endpoints.js';
import { SharedClusterCache } from './cluster-cache.js';
import { compileSnapshot } from './compile-snapshot.js';
import type { ControlPlane } from './contract.js';
import { ControlPlaneMetrics } from './control-plane-metrics.js';
import { Dependents, sameDeps } from './dependents.js';
import { resourceTouches, type SnapshotDeps } from './mesh-deps.js';
import { indexMeshResources, type MeshIndex } from './mesh-index.js';

/** What the control plane reads of the catalog (the Registry gives all of it). */
export type ControlPlaneCatalog = Pick<
  CatalogReader,
  'index' | 'serviceInstances' | 'listServices'
> &
  Pick<MeshCatalogReader, 'meshResources' | 'onCatalogChange'>;

/**
 * Where the mesh CA's trust comes from (the agent's CA). `current` is read on every compile
 * (cheap, synchronous); `onChange` listeners hear every change of roots and MUST be called
 * after `current` answers the new trust.
 */
export interface TrustSource {
  current(): SnapshotTrust;
  onChange(listener: () => void): () => void;
}

export interface ControlPlaneOptions {
  /** The catalog (`CatalogReader & MeshCatalogReader`), read and watched, never written. */
  readonly catalog: ControlPlaneCatalog;
  readonly logger?: Logger;
  /** Times compiles (monotonicMs). */
  readonly clock?: Clock;
  /** Where the meshwork_control_plane_* metrics go; absent: none. */
  readonly metrics?: PromRegistry;
  /**
   * Runs the recompile of a burst of changes: called once after the first change of a burst,
   * every change until `run` runs joins it. Default: setImmediate (the changes of one turn of the
   * event loop are one burst). Tests pass their own to run it when they choose.
   */
  readonly schedule?: (run: () => void) => void;
  /** The CA's trust every snapshot carries (`ca`); absent: snapshots carry none. */
  readonly trust?: TrustSource;
}

interface Watcher {
  readonly proxy: ProxyIdentity;
  readonly onSnapshot: (snapshot: MeshSnapshot) => void;
}

/** The compiled state of one proxy identity. */
interface CompiledState {
  readonly key: string;
  /** The identity compiled for (the first watcher's). */
  readonly identity: ProxyIdentity;
  readonly watchers: Set<Watcher>;
  snapshot: MeshSnapshot;
  deps: SnapshotDeps;
}

/** The key of an identity: what a compile depends on (not the proxy's id). */
function identityKey(p: ProxyIdentity): string {
  const upstreams = p.upstreams === undefined ? null : [...new Set(p.upstreams)].sort();
  return JSON.stringify([p.kind, p.name, p.namespace, upstreams]);
}

/**
 * The control plane's compiler side. It subscribes to the catalog at once; `watch` compiles an
 * identity on its first watcher and drops it with its last.
 * @example
 * const cp = createControlPlane({ catalog: registry, logger });
 * const stop = cp.watch({ id: 'gw-1', kind: 'gateway', name: 'edge', namespace: 'default' }, push);
 */
export function createControlPlane(options: ControlPlaneOptions): ControlPlane {
  const { catalog } = options;
  const log = (options.logger ?? silentLogger).child({ component: 'control-plane' });
  const clock = options.clock ?? systemClock;
  const schedule = options.schedule ?? ((run: () => void) => void setImmediate(run));
  const states = new Map<string, CompiledState>();
  const metrics =
    options.metrics === undefined
      ? undefined
      : new ControlPlaneMetrics(options.metrics, () => states.size);
  const source: InstanceSource = {
    serviceInstances: (service) => catalog.serviceInstances(service),
    serviceNames: () => catalog.listServices().services.map((s) => s.name),
  };
  const view = cachedCompileCatalog(source);
  let mesh: MeshIndex = indexMeshResources(catalog.meshResources());
  const clusters = new SharedClusterCache();
  const dependents = new Dependents<CompiledState>();

  const pendingServices = new Set<string>();
  const pendingResources = new Set<MeshResourceKey>();
  /** The CA's roots changed: every identity recompiles (each snapshot carries the bundle). */
  let pendingTrust = false;
  let scheduled = false;
  let closed = false;

  const compile = (identity: ProxyIdentity) => {
    const start = clock.monotonicMs();
    const result = compileSnapshot({
      proxy: identity,
      index: catalog.index,
      mesh,
      catalog: view,
      clusters,
      ...(options.trust === undefined ? {} : { ca: options.trust.current() }),
    });
    return { ...result, seconds: (clock.monotonicMs() - start) / 1000 };
  };

  const deliver = (s: CompiledState, w: Watcher) => {
    try {
      w.onSnapshot({ ...s.snapshot, proxy: w.proxy });
    } catch (err) {
      log.error({ err, proxy: w.proxy.id }, 'snapshot watcher threw');
    }
  };

  const recompile = (s: CompiledState) => {
    const { snapshot, deps, seconds } = compile(s.identity);
    const changed = snapshot.version !== s.snapshot.version;
    metrics?.compiled(s.identity.kind, seconds, changed);
    if (!sameDeps(s.deps, deps)) {
      dependents.remove(s, s.deps);
      s.deps = deps;
      dependents.add(s, deps);
    }
    if (!changed) return;
    s.snapshot = snapshot;
    log.debug({ identity: s.key, version: snapshot.version }, 'snapshot changed');
    for (const w of [...s.watchers]) if (s.watchers.has(w)) deliver(s, w);
  };

  const flush = () => {
    scheduled = false;
    if (closed) return;
    const dirty = new Set<CompiledState>();
    if (pendingResources.size > 0) {
      const next = indexMeshResources(catalog.meshResources());
      for (const key of pendingResources) {
        // What the resource touched before the change and what it touches after it.
        for (const index of [mesh, next]) {
          const stored = index.byKey.get(key);
          if (stored === undefined) continue;
          clusters.resourceChanged(stored.resource.kind);
          for (const touched of resourceTouches(stored.resource)) {
            dependents.ofResource(touched, dirty);
          }
        }
      }
      mesh = next;
      pendingResources.clear();
    }
    for (const service of pendingServices) dependents.ofService(service, dirty);
    pendingServices.clear();
    if (pendingTrust) for (const s of states.values()) dirty.add(s);
    pendingTrust = false;
    for (const s of dirty) {
      if (states.get(s.key) !== s) continue; // its last watcher left during this flush
      try {
        recompile(s);
      } catch (err) {
        log.error({ err, identity: s.key }, 'snapshot compile failed; proxies keep the last one');
      }
    }
  };

  const onChange = (change: CatalogChange) => {
    // Endpoints are read fresh from now on (a new identity compiled before the flush sees them);
    // the mesh index is rebuilt at the flush, where the old one still says what a change undid.
    for (const service of change.services) {
      view.invalidate(service);
      clusters.serviceChanged(service);
      pendingServices.add(service);
    }
    for (const key of change.meshResources) pendingResources.add(key);
    scheduleFlush();
  };
  const scheduleFlush = () => {
    if (scheduled || (pendingServices.size === 0 && pendingResources.size === 0 && !pendingTrust))
      return;
    scheduled = true;
    schedule(flush);
  };
  const unsubscribeCatalog = catalog.onCatalogChange(onChange);
  const unsubscribeTrust = options.trust?.onChange(() => {
    pendingTrust = true;
    scheduleFlush();
  });
  const unsubscribe = () => {
    unsubscribeCatalog();
    unsubscribeTrust?.();
  };

  return {
    watch(proxy, onSnapshot) {
      if (closed) {
        // Closed: the catalog's current snapshot once (the contract), and nothing after. The
        // index and caches stopped following the catalog, so this compile reads it afresh.
        const fresh = compileSnapshot({
          proxy,
          index: catalog.index,
          mesh: indexMeshResources(catalog.meshResources()),
          catalog: cachedCompileCatalog(source),
          ...(options.trust === undefined ? {} : { ca: options.trust.current() }),
        });
        onSnapshot(fresh.snapshot);
        return () => undefined;
      }
      const key = identityKey(proxy);
      let s = states.get(key);
      if (s === undefined) {
        const { snapshot, deps, seconds } = compile(proxy);
        metrics?.compiled(proxy.kind, seconds, true);
        s = { key, identity: proxy, watchers: new Set(), snapshot, deps };
        states.set(key, s);
        dependents.add(s, deps);
      }
      const state = s;
      const watcher: Watcher = { proxy, onSnapshot };
      state.watchers.add(watcher);
      deliver(state, watcher);
      return () => {
        if (!state.watchers.delete(watcher) || state.watchers.size > 0) return;
        if (states.get(key) === state) states.delete(key);
        dependents.remove(state, state.deps);
        if (states.size === 0) clusters.clear();
      };
    },
    close() {
      if (closed) return;
      closed = true;
      unsubscribe();
      for (const s of states.values()) s.watchers.clear();
      states.clear();
      dependents.clear();
      clusters.clear();
    },
  };
}
