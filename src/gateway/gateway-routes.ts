/**
 * @module Turns the gateway's validated route config into the engine's routes: one cluster per
 * (service, subset, balancer), shared by every route that names it; filters built once per route;
 * one retry policy (and so one retry budget) per route.
 */
import type { BalancerSpec } from '../client/balancers/index.js';
import {
  createRetryPolicy,
  DEFAULT_RETRY_POLICY_OPTIONS,
  type RetryPolicy,
  type RetryPolicyOptions,
} from '../client/resilience/index.js';
import type { Clock } from '../core/clock.js';
import { Cluster, type ClusterSubset } from '../proxy/cluster.js';
import type { ProxyRoute } from '../proxy/contract.js';
import type { RouteConfig } from '../proxy/route-config.js';
import { RouteTable, type RouteRule } from '../proxy/route-table.js';
import type { GatewayOptions } from './options.js';
import {
  compileRouteRules,
  RuleRoute,
  WeightedClusters,
  type RouteSpec,
} from '../proxy/route-rules.js';

export interface GatewayRoutesDeps {
  readonly clock?: Clock | undefined;
  /** Seeds balancers and retry jitter (tests pass a seeded one). */
  readonly random?: (() => number) | undefined;
  /** Called once for each cluster made, so the caller can feed it from discovery. */
  readonly onCluster: (cluster: Cluster) => void;
  /**
   * The clusters of the config before a reload: one with the same service, subset, balancer and
   * outlier settings is kept (with its endpoints, ejections and pool state) instead of made anew,
   * and `onCluster` is not called for it again: `onKept` is.
   */
  readonly previous?: ReadonlyMap<string, Cluster> | undefined;
  readonly onKept?: ((cluster: Cluster) => void) | undefined;
}

/** The clusters and route table of a gateway. */
export interface GatewayRoutes {
  readonly table: RouteTable<ProxyRoute>;
  /** Every cluster made so far (host-routed ones appear on first use). */
  readonly clusters: ReadonlyMap<string, Cluster>;
  /** Whether only host routing leads to this cluster (no rule of the config names it). */
  hostOnly(cluster: Cluster): boolean;
  /**
   * Drops a host-only cluster and its host route (a Host naming a service the registry does not
   * know must not keep a cluster, or a watch, for good). Answers whether that left its service
   * with no cluster at all, so that its watch may go too (false as well when it was gone).
   */
  dropHostOnly(cluster: Cluster): boolean;
}

export function buildGatewayRoutes(
  options: GatewayOptions,
  deps: GatewayRoutesDeps,
): GatewayRoutes {
  const clusters = new Map<string, Cluster>();
  /** Each cluster's key in `clusters`, and how many clusters each service has there. */
  const keyOf = new Map<Cluster, string>();
  const perService = new Map<string, number>();
  const add = (key: string, cluster: Cluster): void => {
    clusters.set(key, cluster);
    keyOf.set(cluster, key);
    perService.set(cluster.service, (perService.get(cluster.service) ?? 0) + 1);
  };
  const clusterFor = (
    service: string,
    subset: ClusterSubset | undefined,
    balancer: BalancerSpec,
  ): Cluster => {
    const key = JSON.stringify([
      service,
      subset ?? null,
      balancer,
      options.outlierDetection,
      options.panicThresholdPercent,
    ]);
    let cluster = clusters.get(key);
    const kept = cluster === undefined ? deps.previous?.get(key) : undefined;
    if (kept !== undefined) {
      add(key, kept);
      cluster = kept;
      deps.onKept?.(kept);
    } else if (cluster === undefined) {
      cluster = new Cluster({
        service,
        subset,
        balancer,
        outlierDetection: options.outlierDetection,
        panicThresholdPercent: options.panicThresholdPercent,
        clock: deps.clock,
        random: deps.random,
      });
      add(key, cluster);
      deps.onCluster(cluster);
    }
    return cluster;
  };
  const retryFor = (timeoutMs: number | undefined): RetryPolicy =>
    createRetryPolicy(
      {
        ...DEFAULT_RETRY_POLICY_OPTIONS,
        ...(options.retry as Partial<RetryPolicyOptions>),
        overallTimeoutMs:
          timeoutMs !== undefined && timeoutMs > 0 ? timeoutMs : options.requestTimeoutMs,
      },
      {
        ...(deps.clock === undefined ? {} : { clock: deps.clock }),
        ...(deps.random === undefined ? {} : { random: deps.random }),
      },
    );
  const defaultBalancer = options.balancer as BalancerSpec;

  const ruleClusters = new Set<Cluster>();
  const specs = options.routes.map((r: RouteConfig, i): RouteSpec => {
    const balancer = (r.balancer ?? defaultBalancer) as BalancerSpec;
    const backends = r.backends ?? [{ service: r.service as string, subset: r.subset, weight: 1 }];
    return {
      name: r.name ?? `route-${i}`,
      matches: [r.match],
      backends: backends.map((b) => {
        const cluster = clusterFor(b.service, b.subset, balancer);
        ruleClusters.add(cluster);
        return { cluster, weight: b.weight };
      }),
      // The schema allows prefixRewrite only with match.path.prefix.
      rewrite: r.prefixRewrite === undefined ? undefined : { uri: r.prefixRewrite },
      requestHeaders: r.requestHeaders,
      responseHeaders: r.responseHeaders,
      retry: retryFor(r.timeoutMs),
    };
  });
  const rules: RouteRule<ProxyRoute>[] = compileRouteRules(specs);

  // Host routes share one retry policy (and budget): they are one route, "by host".
  const hostRetry = retryFor(undefined);
  const table = new RouteTable<ProxyRoute>({
    rules,
    domain: options.domain === '' ? undefined : options.domain,
    hostRoute: (service) =>
      new RuleRoute(
        `host:${service}`,
        [],
        hostRetry,
        new WeightedClusters([
          { cluster: clusterFor(service, undefined, defaultBalancer), weight: 1 },
        ]),
      ),
  });
  const hostOnly = (cluster: Cluster): boolean => !ruleClusters.has(cluster);
  return {
    table,
    clusters,
    hostOnly,
    dropHostOnly(cluster) {
      const key = keyOf.get(cluster);
      if (key === undefined || !hostOnly(cluster)) return false;
      clusters.delete(key);
      keyOf.delete(cluster);
      table.forgetHost(cluster.service);
      const left = (perService.get(cluster.service) ?? 1) - 1;
      if (left > 0) perService.set(cluster.service, left);
      else perService.delete(cluster.service);
      return left === 0;
    },
  };
}
