/** @module The one place where errors become HTTP statuses and JSON error bodies for /api/v1. */
import {
  ERROR_CODES,
  errors,
  isMeshError,
  type ErrorCode,
  type MeshError,
} from '../core/errors.js';
import type { ErrorBody } from '../protocol/api-types.js';
import { LIMITS } from '../protocol/limits.js';

/** The status /api/v1 answers for a MeshError, by code (docs/errors.md lists the same). */
export const STATUS_BY_CODE: Readonly<Partial<Record<ErrorCode, number>>> = {
  [ERROR_CODES.VALIDATION]: 400,
  [ERROR_CODES.MALFORMED_BODY]: 400,
  [ERROR_CODES.BODY_TOO_LARGE]: 413,
  [ERROR_CODES.UNSUPPORTED_MEDIA_TYPE]: 415,
  [ERROR_CODES.ROUTE_NOT_FOUND]: 404,
  [ERROR_CODES.BAD_REQUEST]: 400,
  [ERROR_CODES.HOST_NOT_ALLOWED]: 403,
  [ERROR_CODES.ORIGIN_NOT_ALLOWED]: 403,
  [ERROR_CODES.ACL_DENIED]: 403,
  [ERROR_CODES.TOO_MANY_CONNECTIONS]: 429,
  [ERROR_CODES.REQUEST_TIMEOUT]: 408,
  [ERROR_CODES.URI_TOO_LONG]: 414,
  [ERROR_CODES.HEADERS_TOO_LARGE]: 431,
  [ERROR_CODES.METHOD_NOT_IMPLEMENTED]: 501,
  [ERROR_CODES.SHUTTING_DOWN]: 503,
  [ERROR_CODES.INSTANCE_NOT_FOUND]: 404,
  [ERROR_CODES.KEY_NOT_FOUND]: 404,
  [ERROR_CODES.SESSION_NOT_FOUND]: 404,
  [ERROR_CODES.MESH_RESOURCE_NOT_FOUND]: 404,
  [ERROR_CODES.KV_VALUE_TOO_LARGE]: 413,
  // 507 Insufficient Storage (RFC 4918 §11.5): the request is fine, the store has no room for it.
  [ERROR_CODES.KV_QUOTA_EXCEEDED]: 507,
  [ERROR_CODES.INSTANCE_ID_CONFLICT]: 409,
  [ERROR_CODES.NO_TTL_CHECK]: 409,
  [ERROR_CODES.STORE_UNAVAILABLE]: 503,
  [ERROR_CODES.TIMEOUT]: 504,
  [ERROR_CODES.MESH_PROXY_NOT_CONNECTED]: 404,
  [ERROR_CODES.MESH_EDGE_REPORTERS_FULL]: 429,
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
  // The router's, before any route runs (fastify's frameworkErrors).
  FST_ERR_BAD_URL: {
    status: 400,
    code: ERROR_CODES.BAD_REQUEST,
    message: 'bad request: the URL path is not valid percent-encoding',
  },
  FST_ERR_MAX_PARAM_LENGTH: {
    status: 414,
    code: ERROR_CODES.URI_TOO_LONG,
    message: `a path segment exceeds ${LIMITS.maxParamLength} bytes`,
  },
};

/** A method token then a space: the start of a request line (RFC 9112 3). */
const METHOD = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) /;

/**
 * The error to answer a parse error of node's HTTP parser with (a server 'clientError': the
 * request never reached fastify). `bodyStarted`: a request's head was parsed, so the error
 * happened in its body.
 */
export function clientErrorOf(
  err: { readonly code?: string; readonly rawPacket?: unknown; readonly bytesParsed?: number },
  bodyStarted: boolean,
): MeshError {
  const packet = Buffer.isBuffer(err.rawPacket) ? err.rawPacket.toString('latin1') : '';
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW': {
      // node counts the request line with the headers; a long first line is a long URL.
      const lineEnd = packet.indexOf('\n');
      return METHOD.test(packet) && (lineEnd < 0 || lineEnd > LIMITS.maxUrlBytes)
        ? errors.uriTooLong('the URL', LIMITS.maxUrlBytes)
        : errors.headersTooLarge(LIMITS.maxHeaderBytes);
    }
    case 'HPE_INVALID_METHOD': {
      // The packet may hold earlier (pipelined) requests: read the line the parser stopped in.
      const stop = Math.min(err.bytesParsed ?? 0, packet.length);
      const line = packet.slice(stop > 0 ? packet.lastIndexOf('\n', stop - 1) + 1 : 0);
      const method = METHOD.exec(line)?.[1];
      return method === undefined
        ? errors.badRequest('not an HTTP/1 request line')
        : errors.methodNotImplemented(method.slice(0, 32));
    }
    case 'HPE_INVALID_EOF_STATE':
      return bodyStarted
        ? errors.malformedBody('the connection ended before Content-Length bytes of body')
        : errors.badRequest('the connection ended before the request head did');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return errors.requestTimeout();
    default:
      return errors.badRequest(`malformed request (${err.code ?? 'parse error'})`);
  }
}

/** Maps any error to an HTTP status and the JSON error body. Unknown errors are 500s. */
export function toHttpError(err: unknown): { status: number; body: ErrorBody } {
  if (isMeshError(err)) {
    const status = STATUS_BY_CODE[err.code] ?? 500;
    const field = err.details?.field;
    const problems = err.details?.problems;
    return {
      status,
      body: {
        error: {
          code: err.code,
          message: err.message,
          ...(field === undefined ? {} : { field }),
          ...(Array.isArray(problems) ? { details: { problems } } : {}),
        },
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

/**
 * Whether a failed request is logged as an error (with its stack). A store that cannot write
 * (`MESHWORK_ERR_STORE_UNAVAILABLE`) is not: the store logs each outage once, with a metric,
 * instead of one stack trace per refused write.
 */
export function logsAsError(err: unknown, status: number): boolean {
  return status >= 500 && !isMeshError(err, ERROR_CODES.STORE_UNAVAILABLE);
}
