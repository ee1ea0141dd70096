/**
 * @module The call graph's counting side in a proxy (issue 21): request observers that count
 * each finished request on its edge (source service -> destination service): requests, errors,
 * and a latency histogram on EDGE_LATENCY_BUCKETS_MS; `drain()` turns the counts since the last
 * drain into the edges of a ProxyEdgeReport. The per-request part is two Map lookups and a few
 * number increments: the counts objects are made once per edge and reused (no allocation per
 * request in the steady state).
 *
 * Who counts a call, so that the control plane never counts it twice (docs/observability.md,
 * "Call graph"): the callee's inbound sidecar (reporter `destination`) counts every call that
 * reached it; a caller (a sidecar's outbound, a gateway: reporter `source`) counts only the
 * calls that reached no sidecar: no instance was tried (no route, no healthy instance, overflow,
 * rate limited), the instance has no sidecar (no `sidecar-version` in its meta), or the last
 * connection to it failed (UF: the callee's sidecar never saw the request).
 */
import type { EdgeCounts } from '../protocol/mesh/graph.js';
import { EDGE_LATENCY_BUCKETS_MS } from '../protocol/mesh/graph.js';
import { parseSpiffeId } from '../protocol/mesh/ca.js';
import { SERVICE_NAME } from '../protocol/registration.js';
import type { FilterExchange } from './filter.js';
import type { RequestObserver, RequestRecord } from './observe.js';
import { peerIdentity, type PeerIdentity } from './peer-identity.js';

/** The meta `meshwork sidecar` registers its app with (its version): the callee has a sidecar. */
export const SIDECAR_VERSION_META = 'sidecar-version';

/**
 * The header naming the calling service (the sidecar's SOURCE_SERVICE_HEADER): a gateway sets
 * it to its name, so the callee's inbound sidecar counts the call on the gateway's edge.
 */
export const EDGE_SOURCE_HEADER = 'x-meshwork-source-service';

/** The source of a call whose caller has no identity. */
export const UNKNOWN_SOURCE = 'unknown';

/** At most this many edges are counted between two drains; calls on more are dropped. */
export const DEFAULT_MAX_EDGES = 1024;

const BUCKETS = EDGE_LATENCY_BUCKETS_MS.length + 1;

/** One edge's counts since the last drain (reused across drains). */
interface Counts {
  requests: number;
  errors: number;
  readonly latency: number[];
}

/** The bucket of `ms` on EDGE_LATENCY_BUCKETS_MS (the last: longer than every bound). */
export function latencyBucket(ms: number): number {
  const bounds = EDGE_LATENCY_BUCKETS_MS;
  let i = 0;
  while (i < bounds.length && ms > (bounds[i] as number)) i++;
  return i;
}

/** Counts the calls of one proxy side (its outbound, its inbound or a gateway) by edge. */
export class EdgeCounter {
  readonly #bySource = new Map<string, Map<string, Counts>>();
  readonly #maxEdges: number;
  #edges = 0;
  #dropped = 0;

  constructor(maxEdges = DEFAULT_MAX_EDGES) {
    this.#maxEdges = maxEdges;
  }

  /** Calls not counted because the edge limit was reached (since the start). */
  get dropped(): number {
    return this.#dropped;
  }

  /** Counts one call. `failed`: answered 5xx or not answered. */
  count(source: string, destination: string, failed: boolean, durationMs: number): void {
    const c = this.#counts(source, destination);
    if (c === undefined) {
      this.#dropped++;
      return;
    }
    c.requests++;
    if (failed) c.errors++;
    (c.latency[latencyBucket(durationMs)] as number)++;
  }

  /** Adds counts back (a report that could not be sent), within the edge limit. */
  add(edges: readonly EdgeCounts[]): void {
    for (const e of edges) {
      const c = this.#counts(e.source, e.destination);
      if (c === undefined) {
        this.#dropped += e.requests;
        continue;
      }
      c.requests += e.requests;
      c.errors += e.errors;
      for (let i = 0; i < BUCKETS; i++) (c.latency[i] as number) += e.latencyBuckets[i] ?? 0;
    }
  }

