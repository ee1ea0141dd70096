/** @module The prefix-rewrite filter: replaces a route's matched path prefix before forwarding. */
import type { Filter, FilterExchange, FilterStatus } from '../../filter.js';

export interface PrefixRewriteFilterOptions {
  /** The prefix the route matched on. */
  readonly prefix: string;
  /** What replaces it. */
  readonly replacement: string;
  /** The route matched its prefix case-insensitively (Istio's ignoreUriCase). */
  readonly ignoreCase?: boolean | undefined;
}

class PrefixRewriteFilter implements Filter {
  readonly name = 'prefix-rewrite';
  readonly #prefix: string;
  readonly #replacement: string;
  readonly #ignoreCase: boolean;

  constructor(options: PrefixRewriteFilterOptions) {
    this.#ignoreCase = options.ignoreCase === true;
    this.#prefix = this.#ignoreCase ? options.prefix.toLowerCase() : options.prefix;
    this.#replacement = options.replacement;
  }

  onRequest(exchange: FilterExchange): FilterStatus {
    const path = exchange.path;
    const head = path.slice(0, this.#prefix.length);
    if ((this.#ignoreCase ? head.toLowerCase() : head) !== this.#prefix) return 'continue';
    let rest = path.slice(this.#prefix.length);
    // "/api" -> "/" on "/api/x" must give "/x", not "//x".
    if (this.#replacement.endsWith('/') && rest.startsWith('/')) rest = rest.slice(1);
    exchange.path = this.#replacement + rest;
    return 'continue';
  }
}

/** @example createPrefixRewriteFilter({ prefix: '/api/orders', replacement: '/orders' }) */
export function createPrefixRewriteFilter(options: PrefixRewriteFilterOptions): Filter {
  return new PrefixRewriteFilter(options);
}
