/**
 * @module A VirtualService's http routes as snapshot routes (in order: the first whose host and
 * match fit wins), and the default route of a host no VirtualService routes.
 */
import type { StoredMeshResource } from '../protocol/mesh/resource.js';
import type { SnapshotMatch, SnapshotRoute } from '../protocol/mesh/snapshot.js';
import type {
  Destination,
  HttpMatchRequest,
  HttpRetry,
  HttpRoute,
  StringMatch,
  VirtualServiceSpec,
} from '../protocol/mesh/specs.js';
import { clusterName, type ClusterRef } from './compile-clusters.js';
import { compact, durationMs } from './compile-context.js';
import { isWildcardHost, resolveHost } from './mesh-hosts.js';

/**
 * The retry policy of a route whose VirtualService sets none: Istio's default (2 attempts on
 * connection failures, refused streams and gRPC unavailable/cancelled), written into the
 * snapshot rather than left to the proxy, so every proxy (and `config_dump`) agrees on it.
 */
export const DEFAULT_RETRIES: NonNullable<SnapshotRoute['retries']> = Object.freeze({
  attempts: 2,
  retryOn: Object.freeze([
    'connect-failure',
    'refused-stream',
    'unavailable',
    'cancelled',
    'retriable-status-codes',
  ]),
});

/** The clusters a snapshot's routes name, by cluster name (the first reference's port kept). */
export type ClusterRefs = Map<string, ClusterRef>;

/** The cluster a destination names, added to `refs`. */
function clusterOf(refs: ClusterRefs, d: Destination, namespace: string): string {
  const ref: ClusterRef = compact({
    host: resolveHost(d.host, namespace),
    subset: d.subset,
    port: d.port?.number,
  });
  const name = clusterName(ref);
  if (!refs.has(name)) refs.set(name, ref);
  return name;
}

/** A VirtualService's hosts as routes carry them: short service names, external hosts, `*`. */
export function routeHosts(spec: VirtualServiceSpec, namespace: string): string[] {
  return spec.hosts.map((h) => (isWildcardHost(h) ? h : resolveHost(h, namespace)));
}

/** A VirtualService's routes and the clusters they name, compiled once per stored version. */
interface CompiledVirtualService {
  readonly routes: readonly SnapshotRoute[];
  readonly refs: ClusterRefs;
}

// Keyed by the stored resource, which the store replaces (never mutates) on change: a memo of a
// pure function, shared by every proxy the VirtualService applies to.
const compiledVirtualServices = new WeakMap<StoredMeshResource, CompiledVirtualService>();

/**
 * Every http route of a VirtualService, named `<namespace>/<name>/<route name or index>`, frozen
 * (each is the same object for every compile until the resource changes); adds the clusters
 * they name to `refs`.
 */
export function compileVirtualService(
  stored: StoredMeshResource,
  refs: ClusterRefs,
): readonly SnapshotRoute[] {
  let compiled = compiledVirtualServices.get(stored);
  if (compiled === undefined) {
    const { namespace, name } = stored.resource.metadata;
    const spec = stored.resource.spec as VirtualServiceSpec;
    const hosts = routeHosts(spec, namespace);
    const own: ClusterRefs = new Map();
    const routes = spec.http.map((route, i) =>
      Object.freeze(
        compileRoute(route, `${namespace}/${name}/${route.name ?? i}`, hosts, namespace, own),
      ),
    );
    compiled = { routes: Object.freeze(routes), refs: own };
    compiledVirtualServices.set(stored, compiled);
  }
  for (const [name, ref] of compiled.refs) if (!refs.has(name)) refs.set(name, ref);
  return compiled.routes;
}

function compileRoute(
  route: HttpRoute,
  name: string,
  hosts: readonly string[],
  namespace: string,
  refs: ClusterRefs,
): SnapshotRoute {
  const single = route.route.length === 1;
  return compact({
    name,
    hosts,
    match: (route.match ?? []).map(compileMatch),
    backends: route.route.map((d) =>
      compact({
        cluster: clusterOf(refs, d.destination, namespace),
        // A route's only destination takes all its traffic, whatever weight it was given.
        weight: single ? 100 : (d.weight ?? 0),
        requestHeaders: d.headers?.request,
        responseHeaders: d.headers?.response,
      }),
    ),
    rewrite: route.rewrite,
    requestHeaders: route.headers?.request,
    responseHeaders: route.headers?.response,
    timeoutMs: durationMs(route.timeout),
    retries: route.retries === undefined ? DEFAULT_RETRIES : compileRetries(route.retries),
    fault:
      route.fault &&
      compact({
        delay: route.fault.delay && {
          ms: durationMs(route.fault.delay.fixedDelay) ?? 0,
          percent: route.fault.delay.percentage?.value ?? 100,
        },
        abort: route.fault.abort && {
          status: route.fault.abort.httpStatus,
          percent: route.fault.abort.percentage?.value ?? 100,
        },
      }),
    mirror: route.mirror && {
      cluster: clusterOf(refs, route.mirror, namespace),
      percent: route.mirrorPercentage?.value ?? 100,
    },
  });
}

function compileRetries(r: HttpRetry): NonNullable<SnapshotRoute['retries']> {
  const retryOn =
    r.retryOn === undefined
      ? DEFAULT_RETRIES.retryOn
      : r.retryOn
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '');
  return compact({ attempts: r.attempts, perTryTimeoutMs: durationMs(r.perTryTimeout), retryOn });
}

const byName = (a: { name: string }, b: { name: string }) =>
  a.name < b.name ? -1 : a.name > b.name ? 1 : 0;

function namedMatches(
  map: Readonly<Record<string, StringMatch>> | undefined,
  lowerCase: boolean,
): ({ name: string } & StringMatch)[] | undefined {
  if (map === undefined) return undefined;
  return Object.entries(map)
    .map(([name, m]) => ({ name: lowerCase ? name.toLowerCase() : name, ...m }))
    .sort(byName);
}

function compileMatch(m: HttpMatchRequest): SnapshotMatch {
  return compact({
    path: m.uri,
    method: m.method,
    authority: m.authority,
    headers: namedMatches(m.headers, true),
    query: namedMatches(m.queryParams, false),
    ignoreUriCase: m.ignoreUriCase,
  });
}

// Default routes by host: a memo of a pure function, emptied when it grows past a catalog's worth.
const defaultRoutes = new Map<string, SnapshotRoute>();
const DEFAULT_ROUTES_KEPT = 50_000;

/** The route to a host no VirtualService routes: every request, all to its cluster (frozen). */
export function defaultRoute(host: string, refs: ClusterRefs): SnapshotRoute {
  const cluster = clusterName({ host });
  if (!refs.has(cluster)) refs.set(cluster, { host });
  let route = defaultRoutes.get(host);
  if (route === undefined) {
    if (defaultRoutes.size >= DEFAULT_ROUTES_KEPT) defaultRoutes.clear();
    route = Object.freeze({
      name: `default:${host}`,
      hosts: Object.freeze([host]),
      match: Object.freeze([]),
      backends: Object.freeze([Object.freeze({ cluster, weight: 100 })]),
      retries: DEFAULT_RETRIES,
    });
    defaultRoutes.set(host, route);
  }
  return route;
}
