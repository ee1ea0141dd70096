/**
 * @module The one place the proxy maps an error to an HTTP reply: a status and a JSON body
 * `{"error": {"code", "message", ...details}}` that says why (no route, no healthy instance,
 * upstream reset, timeout, a request the parser refused).
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { ERROR_CODES, errors, isMeshError, type MeshError } from '../core/errors.js';
import type { ProxyResponse } from './contract.js';
import type { LocalReply } from './filter.js';
import type { MatchInput } from './route-table.js';

/** The status the proxy answers for a MeshError, by code (docs/errors.md lists the same). */
export const STATUS_BY_CODE: Readonly<Record<string, number>> = {
  [ERROR_CODES.PROXY_ROUTE_NOT_FOUND]: 404,
  [ERROR_CODES.PROXY_NO_HEALTHY_UPSTREAM]: 503,
  [ERROR_CODES.PROXY_UPSTREAM_RESET]: 502,
  [ERROR_CODES.PROXY_UPSTREAM_TIMEOUT]: 504,
  [ERROR_CODES.PROXY_BAD_REQUEST]: 400,
  [ERROR_CODES.PROXY_EGRESS_DENIED]: 502,
  [ERROR_CODES.PROXY_OVERFLOW]: 503,
  [ERROR_CODES.PROXY_RATE_LIMITED]: 429,
  [ERROR_CODES.PROXY_UPSTREAM_TLS]: 503,
  [ERROR_CODES.PROXY_ACCESS_DENIED]: 403,
  [ERROR_CODES.CLIENT_REQUEST_FAILED]: 503,
  [ERROR_CODES.CLIENT_TIMEOUT]: 504,
  [ERROR_CODES.TIMEOUT]: 504,
};

/**
 * A downstream server's parse error codes (node's parser's `HPE_*`, Http1Server's and
 * node:http's own) -> the status answered; the rest are 400.
 */
export const PARSE_STATUS: Readonly<Record<string, number>> = {
  HPE_HEADER_OVERFLOW: 431,
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 413,
  // The head did not come within headersTimeout (Http1Server's code, then node:http's).
  ERR_HEADERS_TIMEOUT: 408,
  ERR_HTTP_REQUEST_TIMEOUT: 408,
};

/** The 404 of a request no route matched. */
export function routeNotFound(input: MatchInput): MeshError {
  return errors.proxyRouteNotFound(input.method, input.host, input.path);
}

/** An upstream attempt's failure as the error answered for it (a MeshError stays itself). */
export function upstreamFailure(cluster: string, err: unknown): MeshError {
  if (isMeshError(err)) return err;
  const e = err as { code?: unknown; message?: unknown };
  const reason = typeof e.code === 'string' ? e.code : String(e.message ?? err);
  return errors.proxyUpstreamReset(cluster, reason, err);
}

/** The reply for a request the downstream server refused to parse (its clientError's `code`). */
export function clientErrorReply(code: string | undefined): LocalReply {
  const reply = replyFor(errors.proxyBadRequest(code ?? 'malformed request'));
  return { ...reply, status: PARSE_STATUS[code ?? ''] ?? reply.status };
}

/** The reply for an error; anything unmapped is a 500 whose details stay out of the body. */
export function replyFor(err: unknown): LocalReply {
  if (isMeshError(err)) {
    const status = STATUS_BY_CODE[err.code];
    if (status !== undefined) {
      return { status, body: { error: { code: err.code, message: err.message, ...err.details } } };
    }
  }
  return {
    status: 500,
    body: { error: { code: ERROR_CODES.INTERNAL, message: 'internal proxy error' } },
  };
}

/**
 * Sends a local reply as JSON (the connection is cut when the head already went out); answers
 * the body bytes sent.
 */
export function sendLocalReply(res: ProxyResponse, reply: LocalReply): number {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return 0;
  }
  if (reply.raw !== undefined) {
    res.writeHead(reply.status, undefined, reply.raw.headers.slice());
    res.end(reply.raw.body);
    return reply.raw.body.length;
  }
  const body = JSON.stringify(reply.body);
  const headers: string[] = [];
  const extra = reply.headers;
  if (extra !== undefined) {
    for (const name in extra) {
      const lower = name.toLowerCase();
      if (lower !== 'content-type' && lower !== 'content-length')
        headers.push(name, extra[name] as string);
    }
  }
  const bytes = Buffer.byteLength(body);
  headers.push('content-type', 'application/json', 'content-length', String(bytes));
  res.writeHead(reply.status, undefined, headers);
  res.end(body);
  return bytes;
}

/**
 * Writes a local reply on a raw socket and closes it: where no response object exists (an
 * Upgrade request that cannot be tunnelled, a request the parser refused).
 */
export function rawReply(socket: Duplex, reply: LocalReply): void {
  const body = JSON.stringify(reply.body);
  let extra = '';
  for (const [name, value] of Object.entries(reply.headers ?? {})) {
    const lower = name.toLowerCase();
    if (lower !== 'content-type' && lower !== 'content-length' && lower !== 'connection')
      extra += `${name}: ${value}\r\n`;
  }
  socket.end(
    `HTTP/1.1 ${reply.status} ${STATUS_CODES[reply.status] ?? ''}\r\n` +
      `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
      `${extra}connection: close\r\n\r\n${body}`,
  );
}
