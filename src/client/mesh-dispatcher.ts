/**
 * @module The mesh interceptor: an undici interceptor that turns `http://<service>/path` into a
 * request to one healthy instance of the service, picked by the service's balancer from the
 * discovery cache, with per-try timeouts, budgeted retries on other instances (connect errors,
 * 502/503/504) and passive outlier ejection. `client.fetch` and the `dispatcher` option of
 * undici/fetch both go through it, so there is one implementation of the data path.
 *
 * Written against undici's handler API of v7 (onRequestStart, onResponseStart, ...): the
 * interceptor is installed with `Dispatcher.compose`, which hands it handlers of that shape.
 */
import type { Dispatcher } from 'undici';
import type { TimerHandle } from '../core/clock.js';
import { errors } from '../core/errors.js';
import { SERVICE_NAME } from '../protocol/registration.js';
import type { Balancer, Endpoint } from './balancers/index.js';
import type {
  Bulkhead,
  BulkheadRelease,
  OutlierDetector,
  RetryPolicy,
  RetryState,
  TokenBucketRateLimiter,
} from './resilience/index.js';

/** What the interceptor needs of one service: kept current by the client's discovery. */
export interface ServiceCluster {
  readonly service: string;
  readonly balancer: Balancer;
  readonly outliers: OutlierDetector;
  /** Resolves once the first snapshot is in (rejects if the registry never answered). */
  readonly ready: Promise<void>;
  readonly loaded: boolean;
  /** At most this many calls to the service at once (the rest wait in its queue, or fail). */
  readonly bulkhead?: Bulkhead | undefined;
  /** Calls to the service per second. */
  readonly limiter?: TokenBucketRateLimiter | undefined;
}

export interface MeshInterceptorOptions {
  /** The cluster of a service, created (and watched) on first use. */
  readonly cluster: (service: string) => ServiceCluster;
  readonly retry: RetryPolicy;
  /** Which hosts are service names (default: a DNS label without dots, other than localhost). */
  readonly isService?: (host: string) => boolean;
}

type DispatchFn = Dispatcher['dispatch'];
type Handler = Dispatcher.DispatchHandler;
type Controller = Dispatcher.DispatchController;

/** A host is taken as a service name when it is a bare DNS label (no dots), not localhost. */
export function defaultIsService(host: string): boolean {
  return host !== 'localhost' && SERVICE_NAME.test(host);
}

/**
 * The interceptor, for `agent.compose(createMeshInterceptor(...))`.
 *
 * @example
 * const dispatcher = new Agent().compose(createMeshInterceptor({ cluster, retry }));
 * await fetch('http://payments/charge', { dispatcher });
 */
export function createMeshInterceptor(
  options: MeshInterceptorOptions,
): (dispatch: DispatchFn) => DispatchFn {
  const isService = options.isService ?? defaultIsService;
  // Origin string -> its service name (null: not a service). Parsing a URL per request costs
  // more than the rest of the routing; callers use a handful of origins.
  const services = new Map<string, string | null>();
  const serviceOf = (origin: string | URL | undefined): string | null => {
    if (origin === undefined) return null;
    const key = String(origin);
    let service = services.get(key);
    if (service === undefined) {
      const host = new URL(key).hostname;
      service = isService(host) ? host : null;
      if (services.size < 10_000) services.set(key, service);
    }
    return service;
  };
  return (dispatch) =>
    function meshDispatch(opts, handler) {
      const service = serviceOf(opts.origin);
      if (service === null) return dispatch(opts, handler);
      const request = new MeshRequest(
        options,
        dispatch,
        options.cluster(service),
        service,
        opts,
        handler as Handler,
      );
      request.start();
      return true;
    };
}

/** Whether a request body can be sent again as it is (a stream cannot). */
export function replayable(
  body: unknown,
): body is string | Uint8Array | ArrayBuffer | null | undefined {
  return (
    body === undefined ||
    body === null ||
    typeof body === 'string' ||
    body instanceof Uint8Array ||
    body instanceof ArrayBuffer
  );
}

/**
 * A streamed body, wrapped so that we know whether any of it was read: one never touched (the
 * connection was refused) can still be handed to another attempt.
 */
class TrackedBody {
  started = false;
  readonly body: AsyncIterable<unknown>;

  constructor(source: AsyncIterable<unknown> | Iterable<unknown>) {
    const started = (): void => {
      this.started = true;
    };
    this.body = {
      async *[Symbol.asyncIterator]() {
        started();
        yield* source as AsyncIterable<unknown>;
      },
    };
  }
}

