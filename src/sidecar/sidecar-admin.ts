/**
 * @module The sidecar's admin listener: `/ready` (200 once it routes and the app is healthy,
 * else 503 with the reason), `/live`, `/metrics`, `/config_dump` (the snapshot in force and its
 * version) and `POST /quitquitquit` (starts the SIGTERM sequence).
 */
import { createServer, type Server } from 'node:http';

/** What the admin listener reads from the running sidecar. */
export interface SidecarAdminSource {
  /** Undefined when ready; else why not (`draining`, `no-snapshot`, `app-unhealthy`...). */
  notReadyReason(): { reason: string; detail?: string } | undefined;
  metricsText(): Promise<string>;
  configDump(): unknown;
  /** Starts the stop sequence; MUST return at once. */
  quit(): void;
}

const json = (body: unknown): string => JSON.stringify(body);

/** The admin HTTP server (not yet listening). */
export function createSidecarAdmin(source: SidecarAdminSource): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const method = req.method ?? 'GET';
    req.resume();
    const send = (status: number, body: string, type = 'application/json'): void => {
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    };
    if (path === '/quitquitquit') {
      if (method !== 'POST') {
        res.setHeader('allow', 'POST');
        send(405, json({ error: { code: 'MESHWORK_ERR_API_ROUTE_NOT_FOUND', path } }));
        return;
      }
      send(200, json({ status: 'stopping' }));
      source.quit();
      return;
    }
    if (path === '/ready' || path === '/health/ready') {
      const not = source.notReadyReason();
      if (not === undefined) send(200, json({ status: 'ready' }));
      else
        send(
          503,
          json({ status: not.reason, ...(not.detail === undefined ? {} : { detail: not.detail }) }),
        );
      return;
    }
    if (path === '/live' || path === '/health/live') {
      send(200, '{"status":"live"}');
      return;
    }
    if (path === '/metrics') {
      source.metricsText().then(
        (text) => send(200, text, 'text/plain; version=0.0.4; charset=utf-8'),
        (err: unknown) => send(500, String(err), 'text/plain'),
      );
      return;
    }
    if (path === '/config_dump') {
      send(200, json(source.configDump()));
      return;
    }
    send(404, json({ error: { code: 'MESHWORK_ERR_API_ROUTE_NOT_FOUND', path } }));
  });
}