  /**
   * The edges with calls since the last drain, and zeroes them. An edge without calls over a
   * whole interval is forgotten (its counts object goes), so edges seen once do not pile up.
   */
  drain(): EdgeCounts[] {
    const out: EdgeCounts[] = [];
    for (const [source, byDestination] of this.#bySource) {
      for (const [destination, c] of byDestination) {
        if (c.requests === 0) {
          byDestination.delete(destination);
          this.#edges--;
          continue;
        }
        out.push({
          source,
          destination,
          requests: c.requests,
          errors: c.errors,
          latencyBuckets: [...c.latency],
        });
        c.requests = 0;
        c.errors = 0;
        c.latency.fill(0);
      }
      if (byDestination.size === 0) this.#bySource.delete(source);
    }
    return out;
  }

  #counts(source: string, destination: string): Counts | undefined {
    let byDestination = this.#bySource.get(source);
    const found = byDestination?.get(destination);
    if (found !== undefined) return found;
    if (this.#edges >= this.#maxEdges) return undefined;
    if (byDestination === undefined) {
      byDestination = new Map();
      this.#bySource.set(source, byDestination);
    }
    const c: Counts = { requests: 0, errors: 0, latency: new Array<number>(BUCKETS).fill(0) };
    byDestination.set(destination, c);
    this.#edges++;
    return c;
  }
}

/** A call failed for the graph: answered 5xx, or not answered at all. */
const failed = (record: RequestRecord): boolean => record.status >= 500 || record.status === 0;

/** Whether a caller counts this call: it reached no sidecar (the module's rule). */
function reachedNoSidecar(record: RequestRecord): boolean {
  const endpoint = record.endpoint;
  return (
    endpoint === undefined ||
    endpoint.meta[SIDECAR_VERSION_META] === undefined ||
    record.flags.includes('UF')
  );
}

/**
 * A caller's observer (reporter `source`): a sidecar's outbound (`source`: its service) or a
 * gateway (`source`: its name; `tagCalls` sets EDGE_SOURCE_HEADER so the callee's sidecar
 * counts the call on the gateway's edge).
 */
export function sourceEdgeObserver(
  counter: EdgeCounter,
  source: string,
  options: { readonly tagCalls?: boolean } = {},
): RequestObserver {
  const end = (record: RequestRecord): void => {
    const destination = record.service;
    if (destination === undefined || !reachedNoSidecar(record)) return;
    counter.count(source, destination, failed(record), record.durationMs);
  };
  if (options.tagCalls !== true) return { end };
  return {
    start: (x: FilterExchange) => {
      x.setRequestHeader(EDGE_SOURCE_HEADER, source);
      return undefined;
    },
    end,
  };
}

/**
 * A callee's observer (reporter `destination`, a sidecar's inbound): the caller is the service
 * of its mTLS certificate, else the service its sidecar (or gateway) named in
 * EDGE_SOURCE_HEADER, else `unknown`.
 */
export function destinationEdgeObserver(
  counter: EdgeCounter,
  destination: string,
): RequestObserver {
  // A peer's identity is one object per connection: its service is parsed once.
  const services = new WeakMap<PeerIdentity, string>();
  const sourceOf = (record: RequestRecord): string => {
    const peer = peerIdentity(record.socket);
    if (peer !== undefined) {
      let service = services.get(peer);
      if (service === undefined) {
        const parsed = parseSpiffeId(peer.spiffeId ?? '')?.service;
        service = parsed !== undefined && SERVICE_NAME.test(parsed) ? parsed : '';
        services.set(peer, service);
      }
      if (service !== '') return service;
    }
    const claimed = record.headers[EDGE_SOURCE_HEADER];
    return typeof claimed === 'string' && SERVICE_NAME.test(claimed) ? claimed : UNKNOWN_SOURCE;
  };
  return {
    end: (record) =>
      counter.count(sourceOf(record), destination, failed(record), record.durationMs),
  };
}
