/** @module The header-edit filter: sets, adds and removes request and response headers of a route. */
import type { Filter, FilterExchange, FilterStatus } from '../../filter.js';
import { removeHeader, type ResponseHeaderList } from '../../headers.js';

export interface HeaderEdits {
  /** Replace any value the message had. */
  readonly set?: Readonly<Record<string, string>> | undefined;
  /** Append a value, keeping the message's own. */
  readonly add?: Readonly<Record<string, string>> | undefined;
  readonly remove?: readonly string[] | undefined;
}

export interface HeaderEditFilterOptions {
  readonly request?: HeaderEdits | undefined;
  readonly response?: HeaderEdits | undefined;
}

type Pairs = readonly (readonly [string, string])[];

/**
 * Header names are validated (and lower-cased) by the route schema or the snapshot conversion
 * before they get here. Order per message: remove, then set, then add (Envoy's).
 */
class HeaderEditFilter implements Filter {
  readonly name = 'header-edit';
  readonly #reqSet: Pairs;
  readonly #reqAdd: Pairs;
  readonly #reqRemove: readonly string[];
  readonly #resSet: Pairs;
  readonly #resAdd: Pairs;
  readonly #resRemove: readonly string[];

  constructor(options: HeaderEditFilterOptions) {
    this.#reqSet = Object.entries(options.request?.set ?? {});
    this.#reqAdd = Object.entries(options.request?.add ?? {});
    this.#reqRemove = options.request?.remove ?? [];
    this.#resSet = Object.entries(options.response?.set ?? {});
    this.#resAdd = Object.entries(options.response?.add ?? {});
    this.#resRemove = options.response?.remove ?? [];
  }

  onRequest(exchange: FilterExchange): FilterStatus {
    for (const name of this.#reqRemove) exchange.removeRequestHeader(name);
    for (const [name, value] of this.#reqSet) exchange.setRequestHeader(name, value);
    for (const [name, value] of this.#reqAdd) exchange.addRequestHeader(name, value);
    return 'continue';
  }

  onResponseHeaders(headers: ResponseHeaderList): void {
    for (const name of this.#resRemove) removeHeader(headers, name);
    for (const [name, value] of this.#resSet) {
      removeHeader(headers, name);
      headers.push(name, value);
    }
    for (const [name, value] of this.#resAdd) headers.push(name, value);
  }
}

/** A header-edit filter, or undefined when the options edit nothing. */
export function createHeaderEditFilter(options: HeaderEditFilterOptions): Filter | undefined {
  const empty = (e: HeaderEdits | undefined): boolean =>
    e === undefined ||
    (Object.keys(e.set ?? {}).length === 0 &&
      Object.keys(e.add ?? {}).length === 0 &&
      (e.remove ?? []).length === 0);
  if (empty(options.request) && empty(options.response)) return undefined;
  return new HeaderEditFilter(options);
}
