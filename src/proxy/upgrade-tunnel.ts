/**
 * @module tunnelUpgrade: an Upgrade request (WebSocket) through the proxy engine. The handshake
 * goes to one instance through node:http (undici's pools are for request/response), then bytes
 * flow both ways until either side closes.
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { errors, isMeshError } from '../core/errors.js';
import type { DownstreamSocket, ExchangeContext, ProxyRequestHead } from './contract.js';
import { rawReply, replyFor, routeNotFound, upstreamFailure } from './error-reply.js';
import { isDelay, type FilterExchange } from './filter.js';
import {
  addRequestHeaderExtra,
  stripResponseHeaders,
  upstreamRequestHeaders,
  type RequestHeaderExtras,
} from './headers.js';

/**
 * Tunnels one Upgrade request: match, filters, one instance of the route's cluster, then the
 * two sockets piped together. Not retried: an upgrade is not idempotent in general. Never
 * throws: a refusal is a JSON reply written on `socket`, which is then closed.
 */
export function tunnelUpgrade(
  engine: ExchangeContext,
  req: ProxyRequestHead,
  socket: Duplex,
  head: Buffer,
): void {
  socket.on('error', () => socket.destroy());
  const matched = engine.match(req);
  if (isMeshError(matched)) {
    rawReply(socket, replyFor(matched));
    return;
  }
  const { route, input, target } = matched;
  if (route === undefined) {
    rawReply(socket, replyFor(routeNotFound(input)));
    return;
  }
  const exchange = new UpgradeExchange(req, target.path, target.host);
  const cluster = route.pickCluster();
  // The listener's own filters first, as for a request (a sidecar's inbound side: the caller's
  // verified identity headers, its policy hook, its rate limit): a tunnel is no way around them.
  const filters = [
    ...(engine.options.filters ?? []),
    ...cluster.chain(route.filtersFor?.(cluster) ?? route.filters),
  ];
  for (const f of filters) {
    const status = f.onRequest?.(exchange);
    if (status === undefined || status === 'continue') continue;
    // A fault delay does not hold a tunnel (its abort, if drawn, still answers).
    if (isDelay(status)) {
      if (status.reply === undefined) continue;
      rawReply(socket, status.reply);
      return;
    }
    rawReply(socket, status);
    return;
  }
  const options = engine.options;
  const connectTimeoutMs = cluster.connectTimeoutMs ?? options.connectTimeoutMs;
  const go = (): void => {
    const endpoint = cluster.pick(undefined, undefined);
    if (endpoint === undefined) {
      rawReply(socket, replyFor(errors.proxyNoHealthyUpstream(cluster.name, cluster.total)));
      return;
    }
    const headers = upstreamRequestHeaders(
      req.rawHeaders,
      target,
      exchange.extra,
      exchange.remove,
      true,
    );
    // mTLS to a sidecar: the handshake's connection is the transport's (verified TLS).
    const transport = cluster.transportOf(endpoint);
    const upstream = httpRequest({
      host: endpoint.address,
      port: endpoint.port,
      ...(transport === undefined
        ? {}
        : { createConnection: () => transport.connect(endpoint.address, endpoint.port) as Socket }),
      method: req.method,
      path: exchange.path,
      headers,
      timeout: connectTimeoutMs,
    });
    upstream.once('upgrade', (ures, usocket, uhead) => {
      cluster.outliers.report(endpoint.id, true);
      upstream.setTimeout(0);
      usocket.setTimeout(0);
      let headText = `HTTP/1.1 ${ures.statusCode ?? 101} ${ures.statusMessage ?? 'Switching Protocols'}\r\n`;
      const raw = ures.rawHeaders;
      for (let i = 0; i < raw.length; i += 2) headText += `${raw[i]}: ${raw[i + 1]}\r\n`;
      socket.write(`${headText}\r\n`);
      if (uhead.length > 0) socket.write(uhead);
      if (head.length > 0) usocket.write(head);
      usocket.on('error', () => socket.destroy());
      socket.on('close', () => usocket.destroy());
      usocket.on('close', () => socket.destroy());
      usocket.pipe(socket);
      socket.pipe(usocket);
    });
    upstream.once('response', (ures) => {
      // The upstream declined the upgrade: pass its answer on as a plain response.
      cluster.outliers.report(endpoint.id, (ures.statusCode ?? 500) < 500);
      const headers = stripResponseHeaders(ures.rawHeaders.slice());
      let headText = `HTTP/1.1 ${ures.statusCode ?? 502} ${ures.statusMessage ?? ''}\r\n`;
      for (let i = 0; i < headers.length; i += 2)
        headText += `${headers[i]}: ${headers[i + 1]}\r\n`;
      socket.write(`${headText}connection: close\r\n\r\n`);
      ures.pipe(socket);
    });
    upstream.once('timeout', () =>
      upstream.destroy(errors.proxyUpstreamTimeout(cluster.name, connectTimeoutMs)),
    );
    upstream.once('error', (err) => {
      cluster.outliers.report(endpoint.id, false);
      rawReply(socket, replyFor(upstreamFailure(cluster.name, err)));
    });
    socket.once('close', () => upstream.destroy());
    upstream.end();
  };
  if (cluster.loaded) go();
  else
    options.ready(cluster).then(
      (found) => {
        if (found) go();
        else rawReply(socket, replyFor(routeNotFound(input)));
      },
      (err: unknown) => rawReply(socket, replyFor(err as Error)),
    );
}

/** The FilterExchange of an Upgrade request. */
class UpgradeExchange implements FilterExchange {
  readonly method: string;
  readonly socket: DownstreamSocket;
  readonly headers: IncomingHttpHeaders;
  readonly authority: string;
  path: string;
  extra: RequestHeaderExtras | undefined;
  remove: Set<string> | undefined;
  constructor(req: ProxyRequestHead, path: string, authority: string) {
    this.method = req.method ?? 'GET';
    this.socket = req.socket;
    this.headers = req.headers;
    this.authority = authority;
    this.path = path;
  }
  setRequestHeader(name: string, value: string): void {
    (this.remove ??= new Set()).add(name);
    (this.extra ??= {})[name] = value;
  }
  addRequestHeader(name: string, value: string): void {
    this.extra = addRequestHeaderExtra(this.extra, name, value);
  }
  removeRequestHeader(name: string): void {
    (this.remove ??= new Set()).add(name);
  }
}
