/**
 * @module The little bit of plain `node:http` the three sidecar example apps share: no Meshwork
 * import, only what any app has. `serve` answers /healthz and hands every other request to the
 * app; `call` sends a request to another service through the sidecar's outbound listener
 * (`MESHWORK_OUTBOUND`) with `Host: <service>`.
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';

/** What an app's handler answers: a status and a JSON body. */
export interface Answer {
  readonly status: number;
  readonly body: unknown;
}

/** Calls `service` at `path` through the sidecar, passing on `headers`; resolves with its answer. */
export function call(
  service: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const outbound = new URL(process.env['MESHWORK_OUTBOUND'] ?? 'http://127.0.0.1:15001');
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: outbound.hostname,
        port: outbound.port,
        path,
        headers: { ...headers, host: service },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          let body: unknown = text;
          try {
            body = JSON.parse(text);
          } catch {
            // not JSON (an error page): keep the text
          }
          resolve({ status: res.statusCode ?? 0, body });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/**
 * Serves `handler` on 127.0.0.1:$PORT (the sidecar's `--app-port`), /healthz answering 200, and
 * prints `<name> listening on <url>`. SIGTERM (sent by the sidecar) closes it and exits 0.
 */
export function serve(name: string, handler: (req: IncomingMessage) => Promise<Answer>): void {
  const send = (res: ServerResponse, answer: Answer): void => {
    res.writeHead(answer.status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(answer.body));
  };
  const server = createServer((req, res) => {
    req.resume();
    if (req.url === '/healthz') return send(res, { status: 200, body: { status: 'ok' } });
    handler(req).then(
      (answer) => send(res, answer),
      (err: unknown) => send(res, { status: 502, body: { error: String(err) } }),
    );
  });
  server.listen(Number(process.env['PORT'] ?? 0), '127.0.0.1', () => {
    const { port } = server.address() as { port: number };
    console.log(`${name} listening on http://127.0.0.1:${port}`);
  });
  process.once('SIGTERM', () => {
    server.close(() => process.exit(0));
    server.closeIdleConnections();
  });
}

/** The request's `x-canary` header, to pass on down the chain (empty when it has none). */
export function canary(req: IncomingMessage): Record<string, string> {
  const value = req.headers['x-canary'];
  return typeof value === 'string' ? { 'x-canary': value } : {};
}
