/**
 * @module The push server: the agent's routes that stream snapshots to proxies and take their
 * ACKs and NACKs (`/api/v1/mesh/stream`, `/ack`, `/proxies`), registered on its HTTP server.
 */
import type { FastifyInstance } from 'fastify';
import type { Registry as PromRegistry } from 'prom-client';
import { Agent } from 'undici';
import { systemClock, type Clock } from '../../core/clock.js';
import { parseDurationMs } from '../../core/duration.js';
import { errors } from '../../core/errors.js';
import { silentLogger, type Logger } from '../../core/logger.js';
import { INDEX_HEADER, type AgentMember } from '../../protocol/api-types.js';
import type { ProxyStatusList } from '../../protocol/mesh/snapshot.js';
import type { SnapshotSource } from '../contract.js';
import { parsePushAck } from './ack-body.js';
import { ProxyBook } from './proxy-book.js';
import { fanOut } from './proxy-fanout.js';
import { ProxyStream } from './proxy-stream.js';
import { PushMetrics } from './push-metrics.js';
import { parseStreamQuery } from './stream-query.js';

export interface PushServerOptions {
  /** Where the snapshots come from (the control plane). */
  readonly source: SnapshotSource;
  /** This agent's node name, reported as each proxy's `agent`. */
  readonly nodeName: string;
  /** The agent's metrics registry. */
  readonly metrics: PromRegistry;
  /** The agents of the cluster (for `GET /api/v1/mesh/proxies` without `local`). */
  readonly members?: () => Promise<readonly AgentMember[]>;
  readonly logger?: Logger;
  readonly clock?: Clock;
  /** A ping frame goes out after this long without another frame (default 15 s). */
  readonly pingIntervalMs?: number;
  /** How long another agent may take to list its proxies (default 2 s). */
  readonly fanoutTimeoutMs?: number;
}

export const DEFAULT_PUSH_SERVER_OPTIONS = Object.freeze({
  pingIntervalMs: 15_000,
  fanoutTimeoutMs: 2_000,
});

/** The header telling the proxy the ping interval, so it knows when a silent stream is dead. */
export const PING_INTERVAL_HEADER = 'x-meshwork-ping-interval-ms';

export interface PushServer {
  /** Registers the routes on the agent's HTTP server (after its request guard). */
  readonly routes: (app: FastifyInstance) => void;
  /** The proxies connected to this agent, by id. */
  readonly book: ProxyBook;
  /** Ends every stream (the proxies reconnect elsewhere); the routes refuse nothing more. */
  close(): Promise<void>;
}

/** Builds the push server. Its routes go on the agent's server through `routes`. */
export function createPushServer(options: PushServerOptions): PushServer {
  const log = (options.logger ?? silentLogger).child({ component: 'mesh-push' });
  const clock = options.clock ?? systemClock;
  const pingIntervalMs = options.pingIntervalMs ?? DEFAULT_PUSH_SERVER_OPTIONS.pingIntervalMs;
  const fanoutTimeoutMs = options.fanoutTimeoutMs ?? DEFAULT_PUSH_SERVER_OPTIONS.fanoutTimeoutMs;
  const metrics = new PushMetrics(options.metrics);
  const book = new ProxyBook(options.nodeName, clock, metrics);
  const dispatcher = new Agent({ keepAliveTimeout: 10_000, connections: 4 });

  const routes = (app: FastifyInstance): void => {
    // Streams are hijacked: fastify's close would wait for them. End them first.
    app.addHook('preClose', (done) => {
      book.endAll();
      done();
    });

    app.get('/api/v1/mesh/stream', async (req, reply) => {
      const { proxy, version } = parseStreamQuery(req.query);
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'application/x-ndjson; charset=utf-8',
        'cache-control': 'no-cache',
        'x-accel-buffering': 'no',
        [PING_INTERVAL_HEADER]: String(pingIntervalMs),
      });
      res.flushHeaders();
      const stream = new ProxyStream(res, {
        clock,
        pingIntervalMs,
        ...(version === undefined ? {} : { heldVersion: version }),
        onWritten: (snapshot) => book.sent(proxy.id, snapshot.version),
      });
      book.connect(proxy, stream, version);
      log.debug({ id: proxy.id, kind: proxy.kind, name: proxy.name }, 'proxy connected');
      // 'close' comes in a later turn: the watch is in place by then.
      const unwatch = options.source.watch(proxy, (snapshot) => stream.send(snapshot));
      const forget = (): void => {
        unwatch();
        book.disconnect(proxy.id, stream);
      };
      if (res.destroyed) forget();
      else
        res.once('close', () => {
          forget();
          log.debug({ id: proxy.id }, 'proxy disconnected');
        });
    });

    app.post('/api/v1/mesh/ack', async (req, reply) => {
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const ack = parsePushAck(body, req.headers['content-type']);
      book.answer(ack);
      if (ack.error !== undefined)
        log.warn({ id: ack.id, version: ack.version, error: ack.error }, 'proxy refused snapshot');
      return reply.status(204).send();
    });

    app.get('/api/v1/mesh/proxies', async (req, reply) => {
      const local = (req.query as Record<string, unknown>).local;
      if (local !== undefined && local !== 'true' && local !== 'false')
        throw errors.validation('local', 'must be true or false');
      const blocking = blockingOf(req.query as Record<string, unknown>);
      if (blocking !== undefined) await book.changed(blocking.index, blocking.waitMs);
      const revision = book.revision;
      const mine = book.list();
      const answer: ProxyStatusList =
        local === 'true' || options.members === undefined
          ? { proxies: mine, unreachable: [] }
          : await fanOut(mine, {
              nodeName: options.nodeName,
              members: options.members,
              timeoutMs: fanoutTimeoutMs,
              dispatcher,
            });
      return reply
        .header('content-type', 'application/json; charset=utf-8')
        .header(INDEX_HEADER, String(revision))
        .send(JSON.stringify(answer));
    });
  };

  return {
    routes,
    book,
    close: async () => {
      book.endAll();
      await dispatcher.close();
    },
  };
}

/** The longest a blocking read of the proxies waits (as every blocking query: docs/api.md). */
const MAX_PROXIES_WAIT_MS = 600_000;

/**
 * `?index=N&wait=30s` on `GET /api/v1/mesh/proxies`: wait until this agent's proxies change past
 * N (its X-Meshwork-Index), at most `wait` (default 5 min, at most 10). Undefined without index.
 */
function blockingOf(q: Record<string, unknown>): { index: number; waitMs: number } | undefined {
  const { index, wait } = q;
  if (index === undefined || index === '') return undefined;
  if (typeof index !== 'string' || !/^\d{1,16}$/.test(index))
    throw errors.validation('index', 'must be a non-negative integer');
  let waitMs = 300_000;
  if (wait !== undefined && wait !== '') {
    const ms = typeof wait === 'string' ? parseDurationMs(wait) : undefined;
    if (ms === undefined)
      throw errors.validation('wait', 'must be a duration like "30s" or a number of ms');
    waitMs = Math.min(ms, MAX_PROXIES_WAIT_MS);
  }
  return { index: Number(index), waitMs };
}
