/** @module Classifying transport failures: which errors are connect errors, and which prove the request never left. */
import { isMeshError } from '../../core/errors.js';

/**
 * Codes where the connection was never established, so no byte of the request reached the
 * upstream: retrying is safe for any method (gRPC calls this a transparent retry).
 */
const NEVER_SENT_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENETDOWN',
  'EADDRNOTAVAIL',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/**
 * Codes where the connection failed before a response started; the request may have been
 * (partly) sent, so only idempotent requests are retried.
 */
const CONNECT_CODES: ReadonlySet<string> = new Set([
  ...NEVER_SENT_CODES,
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'UND_ERR_SOCKET',
]);

/** Causes are followed this deep (fetch wraps undici's error in a TypeError, and so on). */
const MAX_DEPTH = 5;

function findCode(err: unknown, codes: ReadonlySet<string>, depth: number): boolean {
  if (typeof err !== 'object' || err === null || depth > MAX_DEPTH) return false;
  // A MeshError is classified already, by its `retryable`: one that wraps a refused connection
  // (a spent retry budget, say) must not be retried again as a connect error.
  if (isMeshError(err)) return false;
  const e = err as { code?: unknown; cause?: unknown; errors?: unknown };
  if (typeof e.code === 'string' && codes.has(e.code)) return true;
  // Node 20's happy eyeballs (autoSelectFamily) fails with an AggregateError of one error per
  // address tried.
  if (Array.isArray(e.errors) && e.errors.some((x) => findCode(x, codes, depth + 1))) return true;
  return findCode(e.cause, codes, depth + 1);
}

/**
 * True when `err` is a transport failure before any response: refused, reset, unreachable, DNS
 * failure, connect timeout (Node `E*` codes and undici's `UND_ERR_CONNECT_TIMEOUT` and
 * `UND_ERR_SOCKET`), looked for through `cause` chains and AggregateErrors. Call it only for
 * errors raised before the response head: a reset while reading a body is not retryable.
 * @example isConnectError(await request('http://127.0.0.1:1').catch((e) => e)) // true
 */
export function isConnectError(err: unknown): boolean {
  return findCode(err, CONNECT_CODES, 0);
}

/** True when `err` proves the request never reached the upstream (see NEVER_SENT_CODES). */
export function isNeverSentError(err: unknown): boolean {
  return findCode(err, NEVER_SENT_CODES, 0);
}
