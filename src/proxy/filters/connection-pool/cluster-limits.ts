/**
 * @module A cluster's connection-pool limits (Istio's DestinationRule `connectionPool`, Envoy's
 * circuit breaking), counted per cluster (all its endpoints together, as Envoy does):
 * - `maxConnections` (tcp.maxConnections): requests on the wire at once (HTTP/1.1: one per
 *   connection); each endpoint's pool also holds at most this many connections, when the proxy
 *   gives the cluster a pool of its own;
 * - `maxPendingRequests` (http1MaxPendingRequests): requests waiting for a connection beyond
 *   maxConnections;
 * - `maxRequests` (http2MaxRequests): requests in flight at once, whatever the protocol.
 * A request that finds `min(maxRequests, maxConnections + maxPendingRequests)` in flight is
 * answered 503 MESHWORK_ERR_PROXY_OVERFLOW at once, never sent. `maxRetries`: retries in flight
 * at once across the cluster; a retry beyond it is not made (the failure is answered).
 */
import { errors, type MeshError } from '../../../core/errors.js';

export interface ConnectionPoolLimits {
  readonly maxConnections?: number | undefined;
  readonly maxPendingRequests?: number | undefined;
  readonly maxRequests?: number | undefined;
  readonly maxRetries?: number | undefined;
}

const LIMIT_FIELDS = ['maxConnections', 'maxPendingRequests', 'maxRequests', 'maxRetries'] as const;

/** The problems of limits, each naming its field under `field`. */
export function connectionPoolProblems(o: ConnectionPoolLimits, field: string): string[] {
  const problems: string[] = [];
  for (const k of LIMIT_FIELDS) {
    const v = o[k];
    if (v !== undefined && !(Number.isInteger(v) && v >= (k === 'maxRetries' ? 0 : 1)))
      problems.push(`${field}.${k}: must be a whole number >= ${k === 'maxRetries' ? 0 : 1}`);
  }
  return problems;
}

/** The counts of one cluster's limits. Built once per cluster; admit/release per request. */
export class ClusterLimits {
  /** Requests in flight (admitted, not finished). */
  inFlight = 0;
  /** Exchanges holding a retry slot. */
  retrying = 0;
  readonly capacity: number;
  readonly maxRetries: number;
  readonly #limit: string;

  /** `limits` MUST have passed connectionPoolProblems. */
  constructor(limits: ConnectionPoolLimits) {
    const wire =
      limits.maxConnections === undefined || limits.maxPendingRequests === undefined
        ? Infinity
        : limits.maxConnections + limits.maxPendingRequests;
    const requests = limits.maxRequests ?? Infinity;
    this.capacity = Math.min(wire, requests);
    this.#limit = requests <= wire ? `maxRequests` : `maxConnections + maxPendingRequests`;
    this.maxRetries = limits.maxRetries ?? Infinity;
  }

  /** Whether any limit is set at all. */
  get bounded(): boolean {
    return this.capacity !== Infinity || this.maxRetries !== Infinity;
  }

  /** Admits one request (true), or answers false at capacity (the caller replies overflow). */
  admit(): boolean {
    if (this.inFlight >= this.capacity) return false;
    this.inFlight++;
    return true;
  }

  release(): void {
    this.inFlight--;
  }

  /** Takes a retry slot (true), or false when maxRetries retries are in flight. */
  tryRetry(): boolean {
    if (this.retrying >= this.maxRetries) return false;
    this.retrying++;
    return true;
  }

  releaseRetry(): void {
    this.retrying--;
  }

  /** The overflow answered for a request refused by admit(). */
  overflow(service: string): MeshError {
    return errors.proxyOverflow(service, this.#limit, this.capacity);
  }
}
