/**
 * @module The filter contract of the proxy engine: filters are made once per route from
 * validated config and run per request; they edit the exchange or answer a local reply, and
 * never throw (Envoy's filter statuses).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { ResponseHeaderList } from './headers.js';

/** A reply the proxy sends itself, without asking an upstream. */
export interface LocalReply {
  readonly status: number;
  /** Sent as JSON. */
  readonly body: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

/** What a filter returns from onRequest: go on to the next filter (and the upstream), or reply. */
export type FilterStatus = 'continue' | LocalReply;

/** The parts of one request a filter may read and change. */
export interface FilterExchange {
  readonly method: string;
  /** The downstream request's headers (read-only). */
  readonly headers: IncomingHttpHeaders;
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
}
