/**
 * @module Traffic mirroring (Istio's VirtualService `mirror`): a fire-and-forget copy of
 * `percent` % of a route's requests sent to one endpoint of the mirror cluster, with Host set to
 * the mirror's service and a `-shadow` suffix (as Envoy does). Only requests without a body are
 * mirrored (streaming a body to two upstreams would hold the original to the slower one): a
 * request with a body is counted as skipped. The copy's answer is read and discarded, its
 * failures only counted; it never delays or fails the original. A copy that does not answer
 * within `timeoutMs` is cut.
 */
import type { Dispatcher } from 'undici';
import type { Cluster } from '../../cluster.js';
import type { UpstreamDispatcher, UpstreamHandler } from '../../upstream-dispatcher.js';

/** Counts of the mirror cluster (the proxy's metrics read them). */
export interface MirrorCounts {
  mirrorSent: number;
  mirrorFailed: number;
  mirrorSkipped: number;
}

/** The handler of a copy: reads everything, keeps nothing. */
class DiscardHandler implements UpstreamHandler {
  readonly #counts: MirrorCounts;
  constructor(counts: MirrorCounts) {
    this.#counts = counts;
  }
  onConnect(): void {}
  onHeaders(): boolean {
    return true;
  }
  onData(): boolean {
    return true;
  }
  onComplete(): void {
    this.#counts.mirrorSent++;
  }
  onError(): void {
    this.#counts.mirrorFailed++;
  }
}

export class RouteMirror {
  readonly cluster: Cluster;
  readonly percent: number;
  readonly #random: () => number;
  readonly #timeoutMs: number;
  readonly #host: string;
  readonly #counts: MirrorCounts;

  constructor(
    cluster: Cluster,
    percent: number,
    options: { random?: (() => number) | undefined; timeoutMs: number; counts: MirrorCounts },
  ) {
    this.cluster = cluster;
    this.percent = percent;
    this.#random = options.random ?? Math.random;
    this.#timeoutMs = options.timeoutMs;
    this.#host = `${cluster.service}-shadow`;
    this.#counts = options.counts;
  }

  /** Whether this request is copied (one draw of the random). */
  pick(): boolean {
    return this.percent > 0 && this.#random() * 100 < this.percent;
  }

  /** Counts a request that was picked but has a body (not copied). */
  skipped(): void {
    this.#counts.mirrorSkipped++;
  }

  /**
   * Sends the copy. `headers` is the upstream head as the original gets it (a flat list); it is
   * not changed. Never throws.
   */
  send(
    dispatcher: UpstreamDispatcher,
    method: string,
    path: string,
    headers: readonly string[],
  ): void {
    const cluster = this.cluster;
    const counts = this.#counts;
    const endpoint = cluster.loaded ? cluster.pick(undefined, undefined) : undefined;
    if (endpoint === undefined) {
      counts.mirrorFailed++;
      return;
    }
    const copy: string[] = [];
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i] as string;
      copy.push(
        name,
        name.length === 4 && name.toLowerCase() === 'host'
          ? this.#host
          : (headers[i + 1] as string),
      );
    }
    const opts: Dispatcher.DispatchOptions = {
      origin: cluster.origin(endpoint),
      path,
      method: method as Dispatcher.HttpMethod,
      headers: copy,
      body: null,
      headersTimeout: this.#timeoutMs,
      bodyTimeout: this.#timeoutMs,
    };
    const handler = new DiscardHandler(counts);
    try {
      (cluster.dispatcherOf(endpoint) ?? dispatcher).dispatch(opts, handler);
    } catch {
      counts.mirrorFailed++;
    }
  }
}
