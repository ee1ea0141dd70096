/**
 * @module A small service on the Meshwork SDK, shared by the users, orders and payments
 * examples: a node:http server with health endpoints, self-registration with a TTL heartbeat and
 * an HTTP readiness check, calls to other services by name, and a graceful shutdown on SIGTERM.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import {
  createHealthEndpoints,
  createMeshworkClient,
  installGracefulShutdown,
  type MeshworkClient,
} from 'meshwork/client';

export interface ServiceContext {
  readonly client: MeshworkClient;
  /** This instance's id, as registered. */
  readonly id: string;
}

export type Route = (
  req: IncomingMessage,
  body: string,
  ctx: ServiceContext,
) => Promise<{ status?: number; json: unknown }>;

/** Reads a request body as text. */
async function readBody(req: IncomingMessage): Promise<string> {
  let body = '';
  for await (const chunk of req) body += chunk;
  return body;
}

/**
 * Starts the service on `PORT` (0: any free port), registers it with the agent at
 * `MESHWORK_REGISTRY` (default http://127.0.0.1:8500), and prints `listening on <url>`.
 */
export async function runService(name: string, routes: Record<string, Route>): Promise<void> {
  const client = createMeshworkClient({
    registry: (process.env.MESHWORK_REGISTRY ?? 'http://127.0.0.1:8500').split(','),
  });
  const health = createHealthEndpoints();
  const state: { ctx?: ServiceContext } = {}; // set once registered
  const server = createServer((req, res: ServerResponse) => {
    if (health.handle(req, res)) return;
    const route = routes[`${req.method} ${(req.url ?? '/').split('?')[0]}`];
    const context = state.ctx;
    if (route === undefined || context === undefined) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: `no route ${req.method} ${req.url}` }));
      return;
    }
    void readBody(req)
      .then((body) => route(req, body, context))
      .then(
        ({ status = 200, json }) => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(json));
        },
        (err: Error) => {
          res.writeHead(502, { 'content-type': 'application/json' });
          // fetch wraps the reason in `cause` ("fetch failed" alone says little).
          const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
          res.end(JSON.stringify({ error: `${err.message}${cause}` }));
        },
      );
  });
  server.listen(Number(process.env.PORT ?? 0), '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const registration = client.register({
    service: name,
    address: '127.0.0.1',
    port,
    meta: { version: '1.0.0' },
    checks: [
      { ttl: '5s' },
      { http: `http://127.0.0.1:${port}/health/ready`, interval: '1s', role: 'readiness' },
    ],
  });
  state.ctx = { client, id: registration.id };
  health.markStarted();
  installGracefulShutdown({
    registration,
    health,
    servers: [server],
    onShutdown: () => client.close(),
  });
  console.log(`${name} ${registration.id} listening on http://127.0.0.1:${port}`);
}
