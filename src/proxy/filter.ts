/**
 * @module The filter contract of the proxy engine: filters are made once per route from
 * validated config and run per request; they edit the exchange or answer a local reply, and
 * never throw (Envoy's filter statuses).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { ResponseHeaderList } from './headers.js';
import type { DownstreamSocket } from './peer-identity.js';

/** A reply the proxy sends itself, without asking an upstream. */
export interface LocalReply {
  readonly status: number;
  /** Sent as JSON. */
  readonly body: unknown;
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * A reply given as it is instead of JSON (a cached response): its status, head (a flat
   * name/value list, content-length included) and body. `body` and `headers` are then unused.
   */
  readonly raw?: { readonly headers: readonly string[]; readonly body: Buffer } | undefined;
}

/** Hold the request `delayMs` ms, then go on with the next filter, or answer `reply`. */
export interface FilterDelay {
  readonly delayMs: number;
  readonly reply?: LocalReply | undefined;
}

/**
 * What a filter returns from onRequest: go on to the next filter (and the upstream), reply, or
 * hold the request a while first (fault injection's delay).
 */
export type FilterStatus = 'continue' | LocalReply | FilterDelay;

/** Whether a FilterStatus holds the request. */
export function isDelay(status: LocalReply | FilterDelay): status is FilterDelay {
  return 'delayMs' in status;
}

/** Sees an upstream response's body as it streams downstream (a cache filling itself). */
export interface ResponseTap {
  onData(chunk: Buffer): void;
  /** The body ended complete. Not called when it was cut. */
  onEnd(): void;
}

/** The parts of one request a filter may read and change. */
export interface FilterExchange {
  readonly method: string;
  /** The downstream connection (its peer's address; `peerIdentity(socket)` when verified). */
  readonly socket: DownstreamSocket;
  /** The downstream request's headers (read-only). */
  readonly headers: IncomingHttpHeaders;
  /**
   * The authority the request is for, as sent: its Host, or an absolute-form target's (which
   * replaces the Host upstream). Absent where the exchange does not know it.
   */
  readonly authority?: string | undefined;
  /** The path (with query) the upstream will see; filters may rewrite it. */
  path: string;
  /** Sets a request header for the upstream (replacing the downstream's value). */
  setRequestHeader(lowerName: string, value: string): void;
  /** Adds a request header for the upstream (after the downstream's values, if kept). */
  addRequestHeader(lowerName: string, value: string): void;
  /** Drops a downstream request header. */
  removeRequestHeader(lowerName: string): void;
}

/**
 * A filter. Created once per route by its factory from validated options; the engine calls
 * `onRequest` once per request before the upstream is picked, and `onResponseHeaders` once per
 * upstream response before its head is sent downstream. Both MUST NOT throw and MUST NOT do
 * I/O; onRequest answers 'continue' or a LocalReply. Keep them free of per-request allocation
 * where possible: precompute in the factory.
 */
export interface Filter {
  readonly name: string;
  onRequest?(exchange: FilterExchange): FilterStatus;
  /** `headers` is the upstream's head as a flat name/value list; edit it in place. */
  onResponseHeaders?(headers: ResponseHeaderList): void;
  /**
   * Called after onResponseHeaders with the request it answers and the status: may edit the
   * head too, and answer a tap that sees the body go downstream. MUST NOT throw.
   */
  onResponse?(
    exchange: FilterExchange,
    status: number,
    headers: ResponseHeaderList,
  ): ResponseTap | undefined;
}
