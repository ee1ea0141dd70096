/**
 * @module Circuit breaking per endpoint with passive outlier ejection (Envoy outlier detection):
 * consecutive failures open an endpoint's circuit for a time that grows with each ejection, a
 * few probes test it half-open, and never more than maxEjectedPercent of a service is out.
 */
import { z } from 'zod';
import { systemClock, type Clock, type TimerHandle } from '../../core/clock.js';
import { errors, isMeshError } from '../../core/errors.js';
import { isConnectError } from './connect-errors.js';
import { resolveOptions } from './resolve-options.js';

export interface CircuitBreakerOptions {
  /** Failures in a row (connect errors, 5xx) that eject an endpoint. */
  readonly consecutiveFailures: number;
  /** First ejection time; the n-th ejection lasts baseEjectionMs * n (Envoy). */
  readonly baseEjectionMs: number;
  /** Cap of the growing ejection time. */
  readonly maxEjectionMs: number;
  /** Probe requests admitted half-open; all must succeed to close, one failure re-opens. */
  readonly halfOpenProbes: number;
  /** Never eject (open or half-open) more than this share of a service's endpoints. */
  readonly maxEjectedPercent: number;
}

export const circuitBreakerOptionsSchema = z
  .object({
    consecutiveFailures: z.number().int().min(1).max(10_000),
    baseEjectionMs: z.number().int().min(1).max(86_400_000),
    maxEjectionMs: z.number().int().min(1).max(86_400_000),
    halfOpenProbes: z.number().int().min(1).max(1000),
    maxEjectedPercent: z.number().min(0).max(100),
  })
  .strict()
  .refine((o) => o.maxEjectionMs >= o.baseEjectionMs, {
    message: 'must be >= baseEjectionMs',
    path: ['maxEjectionMs'],
  });

export const DEFAULT_CIRCUIT_BREAKER_OPTIONS: Readonly<CircuitBreakerOptions> = Object.freeze({
  consecutiveFailures: 5,
  baseEjectionMs: 30_000,
  maxEjectionMs: 300_000,
  halfOpenProbes: 1,
  maxEjectedPercent: 50,
});

/**
 * Validates outlier detection options over the defaults without building a detector: one
 * CONFIG_INVALID MeshError lists every problem. The constructor runs the same check.
 */
export function resolveCircuitBreakerOptions(
  options?: Partial<CircuitBreakerOptions>,
): Readonly<CircuitBreakerOptions> {
  return resolveOptions(
    'circuitBreaker',
    circuitBreakerOptionsSchema,
    DEFAULT_CIRCUIT_BREAKER_OPTIONS,
    options,
  );
}

export type CircuitState = 'closed' | 'open' | 'half-open';

interface EndpointCircuit {
  state: CircuitState;
  failures: number;
  /** Ejections so far, less one per baseEjectionMs spent closed since (Envoy's decay). */
  timesEjected: number;
  closedAtMs: number;
  timer: TimerHandle | undefined;
  probesAdmitted: number;
  probesInFlight: number;
  probeSuccesses: number;
}

/**
 * Outlier detection for one service (cluster). Decision-style: the caller asks `allow(id)`
 * before sending and MUST `report(id, ok)` after every request that `allow` admitted (a
 * half-open probe slot stays taken until then). Neither throws; both are O(1). Ejections end on
 * a timer of the injected Clock, so an ejected endpoint comes back without traffic.
 * @example
 * const detector = new OutlierDetector({ consecutiveFailures: 5 });
 * detector.setEndpoints(instances.map((i) => i.id));
 * const target = balancer.pick({ exclude: detector.unavailable });
 * if (detector.allow(target.id)) detector.report(target.id, (await send(target)).status < 500);
 */
export class OutlierDetector {
  readonly options: Readonly<CircuitBreakerOptions>;
  /** Ids currently ejected (open). One Set instance, mutated in place. */
  readonly ejected: ReadonlySet<string>;
  /**
   * Ids a request may not go to now: open, or half-open with every probe admitted. Pass this as
   * the balancer's exclude set when each pick is followed by allow(). One Set, mutated in place.
   */
  readonly unavailable: ReadonlySet<string>;
  readonly #ejected = new Set<string>();
  readonly #unavailable = new Set<string>();
  readonly #endpoints = new Map<string, EndpointCircuit>();
  readonly #listeners = new Set<(id: string, state: CircuitState) => void>();
  readonly #clock: Clock;
  #notClosed = 0;

  constructor(options?: Partial<CircuitBreakerOptions>, deps: { clock?: Clock } = {}) {
    this.options = resolveCircuitBreakerOptions(options);
    this.#clock = deps.clock ?? systemClock;
    this.ejected = this.#ejected;
    this.unavailable = this.#unavailable;
  }

