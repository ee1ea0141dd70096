/**
 * @module The path-rewrite filter: replaces a request's whole path (the query kept) before
 * forwarding; Istio's `rewrite.uri` on a route matched by exact path or regex.
 */
import type { Filter, FilterExchange, FilterStatus } from '../../filter.js';

export interface PathRewriteFilterOptions {
  /** The path the upstream sees. */
  readonly path: string;
}

class PathRewriteFilter implements Filter {
  readonly name = 'path-rewrite';
  readonly #path: string;

  constructor(options: PathRewriteFilterOptions) {
    this.#path = options.path;
  }

  onRequest(exchange: FilterExchange): FilterStatus {
    const q = exchange.path.indexOf('?');
    exchange.path = q === -1 ? this.#path : this.#path + exchange.path.slice(q);
    return 'continue';
  }
}

/** @example createPathRewriteFilter({ path: '/v2/health' }) */
export function createPathRewriteFilter(options: PathRewriteFilterOptions): Filter {
  return new PathRewriteFilter(options);
}
