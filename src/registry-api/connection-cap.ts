/**
 * @module The cap on concurrent connections from one client IP to the agent's HTTP API (Consul's
 * `http_max_conns_per_client`): a connection past it is answered 429 with a JSON body and
 * closed, before its request is read.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
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
  if (limit <= 0) return;
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
  // node's HTTP server parses every connection its 'connection' listener is given: the cap
  // stands in front of that listener, so a refused socket never reaches the parser.
  const listeners = server.listeners('connection') as ((socket: Socket) => void)[];
  server.removeAllListeners('connection');
  server.on('connection', (socket: Socket) => {
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
}