  /** Whether a request may go to the endpoint now; admitting a half-open probe takes its slot. */
  allow(id: string): boolean {
    const e = this.#endpoints.get(id);
    if (e === undefined || e.state === 'closed') return true;
    if (e.state === 'open' || e.probesAdmitted >= this.options.halfOpenProbes) return false;
    e.probesAdmitted++;
    e.probesInFlight++;
    if (e.probesAdmitted >= this.options.halfOpenProbes) this.#unavailable.add(id);
    return true;
  }

  /** The result of a request to `id`: ok=false for connect errors, timeouts and 5xx. */
  report(id: string, ok: boolean): void {
    const e = this.#endpoint(id);
    if (e.state === 'closed') {
      e.failures = ok ? 0 : e.failures + 1;
      if (e.failures >= this.options.consecutiveFailures && this.#mayEject()) this.#eject(id, e);
      return;
    }
    // Results of requests sent before the ejection are late news, not probes.
    if (e.state === 'open' || e.probesInFlight === 0) return;
    e.probesInFlight--;
    if (!ok) this.#eject(id, e);
    else if (++e.probeSuccesses >= this.options.halfOpenProbes) this.#close(id, e);
  }

  state(id: string): CircuitState {
    return this.#endpoints.get(id)?.state ?? 'closed';
  }

  /** The endpoint set changed: ids no longer present are forgotten (their timers cleared). */
  setEndpoints(ids: readonly string[]): void {
    const keep = new Set(ids);
    for (const [id, e] of this.#endpoints) {
      if (keep.has(id)) continue;
      if (e.timer !== undefined) this.#clock.clearTimeout(e.timer);
      if (e.state !== 'closed') this.#notClosed--;
      this.#ejected.delete(id);
      this.#unavailable.delete(id);
      this.#endpoints.delete(id);
    }
    for (const id of keep) this.#endpoint(id);
  }

  /** Calls `listener` on every state change; returns the unsubscribe. Listeners MUST NOT throw. */
  onChange(listener: (id: string, state: CircuitState) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Runs `fn` against endpoint `id` if its circuit allows, and reports the result: a rejection
   * counts as a failure when it is a connect error or a retryable MeshError (a timeout), and
   * `isOk` judges a result (e.g. `(res) => res.statusCode < 500`).
   * @throws MeshError CLIENT_CIRCUIT_OPEN when the circuit does not allow the call.
   */
  async execute<T>(id: string, fn: () => Promise<T>, isOk: (result: T) => boolean = () => true) {
    if (!this.allow(id)) throw errors.circuitOpen(id);
    let result: T;
    try {
      result = await fn();
    } catch (err) {
      this.report(id, !(isConnectError(err) || (isMeshError(err) && err.retryable)));
      throw err;
    }
    this.report(id, isOk(result));
    return result;
  }

  #endpoint(id: string): EndpointCircuit {
    let e = this.#endpoints.get(id);
    if (e === undefined) {
      e = {
        state: 'closed',
        failures: 0,
        timesEjected: 0,
        closedAtMs: this.#clock.monotonicMs(),
        timer: undefined,
        probesAdmitted: 0,
        probesInFlight: 0,
        probeSuccesses: 0,
      };
      this.#endpoints.set(id, e);
    }
    return e;
  }

  /** One more ejection keeps the endpoints out of rotation within maxEjectedPercent. */
  #mayEject(): boolean {
    return (this.#notClosed + 1) * 100 <= this.#endpoints.size * this.options.maxEjectedPercent;
  }

  #eject(id: string, e: EndpointCircuit): void {
    const { baseEjectionMs, maxEjectionMs } = this.options;
    if (e.state === 'closed') {
      const closedMs = this.#clock.monotonicMs() - e.closedAtMs;
      e.timesEjected = Math.max(0, e.timesEjected - Math.floor(closedMs / baseEjectionMs));
      this.#notClosed++;
    }
    e.timesEjected++;
    e.state = 'open';
    e.failures = 0;
    this.#ejected.add(id);
    this.#unavailable.add(id);
    const ejectionMs = Math.min(maxEjectionMs, baseEjectionMs * e.timesEjected);
    e.timer = this.#clock.setTimeout(() => this.#halfOpen(id, e), ejectionMs);
    e.timer.unref?.();
    this.#emit(id, 'open');
  }

  #halfOpen(id: string, e: EndpointCircuit): void {
    e.timer = undefined;
    e.state = 'half-open';
    e.probesAdmitted = 0;
    e.probesInFlight = 0;
    e.probeSuccesses = 0;
    this.#ejected.delete(id);
    this.#unavailable.delete(id);
    this.#emit(id, 'half-open');
  }

  #close(id: string, e: EndpointCircuit): void {
    e.state = 'closed';
    e.failures = 0;
    e.closedAtMs = this.#clock.monotonicMs();
    this.#notClosed--;
    this.#unavailable.delete(id);
    this.#emit(id, 'closed');
  }

  #emit(id: string, state: CircuitState): void {
    for (const l of this.#listeners) l(id, state);
  }
}
