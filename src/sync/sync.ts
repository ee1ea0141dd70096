/**
 * @module startSync: a source, the reconcile loop and the agent client wired together, with the
 * admin listener (`/live`, `/ready` once the first full reconcile is applied, `/metrics`).
 */
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { createRegistryClient } from '../client/registry-client.js';
import { registryTlsOf } from '../client/tls-files.js';
import type { Logger } from '../core/logger.js';
import { DockerSource } from './docker-source.js';
import { syncSetName, type SyncOptions } from './options.js';
import { Reconciler } from './reconcile.js';
import type { RuntimeSource } from './source.js';

/** A running sync. */
export interface RunningSync {
  /** The apply set it owns (`docker:<node>`). */
  readonly set: string;
  /** The admin listener's URL, when `admin` is not `off`. */
  readonly adminUrl: string | undefined;
  readonly reconciler: Reconciler;
  /** Stops following the runtime and closes the admin listener; instances stay registered. */
  stop(): Promise<void>;
}

/**
 * Starts a Docker sync with `options` (`source` replaces the Docker source, for another runtime).
 * @example
 * const sync = await startSync(resolveSyncOptions({ env: process.env }), logger, metrics);
 */
export async function startSync(
  options: SyncOptions,
  logger: Logger,
  metrics: Registry,
  source: RuntimeSource = new DockerSource({
    docker: options.docker,
    labelPrefix: options.labelPrefix,
    hostAddress: options.address,
    nodeName: options.nodeName,
    logger,
  }),
): Promise<RunningSync> {
  const client = createRegistryClient({
    addresses: options.registry,
    tls: registryTlsOf(options),
    ...(options.token === undefined ? {} : { token: options.token }),
  });
  const set = syncSetName(source.kind, options.nodeName);
  const reconciler = new Reconciler({
    source,
    client,
    set,
    logger,
    metrics,
    retryMs: options.retryMs,
  });
  const admin =
    options.admin === 'off' ? undefined : await listenAdmin(options.admin, reconciler, metrics);
  reconciler.start();
  return {
    set,
    adminUrl:
      admin === undefined ? undefined : `http://${hostOfAddress(admin.address() as AddressInfo)}`,
    reconciler,
    async stop() {
      await reconciler.stop();
      admin?.close();
      await client.close();
    },
  };
}

async function listenAdmin(hostPort: string, r: Reconciler, metrics: Registry): Promise<Server> {
  const server = createServer((req, res) => {
    const send = (status: number, body: string, type = 'application/json'): void => {
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    };
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/live') send(200, '{"status":"live"}');
    else if (path === '/ready')
      send(r.synced ? 200 : 503, JSON.stringify({ status: r.synced ? 'ready' : 'not synced' }));
    else if (path === '/metrics')
      metrics.metrics().then(
        (text) => send(200, text, metrics.contentType),
        (err: unknown) => send(500, String(err), 'text/plain'),
      );
    else send(404, '{"error":"not found"}');
  });
  const i = hostPort.lastIndexOf(':');
  server.listen(Number(hostPort.slice(i + 1)), hostPort.slice(0, i).replace(/^\[|\]$/g, ''));
  await once(server, 'listening');
  return server;
}

const hostOfAddress = (a: AddressInfo): string =>
  a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
