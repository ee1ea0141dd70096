/** @module httpError: the Errors the HTTP/1 transport raises, with a node-style `code`. */

/**
 * An Error with node's `code` (the parser's `HPE_*`, node's `ERR_*`/`E*` ones, or ours), the
 * way the retry policy and the gateway's clientError handler classify failures.
 */
export function httpError(message: string, code: string): Error & { code: string } {
  return Object.assign(new Error(message), { code });
}
