/**
 * @module Attempt: one try of a proxied request, the undici handler its upstream client calls.
 * It reports to the instance's outlier detector and balancer and forwards to the exchange that
 * sent it, unless it was discarded (a retry went on without it), so its late callbacks cannot
 * touch the next try.
 */
import type { Endpoint } from '../client/balancers/index.js';
import type { Cluster } from './cluster.js';
import type { UpstreamHandler } from './contract.js';
import type { RouteClusterStats } from './proxy-metrics.js';

/** The retry-stopping abort of a response we throw away. */
const DISCARDED = new Error('meshwork: response discarded for a retry');

/**
 * What an attempt reports to: the Exchange that sent it. Called from the attempt's handler
 * methods, at most once per method per attempt except onData; none of them may throw.
 */
export interface AttemptOwner {
  /** The route and cluster's stats, once the request reached a cluster. */
  stats(): RouteClusterStats | undefined;
  /** The head arrived. Returns false when the response is discarded for a retry. */
  onHead(
    attempt: Attempt,
    status: number,
    rawHeaders: readonly (Buffer | string)[],
    message: string,
  ): boolean;
  /** A body chunk: false asks the upstream to pause until `onDrain`'s callback. */
  onData(chunk: Buffer): boolean;
  onDrain(fn: () => void): void;
  onEnd(): void;
  /** The attempt failed (before the head: retry or reply; during the body: cut). */
  onError(attempt: Attempt, err: Error): void;
}

/**
 * The undici handler of one attempt: forwards to its Exchange unless discarded. It speaks
 * undici's raw handler interface (onConnect/onHeaders/onData/onComplete/onError), the one
 * undici's client calls natively: a v7 controller handler (onRequestStart/onResponseStart...)
 * is wrapped per request in an UnwrapHandler that parses the raw header Buffers into an
 * object, which the engine then had to turn back into a list for the response head.
 */
export class Attempt implements UpstreamHandler {
  readonly #exchange: AttemptOwner;
  readonly #cluster: Cluster;
  readonly endpoint: Endpoint;
  readonly #panic: boolean;
  readonly tryTimeoutMs: number;
  readonly #startedAt = performance.now();
  #abort: ((err?: Error) => void) | undefined;
  /** undici's parser resume (given with the head), for backpressure. */
  #resume: (() => void) | undefined;
  #done = false;
  #discarded = false;
  #cancelled = false;
  /** The per-try deadline for the response head (undici's own timers tick at ~1 s). */
  #timer: NodeJS.Timeout | undefined;

  constructor(
    exchange: AttemptOwner,
    cluster: Cluster,
    endpoint: Endpoint,
    panic: boolean,
    tryTimeoutMs: number,
  ) {
    this.#exchange = exchange;
    this.#cluster = cluster;
    this.endpoint = endpoint;
    this.#panic = panic;
    this.tryTimeoutMs = tryTimeoutMs;
    if (Number.isFinite(tryTimeoutMs)) {
      this.#timer = setTimeout(() => this.#timedOut(), Math.max(1, tryTimeoutMs));
    }
  }

  #timedOut(): void {
    this.#timer = undefined;
    if (this.#done) return;
    const err = Object.assign(new Error(`no response head within ${this.tryTimeoutMs} ms`), {
      code: 'UND_ERR_HEADERS_TIMEOUT',
    });
    // Later callbacks of this attempt are ignored; the exchange retries or replies 504 now.
    // failed() first: the abort below calls onError at once, which settles the attempt.
    this.#discarded = true;
    this.failed(err);
    this.#abort?.(err);
  }

  /** The downstream went away: abort the upstream request. */
  cancel(): void {
    this.#cancelled = true;
    this.#abort?.(new Error('meshwork: downstream closed'));
  }

  onConnect(abort: (err?: Error) => void): void {
    this.#abort = abort;
    if (this.#cancelled) abort(new Error('meshwork: downstream closed'));
    else if (this.#discarded) abort(DISCARDED);
  }

  onHeaders(
    statusCode: number,
    rawHeaders: readonly (Buffer | string)[],
    resume: () => void,
    statusText: string,
  ): boolean {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#discarded) return true;
    this.#resume = resume;
    const seconds = (performance.now() - this.#startedAt) / 1e3;
    this.#cluster.outliers.report(this.endpoint.id, statusCode < 500);
    this.#exchange.stats()?.latency.observe(seconds);
    if (!this.#exchange.onHead(this, statusCode, rawHeaders, statusText)) {
      this.#discarded = true;
      this.#settle();
      this.#abort?.(DISCARDED);
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.#discarded) return true;
    if (this.#exchange.onData(chunk)) return true;
    // Paused until the downstream drains (undici stops reading the upstream socket).
    this.#exchange.onDrain(this.#resume as () => void);
    return false;
  }

  onComplete(): void {
    if (this.#discarded) return;
    this.#settle();
    this.#exchange.onEnd();
  }

  onError(err: Error): void {
    if (this.#discarded) {
      this.#settle();
      return;
    }
    if (this.#cancelled) {
      // Not the instance's fault, but a half-open probe slot MUST be given back (by a report):
      // count it as failed, which keeps the instance out a while longer rather than forever.
      if (!this.#done && this.#cluster.outliers.state(this.endpoint.id) === 'half-open') {
        this.#cluster.outliers.report(this.endpoint.id, false);
      }
      this.#settle();
      return;
    }
    this.failed(err);
  }

  /** A failure of this attempt (also a synchronous dispatch throw). */
  failed(err: Error): void {
    if (this.#done) return;
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    // Connect errors and resets count against the instance; a deadline we set does too.
    this.#cluster.outliers.report(this.endpoint.id, false);
    this.#settle();
    this.#exchange.onError(this, err);
  }

  #settle(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#done) return;
    this.#done = true;
    this.#cluster.balancerFor(this.#panic).finished(this.endpoint.id);
  }
}
