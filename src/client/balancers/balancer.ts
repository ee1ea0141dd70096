/** @module The Balancer contract: the interface every load balancer of the SDK implements. */

/** One pickable instance, derived from an InstanceDto that is passing or warning. */
export interface Endpoint {
  readonly id: string;
  readonly address: string;
  readonly port: number;
  /** Effective weight >= 1: weights.passing when passing, weights.warning when warning. */
  readonly weight: number;
  readonly status: 'passing' | 'warning';
  /** meta.zone, if any. */
  readonly zone: string | undefined;
  readonly priority: number;
  readonly tags: readonly string[];
  readonly meta: Readonly<Record<string, string>>;
}

export interface PickContext {
  /** Consistent-hash key (ring-hash, maglev), e.g. a user id or session cookie. */
  readonly hashKey?: string;
  /** Endpoint ids not to pick (already tried by this request, or ejected by outlier detection). */
  readonly exclude?: ReadonlySet<string>;
}

/**
 * Contract: `update` replaces the endpoint set (called on every discovery change, rare);
 * `pick` is the hot path: MUST NOT throw, MUST NOT allocate per call where avoidable, answers
 * undefined when no endpoint is pickable. `started`/`finished` are called around each request
 * sent to a picked endpoint (least-request counts in-flight requests; zone-aware detects
 * overload from them). A balancer MUST tolerate `finished` for an id no longer in its set.
 *
 * Balancers made by `createBalancer` pick only among the endpoints of the best (lowest)
 * `priority` present, and fall back to the next priority only when all of those are excluded.
 */
export interface Balancer {
  readonly kind: string;
  update(endpoints: readonly Endpoint[]): void;
  pick(ctx?: PickContext): Endpoint | undefined;
  started(id: string): void;
  finished(id: string): void;
}

/** A plug-in spec: a name or { type, ...options } (conventions: plug-ins as kebab strings). */
export type BalancerSpec =
  | 'round-robin'
  | 'weighted-round-robin'
  | 'random'
  | 'least-request'
  | 'ring-hash'
  | 'maglev'
  | { type: 'round-robin' | 'weighted-round-robin' | 'random' }
  | { type: 'least-request'; choices?: number }
  | { type: 'ring-hash'; minRingSize?: number; maxRingSize?: number }
  | { type: 'maglev'; tableSize?: number }
  | {
      type: 'zone-aware';
      localZone: string;
      inner?: BalancerSpec;
      minHealthyPercent?: number;
      overloadInFlight?: number;
    };

export interface BalancerOptions {
  /**
   * Uniform numbers in [0, 1) that seed the balancer's own generator, called once per priority
   * level (not per pick, which must not allocate): Math.random by default; tests pass a seeded
   * one for repeatable picks.
   */
  readonly random?: () => number;
}
