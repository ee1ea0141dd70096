/**
 * @module Test helpers for the sidecar's control side: a stand-in data path (real listeners:
 * inbound forwards nothing, it answers `inbound`; outbound answers `outbound`) that records the
 * snapshots applied, a small app with a switchable /healthz, and an in-process sidecar.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { silentLogger } from '../../src/core/logger.js';
import type { MeshSnapshot } from '../../src/protocol/mesh/snapshot.js';
import { resolveSidecarOptions } from '../../src/sidecar/options.js';
import {
  startSidecar,
  type RunningSidecar,
  type SidecarDataPath,
  type SidecarDataPathOptions,
  type SidecarDeps,
} from '../../src/sidecar/sidecar.js';

async function serve(hp: string, text: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    req.resume();
    res.end(text);
  });
  const at = hp.lastIndexOf(':');
  server.listen(Number(hp.slice(at + 1)), hp.slice(0, at));
  await once(server, 'listening');
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** A data path stand-in for control-side tests: listeners, recorded snapshots, no routing. */
export interface StandInDataPath extends SidecarDataPath {
  readonly applied: MeshSnapshot[];
  /** Throws from applySnapshot while set (a NACK). */
  refuse: string | undefined;
  readonly calls: string[];
}

export async function startStandInDataPath(o: SidecarDataPathOptions): Promise<StandInDataPath> {
  const inbound = await serve(o.inbound, 'inbound');
  const outbound = await serve(o.outbound, 'outbound');
  const calls: string[] = [];
  const path: StandInDataPath = {
    inboundUrl: inbound.url,
    outboundUrl: outbound.url,
    upstreamUrls: new Map(),
    applied: [],
    refuse: undefined,
    calls,
    applySnapshot(s) {
      if (path.refuse !== undefined) throw new Error(path.refuse);
      path.applied.push(s);
    },
    metricsText: () => Promise.resolve('# stand-in data path\n'),
    async stopInbound() {
      calls.push('stopInbound');
      inbound.server.closeAllConnections();
      await new Promise((r) => inbound.server.close(r));
    },
    async close() {
      calls.push('close');
      outbound.server.closeAllConnections();
      await new Promise((r) => outbound.server.close(r));
      return true;
    },
  };
  return path;
}

/** An app with /healthz answering `healthy ? 200 : 500`, and `app` on every other path. */
export interface TestApp {
  healthy: boolean;
  readonly port: number;
  close(): Promise<void>;
}

export async function startTestApp(): Promise<TestApp> {
  const app = { healthy: true } as TestApp;
  const { server } = await serve('127.0.0.1:0', '');
  server.removeAllListeners('request');
  server.on('request', (req, res) => {
    req.resume();
    if (req.url === '/healthz') res.writeHead(app.healthy ? 200 : 500);
    res.end(req.url === '/healthz' ? '' : 'app');
  });
  return Object.assign(app, {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  });
}

/** A sidecar in-process on port 0 listeners with the stand-in data path; `flags` on top. */
export async function startTestSidecar(
  flags: Record<string, unknown>,
  deps: Partial<SidecarDeps> = {},
): Promise<{ sidecar: RunningSidecar; dataPath: () => StandInDataPath }> {
  let dataPath: StandInDataPath | undefined;
  const options = resolveSidecarOptions({
    flags: {
      inbound: '127.0.0.1:0',
      outbound: '127.0.0.1:0',
      admin: '127.0.0.1:0',
      logLevel: 'silent',
      health: { intervalMs: 100, timeoutMs: 100, failuresBeforeCritical: 1, ttlMs: 1_000 },
      ...flags,
    },
  });
  const sidecar = await startSidecar(options, silentLogger, {
    startDataPath: async (o) => (dataPath = await startStandInDataPath(o)),
    subscriber: { startTimeoutMs: 500, backoff: { initialMs: 50, maxMs: 200 } },
    ...deps,
  });
  return {
    sidecar,
    dataPath: () => {
      if (dataPath === undefined) throw new Error('no data path');
      return dataPath;
    },
  };
}
