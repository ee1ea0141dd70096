/**
 * @module ObservedRequest: what an Exchange notes of its request for the listener's observers
 * (observe.ts), and the RequestRecord made of it when the request ends. Made only for listeners
 * with observers: the Exchange of one without them holds none and spends nothing here.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Endpoint } from '../client/balancers/index.js';
import { ERROR_CODES } from '../core/errors.js';
import type { FilterExchange, LocalReply } from './filter.js';
import type { RequestObserver, RequestRecord, ResponseFlag } from './observe.js';
import type { DownstreamSocket } from './peer-identity.js';

/** The response flag of a local reply's error code (none: not one of these). */
const FLAG_BY_CODE: Readonly<Record<string, ResponseFlag>> = {
  [ERROR_CODES.PROXY_ROUTE_NOT_FOUND]: 'NR',
  [ERROR_CODES.PROXY_EGRESS_DENIED]: 'NR',
  [ERROR_CODES.PROXY_NO_HEALTHY_UPSTREAM]: 'UH',
  [ERROR_CODES.PROXY_UPSTREAM_RESET]: 'UF',
  [ERROR_CODES.PROXY_UPSTREAM_TLS]: 'UF',
  [ERROR_CODES.CLIENT_REQUEST_FAILED]: 'UF',
  [ERROR_CODES.PROXY_UPSTREAM_TIMEOUT]: 'UT',
  [ERROR_CODES.CLIENT_TIMEOUT]: 'UT',
  [ERROR_CODES.TIMEOUT]: 'UT',
  [ERROR_CODES.PROXY_OVERFLOW]: 'UO',
  [ERROR_CODES.PROXY_RATE_LIMITED]: 'RL',
  [ERROR_CODES.PROXY_FAULT_ABORT]: 'FI',
  [ERROR_CODES.PROXY_BAD_REQUEST]: 'DPE',
  [ERROR_CODES.PROXY_ACCESS_DENIED]: 'RBAC',
};

/** The flag of an error code, or undefined. */
export function flagOf(code: string | undefined): ResponseFlag | undefined {
  return code === undefined ? undefined : FLAG_BY_CODE[code];
}

/** The wall clock minus the monotonic one, ms: performance.timeOrigin until a clock step. */
let wallOffsetMs = performance.timeOrigin;
/** A wall clock further than this from Date.now() was stepped (NTP, by hand): anchor again. */
const CLOCK_STEP_MS = 50;

/**
 * The wall-clock time of monotonic instant `monoMs` (performance.now()), with its sub-ms
 * precision: Date.now() alone is whole ms, so a span started 0.4 ms after another in the same
 * ms, or in another process, could not be seen to start, and end, inside it. Every process
 * anchors on its own timeOrigin (its start's wall clock, µs precise), so spans of one host's
 * processes nest as they ran; `dateNowMs` (Date.now()) catches a wall clock stepped since, and
 * the anchor then moves to it.
 */
export function wallClockMs(monoMs: number, dateNowMs: number): number {
  const t = wallOffsetMs + monoMs;
  if (t - dateNowMs <= CLOCK_STEP_MS && dateNowMs - t <= CLOCK_STEP_MS) return t;
  wallOffsetMs = dateNowMs - monoMs;
  return dateNowMs;
}

/** The error code of a local reply's JSON body (`{"error": {"code": ...}}`), if it has one. */
function replyCode(reply: LocalReply): string | undefined {
  const code = (reply.body as { error?: { code?: unknown } } | undefined)?.error?.code;
  return typeof code === 'string' ? code : undefined;
}

/** The parts of the request the record takes from the Exchange when it ends. */
export interface ObservedExchange {
  readonly method: string;
  readonly authority: string | undefined;
  readonly headers: IncomingHttpHeaders;
  readonly socket: DownstreamSocket;
}

/**
 * One request's observation (see the module comment). It is itself the RequestRecord its
 * observers get when the request ends (filled in then), not a copy made per request.
 */
export class ObservedRequest implements RequestRecord {
  readonly #observers: readonly RequestObserver[];
  readonly #startMs = performance.now();
  /** When the last response bytes went to the socket (lastBytes()); undefined: not yet. */
  #lastBytesMs: number | undefined = undefined;
  readonly startTimeMs = wallClockMs(this.#startMs, Date.now());
  /** The target as it came (filters may rewrite the Exchange's). */
  readonly path: string;
  #states: unknown[] | undefined;
  #flags: ResponseFlag[] | undefined;
  responseHeadMs: number | undefined = undefined;
  errorCode: string | undefined = undefined;
  route: string | undefined;
  service: string | undefined;
  cluster: string | undefined;
  endpoint: Endpoint | undefined;
  attempts = 0;
  status = 0;
  responseBytes = 0;
  /** Set when the request ends (ended()). */
  durationMs = 0;
  method = '';
  authority: string | undefined = undefined;
  headers: IncomingHttpHeaders = NO_HEADERS;
  socket: DownstreamSocket = NO_SOCKET;
  requestBytes = 0;

  constructor(observers: readonly RequestObserver[], path: string) {
    this.#observers = observers;
    this.path = path;
  }

  get flags(): readonly ResponseFlag[] {
    return this.#flags ?? NO_FLAGS;
  }

  /** A route matched: the observers' `start`, before any filter. */
  started(x: FilterExchange, route: string): void {
    this.route = route;
    const observers = this.#observers;
    for (let i = 0; i < observers.length; i++) {
      const start = (observers[i] as RequestObserver).start;
      if (start === undefined) continue;
      try {
        // Most starts keep nothing (an unsampled request): no array for them.
        const state: unknown = start.call(observers[i], x);
        if (state !== undefined) (this.#states ??= [])[i] = state;
      } catch {
        // An observer that throws loses its own data, never the request.
      }
    }
  }

  flag(f: ResponseFlag): void {
    const flags = (this.#flags ??= []);
    if (!flags.includes(f)) flags.push(f);
  }

  /** The response head went downstream with `status`. */
  responded(status: number): void {
    this.status = status;
    this.responseHeadMs = performance.now() - this.#startMs;
  }

  /** The engine answered itself. */
  replied(reply: LocalReply): void {
    const code = replyCode(reply);
    this.errorCode = code;
    const f = flagOf(code);
    if (f !== undefined) this.flag(f);
    this.responded(reply.status);
  }

  /**
   * The response's last bytes are about to be written: the request's end, taken before the
   * write so that a caller that reads them cannot end its own span earlier (a write wakes the
   * peer at once, and a busy core can hold this process for ms before it returns).
   */
  lastBytes(): void {
    this.#lastBytesMs = performance.now();
  }

  /** The request ended: this record, complete now, to every observer's `end`. */
  ended(x: ObservedExchange, requestBytes: number): void {
    this.durationMs = (this.#lastBytesMs ?? performance.now()) - this.#startMs;
    this.method = x.method;
    this.authority = x.authority;
    this.headers = x.headers;
    this.socket = x.socket;
    this.requestBytes = requestBytes;
    const observers = this.#observers;
    for (let i = 0; i < observers.length; i++) {
      try {
        (observers[i] as RequestObserver).end(this, this.#states?.[i]);
      } catch {
        // As in started().
      }
    }
  }
}

const NO_FLAGS: readonly ResponseFlag[] = Object.freeze([]);
const NO_HEADERS: IncomingHttpHeaders = Object.freeze({});
/** Before ended(): no socket yet (observers never see it so). */
const NO_SOCKET = Object.freeze({}) as DownstreamSocket;