/** Headers as a plain object, whatever shape undici was given. */
function headerObject(headers: Dispatcher.DispatchOptions['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  if (headers === undefined || headers === null) return out;
  if (Array.isArray(headers)) {
    for (let i = 0; i + 1 < headers.length; i += 2)
      out[String(headers[i]).toLowerCase()] = String(headers[i + 1]);
    return out;
  }
  const entries =
    typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function'
      ? [...(headers as Iterable<[string, string]>)]
      : Object.entries(headers as Record<string, string | string[] | undefined>);
  for (const [k, v] of entries) {
    if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : String(v);
  }
  return out;
}

/**
 * One request through the mesh: attempts on picked instances until one answers for good, the
 * policy refuses another try, or the caller aborts. The caller's handler sees one request: one
 * onRequestStart (with a controller that follows the current attempt), then one response.
 */
class MeshRequest implements Controller {
  readonly #options: MeshInterceptorOptions;
  readonly #dispatch: DispatchFn;
  readonly #cluster: ServiceCluster;
  readonly #opts: Dispatcher.DispatchOptions;
  readonly #handler: Handler;
  readonly #headers: Record<string, string>;
  readonly #state: RetryState;
  /** Set when the body is a stream: retries only while none of it was read. */
  readonly #tracked: TrackedBody | undefined;
  /** Instances this request tried (excluded from later picks). */
  readonly #tried = new Set<string>();
  #exclude: Set<string> | undefined;
  #attempt: Controller | undefined;
  /** The current attempt's response is being thrown away for a retry. */
  #discarding = false;
  #started = false;
  #responded = false;
  #aborted = false;
  #reason: Error | null = null;
  #paused = false;
  #release: BulkheadRelease | undefined;
  #done = false;
  /**
   * The current try's deadline for its response head, on the policy's clock: undici's own
   * `headersTimeout` ticks about once a second, too coarse for a 200 ms per-try timeout.
   */
  #tryTimer: TimerHandle | undefined;
  #tryTimedOut: Error | undefined;

  constructor(
    options: MeshInterceptorOptions,
    dispatch: DispatchFn,
    cluster: ServiceCluster,
    service: string,
    opts: Dispatcher.DispatchOptions,
    handler: Handler,
  ) {
    this.#options = options;
    this.#dispatch = dispatch;
    this.#cluster = cluster;
    this.#opts = opts;
    this.#handler = handler;
    this.#headers = headerObject(opts.headers);
    // The upstream sees the service's name, as behind a proxy (RFC 9110 7.2).
    this.#headers.host ??= service;
    const body = opts.body;
    this.#tracked = replayable(body) ? undefined : new TrackedBody(body as AsyncIterable<unknown>);
    this.#state = options.retry.begin({
      method: opts.method,
      inherited: this.#headers,
    });
  }

  // ---- the controller the caller's handler holds ------------------------------------------

  get aborted(): boolean {
    return this.#aborted;
  }
  get paused(): boolean {
    return this.#paused;
  }
  get reason(): Error | null {
    return this.#reason;
  }
  abort(reason: Error): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    if (this.#attempt !== undefined) this.#attempt.abort(reason);
    else this.#fail(reason);
  }
  pause(): void {
    this.#paused = true;
    this.#attempt?.pause();
  }
  resume(): void {
    this.#paused = false;
    this.#attempt?.resume();
  }

  // ---- attempts ---------------------------------------------------------------------------

  start(): void {
    if (!this.#started) {
      this.#started = true;
      this.#handler.onRequestStart?.(this, {});
    }
    if (this.#aborted) return;
    const { limiter, bulkhead } = this.#cluster;
    if (limiter !== undefined && !limiter.tryAcquire()) {
      this.#fail(errors.rateLimited(limiter.retryAfterMs()));
      return;
    }
    if (bulkhead !== undefined && this.#release === undefined) {
      const slot = bulkhead.tryAcquire();
      if (slot === undefined) {
        bulkhead.acquire().then(
          (release) => {
            this.#release = release;
            this.start();
          },
          (err: unknown) => this.#fail(err as Error),
        );
        return;
      }
      this.#release = slot;
    }
    if (!this.#cluster.loaded) {
      this.#cluster.ready.then(
        () => this.#send(),
        (err: unknown) => this.#fail(err as Error),
      );
      return;
    }
    this.#send();
  }

  #send(): void {
    if (this.#aborted) return;
    const { balancer, outliers } = this.#cluster;
    const endpoint = this.#pick(balancer, outliers);
    if (endpoint === undefined) {
      this.#fail(errors.noHealthyInstance(this.#cluster.service));
      return;
    }
    this.#discarding = false;
    balancer.started(endpoint.id);
    const tryTimeoutMs = this.#state.tryTimeoutMs();
    const opts: Dispatcher.DispatchOptions = {
      ...this.#opts,
      origin: `http://${endpoint.address.includes(':') ? `[${endpoint.address}]` : endpoint.address}:${endpoint.port}`,
      headers: { ...this.#headers, ...this.#state.headers() },
      ...(this.#tracked === undefined ? {} : { body: this.#tracked.body as never }),
    };
    this.#tryTimedOut = undefined;
    if (Number.isFinite(tryTimeoutMs)) {
      const clock = this.#options.retry.clock;
      this.#tryTimer = clock.setTimeout(() => {
        this.#tryTimer = undefined;
        this.#tryTimedOut = errors.clientTimeout('try', tryTimeoutMs);
        this.#attempt?.abort(this.#tryTimedOut);
      }, tryTimeoutMs);
      this.#tryTimer.unref?.();
    }
    try {
      this.#dispatch(opts, this.#attemptHandler(endpoint));
    } catch (err) {
      this.#afterFailure(endpoint, err as Error);
    }
  }

  #clearTryTimer(): void {
    if (this.#tryTimer === undefined) return;
    this.#options.retry.clock.clearTimeout(this.#tryTimer);
    this.#tryTimer = undefined;
  }

  /**
   * A balancer pick that skips ejected instances and the ones this request already tried, then
   * (never fail for want of a fresh one) tried ones, then, when every instance is ejected,
   * anything: spreading over all beats refusing all (Envoy's panic mode).
   */
  #pick(balancer: Balancer, outliers: OutlierDetector): Endpoint | undefined {
    const hashKey = this.#headers['x-meshwork-hash-key'];
    const key = hashKey === undefined ? {} : { hashKey };
    if (this.#tried.size === 0) {
      const e = balancer.pick({ ...key, exclude: outliers.unavailable });
      if (e !== undefined && outliers.allow(e.id)) return e;
    } else {
      this.#exclude ??= new Set();
      this.#exclude.clear();
      for (const id of outliers.unavailable) this.#exclude.add(id);
      for (const id of this.#tried) this.#exclude.add(id);
      const e = balancer.pick({ ...key, exclude: this.#exclude });
      if (e !== undefined && outliers.allow(e.id)) return e;
      const again = balancer.pick({ ...key, exclude: outliers.unavailable });
      if (again !== undefined && outliers.allow(again.id)) return again;
    }
    return balancer.pick(key);
  }

  #attemptHandler(endpoint: Endpoint): Handler {
    return {
      onRequestStart: (controller) => {
        this.#attempt = controller;
        if (this.#paused) controller.pause();
        if (this.#aborted) controller.abort(this.#reason ?? new Error('aborted'));
        else if (this.#tryTimedOut !== undefined) controller.abort(this.#tryTimedOut);
      },
      onRequestUpgrade: (controller, statusCode, headers, socket) => {
        this.#clearTryTimer();
        this.#settle(endpoint, true);
        this.#responded = true;
        this.#finish();
        this.#handler.onRequestUpgrade?.(this, statusCode, headers, socket);
      },
      onResponseStart: (controller, statusCode, headers, statusMessage) => {
        this.#clearTryTimer();
        const ok = statusCode < 500;
        this.#cluster.outliers.report(endpoint.id, ok);
        const decision = this.#state.decide({ kind: 'response', status: statusCode });
        if (decision.retry && this.#canRetry() && !this.#aborted) {
          // Thrown away: the caller never sees this response; the next attempt follows.
          this.#discarding = true;
          this.#cluster.balancer.finished(endpoint.id);
          this.#tried.add(endpoint.id);
          controller.abort(new Error('meshwork: retrying on another instance'));
          this.#later(decision.delayMs);
          return;
        }
        this.#responded = true;
        this.#handler.onResponseStart?.(this, statusCode, headers, statusMessage);
      },
      onResponseData: (_controller, chunk) => {
        if (!this.#discarding) this.#handler.onResponseData?.(this, chunk);
      },
      onResponseEnd: (_controller, trailers) => {
        if (this.#discarding) return;
        this.#cluster.balancer.finished(endpoint.id);
        this.#finish();
        this.#handler.onResponseEnd?.(this, trailers);
      },
      onResponseError: (_controller, err) => {
        if (this.#discarding) return; // the abort of a response thrown away for a retry
        this.#afterFailure(endpoint, err);
      },
    };
  }

  /** An attempt failed before (or while) answering: retry elsewhere, or pass the error on. */
  #afterFailure(endpoint: Endpoint, err: Error): void {
    this.#clearTryTimer();
    if (this.#responded || this.#aborted) {
      this.#cluster.balancer.finished(endpoint.id);
      this.#finish();
      this.#handler.onResponseError?.(this, err);
      return;
    }
    this.#settle(endpoint, false);
    const decision = this.#state.decide({ kind: 'error', error: err });
    if (decision.retry && this.#canRetry()) {
      this.#tried.add(endpoint.id);
      this.#later(decision.delayMs);
      return;
    }
    this.#fail(err);
  }

  /** A body can go again if it is a value, or a stream not read yet; an upgrade never does. */
  #canRetry(): boolean {
    if (this.#opts.upgrade != null) return false;
    return this.#tracked === undefined || !this.#tracked.started;
  }

  #settle(endpoint: Endpoint, ok: boolean): void {
    this.#cluster.balancer.finished(endpoint.id);
    this.#cluster.outliers.report(endpoint.id, ok);
  }

  #later(delayMs: number): void {
    this.#attempt = undefined;
    if (delayMs <= 0) queueMicrotask(() => this.#send());
    else this.#options.retry.clock.setTimeout(() => this.#send(), delayMs).unref?.();
  }

  /** The request is over: its bulkhead slot goes to the next call. */
  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.#release?.();
  }

  #fail(err: Error): void {
    this.#finish();
    if (!this.#started) {
      this.#started = true;
      this.#handler.onRequestStart?.(this, {});
    }
    this.#handler.onResponseError?.(this, err);
  }
}
