/** @module The one place where errors become HTTP statuses and JSON error bodies for /api/v1. */
import { ERROR_CODES, isMeshError, type ErrorCode } from '../core/errors.js';
import type { ErrorBody } from '../protocol/api-types.js';
import { LIMITS } from '../protocol/limits.js';

/** The status /api/v1 answers for a MeshError, by code (docs/errors.md lists the same). */
export const STATUS_BY_CODE: Readonly<Partial<Record<ErrorCode, number>>> = {
  [ERROR_CODES.VALIDATION]: 400,
  [ERROR_CODES.MALFORMED_BODY]: 400,
  [ERROR_CODES.BODY_TOO_LARGE]: 413,
  [ERROR_CODES.UNSUPPORTED_MEDIA_TYPE]: 415,
  [ERROR_CODES.ROUTE_NOT_FOUND]: 404,
  [ERROR_CODES.INSTANCE_NOT_FOUND]: 404,
  [ERROR_CODES.KEY_NOT_FOUND]: 404,
  [ERROR_CODES.KV_VALUE_TOO_LARGE]: 413,
  // 507 Insufficient Storage (RFC 4918 §11.5): the request is fine, the store has no room for it.
  [ERROR_CODES.KV_QUOTA_EXCEEDED]: 507,
  [ERROR_CODES.INSTANCE_ID_CONFLICT]: 409,
  [ERROR_CODES.NO_TTL_CHECK]: 409,
  [ERROR_CODES.STORE_UNAVAILABLE]: 503,
  [ERROR_CODES.TIMEOUT]: 504,
};

/** Fastify's own errors that reach the handler before ours run: the status and code answered. */
export const FASTIFY_ERRORS: Readonly<
  Record<string, { status: number; code: ErrorCode; message: string }>
> = {
  FST_ERR_CTP_BODY_TOO_LARGE: {
    status: 413,
    code: ERROR_CODES.BODY_TOO_LARGE,
    message: `body exceeds ${LIMITS.maxBodyBytes} bytes`,
  },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    status: 415,
    code: ERROR_CODES.UNSUPPORTED_MEDIA_TYPE,
    message: 'unsupported content type: send application/json',
  },
  FST_ERR_CTP_EMPTY_JSON_BODY: {
    status: 400,
    code: ERROR_CODES.MALFORMED_BODY,
    message: 'malformed body: empty',
  },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: {
    status: 400,
    code: ERROR_CODES.MALFORMED_BODY,
    message: 'malformed body: content-length does not match the body',
  },
};

/** Maps any error to an HTTP status and the JSON error body. Unknown errors are 500s. */
export function toHttpError(err: unknown): { status: number; body: ErrorBody } {
  if (isMeshError(err)) {
    const status = STATUS_BY_CODE[err.code] ?? 500;
    const field = err.details?.field;
    return {
      status,
      body: {
        error: { code: err.code, message: err.message, ...(field === undefined ? {} : { field }) },
      },
    };
  }
  const fcode = (err as { code?: unknown } | null)?.code;
  if (typeof fcode === 'string') {
    const known = FASTIFY_ERRORS[fcode];
    if (known !== undefined) {
      return {
        status: known.status,
        body: { error: { code: known.code, message: known.message } },
      };
    }
    const statusCode = (err as { statusCode?: unknown }).statusCode;
    if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
      return {
        status: statusCode,
        body: { error: { code: ERROR_CODES.MALFORMED_BODY, message: (err as Error).message } },
      };
    }
  }
  return {
    status: 500,
    body: { error: { code: ERROR_CODES.INTERNAL, message: 'internal error' } },
  };
}
