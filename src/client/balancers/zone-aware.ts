/** @module ZoneAwareBalancer: same zone first, spill over when it is unhealthy or overloaded. */
import type { Balancer, Endpoint, PickContext } from './balancer.js';
import { InFlightCounter } from './pick-helpers.js';

/**
 * Wraps two balancers of the same inner kind, one over the endpoints whose zone is `localZone`
 * and one over all endpoints. A pick stays in the local zone while at least
 * `minHealthyPercent` of the local endpoints are available, that is neither excluded (tried
 * already, or ejected by outlier detection) nor overloaded (`overloadInFlight` or more requests
 * in flight); below that, or when the local pick finds nothing, it spills over to all endpoints.
 * Critical instances are not in the set at all (see toEndpoints), so the percentage counts
 * what the catalog still routes to; a zone that lost most of its instances shows as overload.
 */
export class ZoneAwareBalancer implements Balancer {
  readonly kind = 'zone-aware';
  readonly #localZone: string;
  readonly #minHealthyPercent: number;
  readonly #overloadInFlight: number;
  readonly #local: Balancer;
  readonly #all: Balancer;
  readonly #inFlight = new InFlightCounter();
  #localEndpoints: readonly Endpoint[] = [];
  /** How many local endpoints have `overloadInFlight` or more requests in flight. */
  #overloaded = 0;

  constructor(
    options: { localZone: string; minHealthyPercent: number; overloadInFlight: number },
    makeInner: () => Balancer,
  ) {
    this.#localZone = options.localZone;
    this.#minHealthyPercent = options.minHealthyPercent;
    this.#overloadInFlight = options.overloadInFlight;
    this.#local = makeInner();
    this.#all = makeInner();
  }

  /** True when a pick with `exclude` would stay in the local zone (for tests and metrics). */
  localZoneHealthy(exclude?: ReadonlySet<string>): boolean {
    const local = this.#localEndpoints;
    const n = local.length;
    if (n === 0) return false;
    let available = n - this.#overloaded;
    if (exclude !== undefined && exclude.size > 0) {
      for (let i = 0; i < n; i++) {
        if (exclude.has(local[i]!.id) && this.#inFlight.at(i) < this.#overloadInFlight) available--;
      }
    }
    return available * 100 >= this.#minHealthyPercent * n;
  }

  update(endpoints: readonly Endpoint[]): void {
    const local = endpoints.filter((e) => e.zone === this.#localZone);
    this.#localEndpoints = local;
    this.#inFlight.update(local);
    this.#overloaded = 0;
    for (let i = 0; i < local.length; i++) {
      if (this.#inFlight.at(i) >= this.#overloadInFlight) this.#overloaded++;
    }
    this.#local.update(local);
    this.#all.update(endpoints);
  }

  pick(ctx?: PickContext): Endpoint | undefined {
    if (this.localZoneHealthy(ctx?.exclude)) {
      const e = this.#local.pick(ctx);
      if (e !== undefined) return e;
    }
    return this.#all.pick(ctx);
  }

  started(id: string): void {
    const i = this.#inFlight.started(id);
    if (i !== -1 && this.#inFlight.at(i) === this.#overloadInFlight) this.#overloaded++;
    this.#local.started(id);
    this.#all.started(id);
  }

  finished(id: string): void {
    const i = this.#inFlight.finished(id);
    if (i !== -1 && this.#inFlight.at(i) === this.#overloadInFlight - 1) this.#overloaded--;
    this.#local.finished(id);
    this.#all.finished(id);
  }
}
