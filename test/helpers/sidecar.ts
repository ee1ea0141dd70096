/** @module Test helpers for the sidecar: a small app with a switchable /healthz, and an in-process sidecar. */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { silentLogger } from '../../src/core/logger.js';
import type { InstanceDto } from '../../src/protocol/api-types.js';
import { fakeInstance } from '../../src/testing/fake-mesh-catalog.js';
import { resolveSidecarOptions } from '../../src/sidecar/options.js';
import type { SidecarProxyOptions } from '../../src/sidecar/sidecar-proxy.js';
import { startSidecar, type RunningSidecar, type SidecarDeps } from '../../src/sidecar/sidecar.js';

/** An app with /healthz answering `healthy ? 200 : 500`, and `app` on every other path. */
export interface TestApp {
  healthy: boolean;
  readonly port: number;
  close(): Promise<void>;
}

export async function startTestApp(): Promise<TestApp> {
  const app = { healthy: true } as TestApp;
  const server = createServer((req, res) => {
    req.resume();
    if (req.url === '/healthz') res.writeHead(app.healthy ? 200 : 500);
    res.end(req.url === '/healthz' ? '' : 'app');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return Object.assign(app, {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  });
}

/** A sidecar in-process, its listeners on port 0, with fast health checks; `flags` on top. */
export async function startTestSidecar(
  flags: Record<string, unknown>,
  deps: SidecarDeps = {},
): Promise<RunningSidecar> {
  const options = resolveSidecarOptions({
    flags: {
      inbound: '127.0.0.1:0',
      outbound: '127.0.0.1:0',
      admin: '127.0.0.1:0',
      logLevel: 'silent',
      health: { intervalMs: 100, timeoutMs: 100, failuresBeforeCritical: 1, ttlMs: 1_000 },
      mtlsStartTimeoutMs: 500,
      ...flags,
    },
  });
  return startSidecar(options, silentLogger, {
    subscriber: { startTimeoutMs: 500, backoff: { initialMs: 50, maxMs: 200 } },
    identity: { backoff: { baseMs: 50, maxMs: 200 } },
    ...deps,
  });
}

/** An in-process sidecar proxy's options for tests: `orders`, every listener on a free port. */
export const SIDECAR_PROXY_BASE: SidecarProxyOptions = Object.freeze({
  service: 'orders',
  namespace: 'default',
  appHost: '127.0.0.1',
  appPort: 1,
  inbound: '127.0.0.1:0',
  outbound: '127.0.0.1:0',
  upstreams: [],
  connectTimeoutMs: 1_000,
  requestTimeoutMs: 5_000,
  drainTimeoutMs: 2_000,
});

/** The catalog's instance of `service` at an in-process sidecar's inbound listener. */
export function instanceAtSidecar(
  id: string,
  service: string,
  sidecar: { readonly inboundUrl: string },
  meta: Record<string, string> = {},
): InstanceDto {
  const url = new URL(sidecar.inboundUrl);
  return fakeInstance(id, service, { address: url.hostname, port: Number(url.port), meta });
}
