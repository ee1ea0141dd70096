/**
 * @module The one route builder both gateway configs compile to: the file config
 * (gateway/gateway-routes.ts) and a mesh snapshot (snapshot-routes.ts, for the gateway and the
 * sidecar) each turn their routes into
 * RouteSpecs, and this makes the route table's rules from them: host and match predicates,
 * per-match rewrites, header edits per route and per backend, the weighted split, and the retry
 * policy (so one retry budget per route).
 */
import type { RetryPolicy } from '../client/resilience/index.js';
import type { Cluster } from './cluster.js';
import type { ProxyRoute } from './contract.js';
import type { Filter } from './filter.js';
import {
  createHeaderEditFilter,
  type HeaderEdits,
} from './filters/header-edit/header-edit-filter.js';
import { createPathRewriteFilter } from './filters/path-rewrite/path-rewrite-filter.js';
import type { RouteMirror } from './filters/mirror/route-mirror.js';
import { createPrefixRewriteFilter } from './filters/prefix-rewrite/prefix-rewrite-filter.js';
import {
  compileHosts,
  compileMatch,
  type MatchInput,
  type MatchSpec,
  type RouteRule,
} from './route-table.js';

export interface BackendSpec {
  readonly cluster: Cluster;
  /** Relative share of the route's requests (0: none). */
  readonly weight: number;
  readonly requestHeaders?: HeaderEdits | undefined;
  readonly responseHeaders?: HeaderEdits | undefined;
}

/** One route, as both configs compile to it. */
export interface RouteSpec {
  /** For metrics and logs. */
  readonly name: string;
  /** The hosts it serves (`*`, `*.example.com`, names); absent: any host. */
  readonly hosts?: readonly string[] | undefined;
  /** Any of these (OR); empty: every request. */
  readonly matches: readonly MatchSpec[];
  readonly backends: readonly BackendSpec[];
  /**
   * `uri` replaces the matched prefix (prefix matches) or the whole path (other matches);
   * `authority` replaces the Host sent upstream.
   */
  readonly rewrite?: { readonly uri?: string | undefined; readonly authority?: string | undefined };
  readonly requestHeaders?: HeaderEdits | undefined;
  readonly responseHeaders?: HeaderEdits | undefined;
  readonly retry: RetryPolicy;
  /** Filters run before the rest (fault injection), built once for the route. */
  readonly filters?: readonly Filter[] | undefined;
  /** Copies of some requests to another cluster. */
  readonly mirror?: RouteMirror | undefined;
}

/**
 * Smooth weighted round-robin over a route's backends (nginx's algorithm): deterministic, and
 * exact over any window of sum(weights) requests, so a 90/10 split is 90/10, not about 90/10.
 */
export class WeightedClusters {
  readonly #clusters: readonly Cluster[];
  readonly #weights: readonly number[];
  readonly #current: number[];
  readonly #total: number;

  constructor(entries: readonly { cluster: Cluster; weight: number }[]) {
    const live = entries.filter((e) => e.weight > 0);
    this.#clusters = live.map((e) => e.cluster);
    this.#weights = live.map((e) => e.weight);
    this.#current = live.map(() => 0);
    this.#total = this.#weights.reduce((a, b) => a + b, 0);
  }

  pick(): Cluster {
    if (this.#clusters.length === 1) return this.#clusters[0] as Cluster;
    let best = 0;
    const current = this.#current;
    for (let i = 0; i < current.length; i++) {
      current[i] = (current[i] as number) + (this.#weights[i] as number);
      if ((current[i] as number) > (current[best] as number)) best = i;
    }
    current[best] = (current[best] as number) - this.#total;
    return this.#clusters[best] as Cluster;
  }
}

/** A route as the engine runs it: its filters, retry policy and weighted backends. */
export class RuleRoute implements ProxyRoute {
  readonly name: string;
  readonly filters: readonly Filter[];
  readonly retry: RetryPolicy;
  readonly #backends: WeightedClusters;
  readonly #perBackend: ReadonlyMap<Cluster, readonly Filter[]> | undefined;
  readonly mirror: RouteMirror | undefined;

  constructor(
    name: string,
    filters: readonly Filter[],
    retry: RetryPolicy,
    backends: WeightedClusters,
    perBackend?: ReadonlyMap<Cluster, readonly Filter[]>,
    mirror?: RouteMirror,
  ) {
    this.name = name;
    this.mirror = mirror;
    this.filters = filters;
    this.retry = retry;
    this.#backends = backends;
    this.#perBackend = perBackend;
  }

  pickCluster(): Cluster {
    return this.#backends.pick();
  }

  filtersFor(cluster: Cluster): readonly Filter[] {
    return this.#perBackend?.get(cluster) ?? this.filters;
  }
}

/** The rewrite filters of one match of a route. */
function rewriteFilters(spec: RouteSpec, match: MatchSpec): Filter[] {
  const filters: Filter[] = [];
  const uri = spec.rewrite?.uri;
  if (uri !== undefined) {
    const prefix = match.path?.prefix;
    filters.push(
      prefix !== undefined
        ? createPrefixRewriteFilter({ prefix, replacement: uri, ignoreCase: match.ignoreUriCase })
        : createPathRewriteFilter({ path: uri }),
    );
  }
  return filters;
}

/**
 * The table rules of routes, in order (first match wins). A route with several matches gives
 * one rule per match, sharing the route's backends (one weighted split) and retry policy, each
 * with its match's rewrite. Throws a validation MeshError when a regex does not compile; a
 * backend cluster named twice in a route MUST have been merged by the caller.
 */
export function compileRouteRules(specs: readonly RouteSpec[]): RouteRule<RuleRoute>[] {
  const rules: RouteRule<RuleRoute>[] = [];
  for (const spec of specs) {
    const hosts = spec.hosts === undefined ? undefined : compileHosts(spec.hosts);
    const routeEdits = createHeaderEditFilter({
      request: spec.requestHeaders,
      response: spec.responseHeaders,
    });
    const backendEdits = spec.backends.map((b) =>
      createHeaderEditFilter({ request: b.requestHeaders, response: b.responseHeaders }),
    );
    const authority =
      spec.rewrite?.authority === undefined
        ? undefined
        : createHeaderEditFilter({ request: { set: { host: spec.rewrite.authority } } });
    // One shared split: the weights hold over the route's requests, whatever match they took.
    const backends = new WeightedClusters(
      spec.backends.map((b) => ({ cluster: b.cluster, weight: b.weight })),
    );
    const matches = spec.matches.length === 0 ? [{}] : spec.matches;
    for (const match of matches) {
      const base = [
        ...(spec.filters ?? []),
        ...rewriteFilters(spec, match),
        ...(authority === undefined ? [] : [authority]),
        ...(routeEdits === undefined ? [] : [routeEdits]),
      ];
      let perBackend: Map<Cluster, readonly Filter[]> | undefined;
      spec.backends.forEach((b, i) => {
        const own = backendEdits[i];
        if (own !== undefined) (perBackend ??= new Map()).set(b.cluster, [...base, own]);
      });
      const route = new RuleRoute(spec.name, base, spec.retry, backends, perBackend, spec.mirror);
      const test = compileMatch(match);
      const matches =
        hosts === undefined ? test : (input: MatchInput) => hosts(input) && test(input);
      rules.push({ matches, route });
    }
  }
  return rules;
}
