/** @module The header-edit filter: sets and removes request and response headers of a route. */
import type { Filter, FilterExchange, FilterStatus } from '../../filter.js';
import { removeHeader, type ResponseHeaderList } from '../../headers.js';

export interface HeaderEdits {
  readonly set?: Readonly<Record<string, string>> | undefined;
  readonly remove?: readonly string[] | undefined;
}

export interface HeaderEditFilterOptions {
  readonly request?: HeaderEdits | undefined;
  readonly response?: HeaderEdits | undefined;
}

/** Header names are validated (and lower-cased) by the route schema before they get here. */
class HeaderEditFilter implements Filter {
  readonly name = 'header-edit';
  readonly #reqSet: readonly (readonly [string, string])[];
  readonly #reqRemove: readonly string[];
  readonly #resSet: readonly (readonly [string, string])[];
  readonly #resRemove: readonly string[];

  constructor(options: HeaderEditFilterOptions) {
    this.#reqSet = Object.entries(options.request?.set ?? {});
    this.#reqRemove = options.request?.remove ?? [];
    this.#resSet = Object.entries(options.response?.set ?? {});
    this.#resRemove = options.response?.remove ?? [];
  }

  onRequest(exchange: FilterExchange): FilterStatus {
    for (const name of this.#reqRemove) exchange.removeRequestHeader(name);
    for (const [name, value] of this.#reqSet) exchange.setRequestHeader(name, value);
    return 'continue';
  }

  onResponseHeaders(headers: ResponseHeaderList): void {
    for (const name of this.#resRemove) removeHeader(headers, name);
    for (const [name, value] of this.#resSet) {
      removeHeader(headers, name);
      headers.push(name, value);
    }
  }
}

/** A header-edit filter, or undefined when the options edit nothing. */
export function createHeaderEditFilter(options: HeaderEditFilterOptions): Filter | undefined {
  const empty = (e: HeaderEdits | undefined): boolean =>
    e === undefined || (Object.keys(e.set ?? {}).length === 0 && (e.remove ?? []).length === 0);
  if (empty(options.request) && empty(options.response)) return undefined;
  return new HeaderEditFilter(options);
}
