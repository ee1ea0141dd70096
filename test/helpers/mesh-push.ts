/**
 * @module Test helpers for the push protocol: a snapshot source the test drives, an agent HTTP
 * server (the real one, on port 0) with the push routes on it, and a raw NDJSON stream reader.
 */
import type { AddressInfo } from 'node:net';
import { Registry as PromRegistry } from 'prom-client';
import { request } from 'undici';
import { arrivals } from './arrivals.js';
import type { MeshSubscriber, MeshSubscriberEvents } from '../../src/client/mesh-subscriber.js';
import type { Clock } from '../../src/core/clock.js';
import type { FastifyInstance } from 'fastify';
import type { AgentMember } from '../../src/protocol/api-types.js';
import type { MeshSnapshot, ProxyIdentity, PushFrame } from '../../src/protocol/mesh/snapshot.js';
import type { SnapshotSource } from '../../src/control-plane/contract.js';
import { createPushServer, type PushServer } from '../../src/control-plane/push/push-server.js';
import { createRegistry, type Registry } from '../../src/registry/registry.js';
import { createMemoryCatalogStore } from '../../src/registry/store/memory/memory-catalog-store.js';
import { createApiServer } from '../../src/registry-api/server.js';

/** A snapshot for `proxy` at `version`, with one route whose name is `route` (default `r`). */
export function snapshotOf(proxy: ProxyIdentity, version: string, route = 'r'): MeshSnapshot {
  return {
    version,
    index: 1,
    proxy,
    routes: [
      {
        name: `default/${route}/0`,
        hosts: ['*'],
        match: [],
        backends: [{ cluster: 'web', weight: 100 }],
      },
    ],
    clusters: [{ name: 'web', service: 'web', endpoints: [] }],
    egress: { mode: 'ALLOW_ANY' },
  };
}

/**
 * A SnapshotSource the test drives: every proxy gets the snapshot of the current `version`
 * (`publish` changes it and tells every watcher), as the control plane's contract says (the
 * current one during `watch`, then one per new version).
 */
