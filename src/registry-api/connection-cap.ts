/**
 * @module The cap on concurrent connections from one client IP to the agent's HTTP API (Consul's
 * `http_max_conns_per_client`): a connection past it is answered 429 with a JSON body and
 * closed, before its request is read.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { Server as TlsServer } from 'node:tls';
import { Counter, type Registry as PromRegistry } from 'prom-client';
import { errors } from '../core/errors.js';
import { toHttpError } from './error-mapping.js';

/**
 * Wraps `server`'s connection handling so each client IP holds at most `limit` connections
 * (0: no cap). Counts refusals in `meshwork_api_connections_rejected_total`.
 */
export function capConnectionsPerClient(
  server: Server,
  limit: number,
  metrics?: PromRegistry,
): void {
  createConnectionCap(limit, metrics)?.(server);
}

/**
 * One cap shared by several servers of the API (plain HTTP and HTTPS): a client IP holds at most
 * `limit` connections across all of them. Answers the function that puts a server under it, or
 * undefined for no cap (0). On an HTTPS server the cap counts connections once their TLS
 * handshake is done, so a refused client reads the 429 over TLS, as any answer.
 */
export function createConnectionCap(
  limit: number,
  metrics?: PromRegistry,
): ((server: Server | TlsServer) => void) | undefined {
  if (limit <= 0) return undefined;
  const rejected = new Counter({
    name: 'meshwork_api_connections_rejected_total',
    help: 'Connections to the HTTP API refused because their client IP held httpMaxConnsPerClient already.',
    registers: metrics === undefined ? [] : [metrics],
  });
  const open = new Map<string, number>();
  const { status, body } = toHttpError(errors.tooManyConnections(limit));
  const text = JSON.stringify(body);
  const answer =
    `HTTP/1.1 ${status} Too Many Requests\r\ncontent-type: application/json; charset=utf-8\r\n` +
    `content-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`;
  return (server) => {
    // node's HTTP server parses every connection its 'connection' listener is given (an HTTPS
    // server: 'secureConnection'): the cap stands in front of that listener, so a refused socket
    // never reaches the parser.
    const event = server instanceof TlsServer ? 'secureConnection' : 'connection';
    const listeners = server.listeners(event) as ((socket: Socket) => void)[];
    server.removeAllListeners(event);
    server.on(event, (socket: Socket) => {
      const ip = socket.remoteAddress ?? '';
      const count = open.get(ip) ?? 0;
      if (count >= limit) {
        rejected.inc();
        socket.on('error', () => socket.destroy());
        // Read (and drop) what the client sent, so closing does not reset the answer away.
        socket.resume();
        socket.end(answer);
        setTimeout(() => socket.destroy(), 1_000).unref();
        return;
      }
      open.set(ip, count + 1);
      socket.once('close', () => {
        const left = (open.get(ip) ?? 1) - 1;
        if (left <= 0) open.delete(ip);
        else open.set(ip, left);
      });
      for (const l of listeners) l.call(server, socket);
    });
  };
}