export class DrivenSnapshotSource implements SnapshotSource {
  #version: string;
  #route = 'r';
  readonly #watchers = new Set<{
    proxy: ProxyIdentity;
    on: (s: MeshSnapshot) => void;
  }>();

  constructor(version = 'v1') {
    this.#version = version;
  }

  get watchers(): number {
    return this.#watchers.size;
  }

  /** Gives every proxy the snapshot of `version` (with routes named after `route`). */
  publish(version: string, route = this.#route): void {
    this.#version = version;
    this.#route = route;
    for (const w of [...this.#watchers]) w.on(snapshotOf(w.proxy, version, route));
  }

  watch(proxy: ProxyIdentity, onSnapshot: (snapshot: MeshSnapshot) => void): () => void {
    const w = { proxy, on: onSnapshot };
    this.#watchers.add(w);
    onSnapshot(snapshotOf(proxy, this.#version, this.#route));
    return () => this.#watchers.delete(w);
  }
}

export interface PushAgent {
  readonly url: string;
  readonly port: number;
  readonly app: FastifyInstance;
  readonly push: PushServer;
  readonly registry: Registry;
  readonly metrics: PromRegistry;
  close(): Promise<void>;
}

/**
 * Starts the agent's HTTP server (createApiServer, the real one: request guard, error shapes)
 * on 127.0.0.1 (port 0 unless given) with the push routes on it, fed by `source`.
 */
export async function startPushAgent(opts: {
  source: SnapshotSource;
  nodeName?: string;
  port?: number;
  clock?: Clock;
  pingIntervalMs?: number;
  members?: () => Promise<readonly AgentMember[]>;
  fanoutTimeoutMs?: number;
  /** Asked before each ACK: true answers it 503 instead (an agent that failed to take it). */
  failAck?: () => boolean;
}): Promise<PushAgent> {
  const nodeName = opts.nodeName ?? 'node-a';
  const registry = createRegistry({ store: createMemoryCatalogStore(), nodeName });
  await registry.start();
  const metrics = new PromRegistry();
  const push = createPushServer({
    source: opts.source,
    nodeName,
    metrics,
    ...(opts.clock === undefined ? {} : { clock: opts.clock }),
    ...(opts.pingIntervalMs === undefined ? {} : { pingIntervalMs: opts.pingIntervalMs }),
    ...(opts.members === undefined ? {} : { members: opts.members }),
    ...(opts.fanoutTimeoutMs === undefined ? {} : { fanoutTimeoutMs: opts.fanoutTimeoutMs }),
  });
  const app = createApiServer({
    registry,
    metrics,
    members: opts.members ?? (async () => []),
    plugins: [
      (child) => {
        const failAck = opts.failAck;
        if (failAck !== undefined)
          child.addHook('onRequest', async (req, reply) => {
            if (req.url.startsWith('/api/v1/mesh/ack') && failAck())
              await reply.status(503).send({ error: { code: 'TEST', message: 'ACK dropped' } });
          });
        push.routes(child);
      },
    ],
  });
  await app.listen({ host: '127.0.0.1', port: opts.port ?? 0 });
  const port = (app.server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    app,
    push,
    registry,
    metrics,
    close: async () => {
      registry.drain();
      await app.close();
      await push.close();
      await registry.close();
    },
  };
}

/** A push stream read raw: its frames as they come, and its end. */
export interface RawStream {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly frames: PushFrame[];
  /** Resolves once at least `n` frames arrived. */
  until(n: number): Promise<void>;
  /** Resolves when the agent ends the stream. */
  readonly ended: Promise<void>;
  close(): Promise<void>;
}

/** Opens `GET /api/v1/mesh/stream?<query>` and collects its frames. */
export async function openRawStream(url: string, query: string): Promise<RawStream> {
  const ac = new AbortController();
  const res = await request(`${url}/api/v1/mesh/stream?${query}`, { signal: ac.signal });
  const frames = arrivals<PushFrame>();
  const ended = (async () => {
    let buf = '';
    for await (const chunk of res.body) {
      buf += (chunk as Buffer).toString();
      let end;
      while ((end = buf.indexOf('\n')) >= 0) {
        frames.push(JSON.parse(buf.slice(0, end)) as PushFrame);
        buf = buf.slice(end + 1);
      }
    }
  })().catch(() => undefined);
  return {
    status: res.statusCode,
    headers: res.headers,
    frames: frames.items,
    ended,
    until: frames.until,
    close: async () => {
      ac.abort();
      await ended;
    },
  };
}

/** Resolves with the arguments of the subscriber's next `name` event for which `ok` holds. */
export function nextEvent<K extends keyof MeshSubscriberEvents>(
  sub: MeshSubscriber,
  name: K,
  ok: (...args: MeshSubscriberEvents[K]) => boolean = () => true,
): Promise<MeshSubscriberEvents[K]> {
  return new Promise((resolve) => {
    const on = (...args: MeshSubscriberEvents[K]): void => {
      if (!ok(...args)) return;
      sub.off(name, on as never);
      resolve(args);
    };
    sub.on(name, on as never);
  });
}

/** A DestinationRule document: `payments` in subsets v1 and v2 (by the `version` label). */
export const PAYMENTS_DESTINATION_RULE = {
  apiVersion: 'networking.istio.io/v1beta1',
  kind: 'DestinationRule',
  metadata: { name: 'payments' },
  spec: {
    host: 'payments',
    subsets: [
      { name: 'v1', labels: { version: 'v1' } },
      { name: 'v2', labels: { version: 'v2' } },
    ],
  },
} as const;

/** A VirtualService document: `payments` split `v1` / `100 - v1` between its subsets. */
export function paymentsVirtualService(v1: number): object {
  return {
    apiVersion: 'networking.istio.io/v1beta1',
    kind: 'VirtualService',
    metadata: { name: 'payments' },
    spec: {
      hosts: ['payments'],
      http: [
        {
          route: [
            { destination: { host: 'payments', subset: 'v1' }, weight: v1 },
            { destination: { host: 'payments', subset: 'v2' }, weight: 100 - v1 },
          ],
        },
      ],
    },
  };
}
