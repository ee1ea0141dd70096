/** @module The native API under /api/v1 (camelCase JSON), served by the agent's HTTP server. */
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { systemClock, type Clock } from '../../core/clock.js';
import { parseDurationMs } from '../../core/duration.js';
import { errors } from '../../core/errors.js';
import { INDEX_HEADER, type AgentMember } from '../../protocol/api-types.js';
import { LIMITS } from '../../protocol/limits.js';
import { printable, registrationInputSchema } from '../../protocol/registration.js';
import { parseOrThrow } from '../../protocol/validation.js';
import { serviceTopic, type CatalogFacade, type Topic } from '../../registry/catalog-facade.js';
import { jsonBody, rawBody } from '../body.js';
import { jsonArrayAnswer, kvEntryPieces, kvJsonBytes } from '../json-stream.js';
import {
  filterKey,
  parseBlocking,
  parseInstanceFilter,
  waitForRequest,
  type Query,
} from '../query.js';
import { requireSetWrite } from '../acl/acl-route-rules.js';
import { mayRead, requireAcl } from '../acl/request-acl.js';
import { coalesceStream } from '../stream-coalescer.js';
import { registerMeshRoutes } from './mesh-routes.js';

const heartbeatSchema = z
  .object({
    status: z.enum(['passing', 'warning', 'critical']).optional(),
    output: z.string().max(LIMITS.maxOutputLength).optional(),
  })
  .strict();

const maintenanceSchema = z
  .object({ enabled: z.boolean(), reason: z.string().max(LIMITS.maxOutputLength).optional() })
  .strict();

const applySchema = z
  .object({
    set: printable(256, 1),
    source: z.enum(['self', 'sidecar', 'config', 'orchestrator']).optional(),
    instances: z.array(registrationInputSchema).max(LIMITS.maxApplyInstances),
  })
  .strict();

const idParam = (req: FastifyRequest): string => (req.params as { id: string }).id;

/** Streams buffered beyond this are dropped (they resync by reconnecting). */
export const MAX_STREAM_BUFFER_BYTES = 1024 * 1024;
const STREAM_PING_MS = 15_000;

export interface NativeRoutesOptions {
  readonly registry: CatalogFacade;
  readonly members: () => Promise<readonly AgentMember[]>;
  /** Timers of coalesced watch streams (default: the system clock). */
  readonly clock?: Clock;
}

/** The longest `?interval=` a watch stream may ask for. */
export const MAX_STREAM_INTERVAL_MS = 10_000;

/** `?interval=` of `GET /api/v1/watch`: a duration from 0 (every frame at once) to 10 s. */
function streamIntervalMs(raw: unknown): number {
  if (raw === undefined || raw === '') return 0;
  const ms = typeof raw === 'string' ? parseDurationMs(raw) : undefined;
  if (ms === undefined || ms < 0 || ms > MAX_STREAM_INTERVAL_MS)
    throw errors.validation('interval', 'must be a duration from 0 to 10s, e.g. "250ms"');
  return ms;
}

/** Registers /api/v1 routes on `app`. */
export function registerNativeRoutes(
  app: FastifyInstance,
  { registry, members, clock = systemClock }: NativeRoutesOptions,
): void {
  /** Cache of serialised instance lists, per service and filter, valid while the index holds. */
  // Kept as bytes: re-encoding a 77 KB string on every hit cost ~17 of ~88 µs per read.
  const listCache = new Map<string, { index: number; body: Buffer }>();

  const json = (reply: FastifyReply, index: number, body: Buffer | string | object): FastifyReply =>
    reply
      .header(INDEX_HEADER, String(index))
      .header('content-type', 'application/json; charset=utf-8')
      .send(
        typeof body === 'string' || Buffer.isBuffer(body) || body instanceof Readable
          ? body
          : JSON.stringify(body),
      );

  /** Runs a blocking query when `?index=` is given, then answers. */
  const blocking = (req: FastifyRequest, topic: Topic, currentIndex: () => number) =>
    waitForRequest(registry, req, topic, parseBlocking(req.query as Query), currentIndex);

  registerMeshRoutes(app, { registry, json, blocking });

  app.put('/api/v1/instances', async (req, reply) => {
    const input = parseOrThrow(registrationInputSchema, jsonBody(req));
    // A service's token registers that service only.
    requireAcl(req, 'service', input.service, 'write');
    const r = await registry.register(input);
    return json(reply, r.index, { index: r.index, instance: r.instance });
  });

  app.get('/api/v1/instances/:id', async (req, reply) => {
    const id = idParam(req);
    const found = registry.instanceDefinition(id);
    if (found !== undefined) {
      await blocking(
        req,
        serviceTopic(found.service),
        () => registry.instance(id)?.modifyIndex ?? registry.serviceIndex(found.service) + 1,
      );
    }
    const r = registry.getInstance(id);
    return json(reply, r.index, r);
  });

  app.delete('/api/v1/instances/:id', async (req, reply) => {
    const service = registry.instanceDefinition(idParam(req))?.service;
    const r = await registry.deregister(idParam(req));
    if (!r.deleted || service === undefined) throw errors.instanceNotFound(idParam(req));
    // ?notify=true: answer once the watchers of the service have been sent the deletion, and
    // say how many (a draining instance's SDK waits for this instead of a blind delay).
    if ((req.query as Query).notify === 'true') {
      const notified = await registry.notified(service, r.index);
      return json(reply, r.index, { ...r, notified });
    }
    return json(reply, r.index, r);
  });

  app.put('/api/v1/instances/:id/heartbeat', async (req, reply) => {
    const body = parseOrThrow(heartbeatSchema, jsonBody(req, {}));
    const r = await registry.heartbeat(idParam(req), body.status ?? 'passing', body.output ?? '');
    return json(reply, r.index, r);
  });

  app.put('/api/v1/instances/:id/maintenance', async (req, reply) => {
    const body = parseOrThrow(maintenanceSchema, jsonBody(req));
    const r = await registry.setMaintenance(idParam(req), body.enabled, body.reason ?? '');
    return json(reply, r.index, r);
  });

  app.put('/api/v1/agent/maintenance', async (req, reply) => {
    const body = parseOrThrow(maintenanceSchema, jsonBody(req));
    const r = await registry.setAgentMaintenance(body.enabled, body.reason ?? '');
    return json(reply, r.index, {
      index: r.index,
      maintenance: registry.agentMaintenance ?? { enabled: false, reason: '' },
    });
  });

  app.get('/api/v1/agent', async (_req, reply) =>
    json(reply, registry.index, {
      index: registry.index,
      nodeName: registry.nodeName,
      store: registry.storeKind,
      maintenance: registry.agentMaintenance ?? { enabled: false, reason: '' },
      instances: registry.instanceCount,
    }),
  );

  app.get('/api/v1/agents', async (_req, reply) => {
    const agents = await members();
    return json(reply, registry.index, { index: registry.index, agents });
  });

  app.get('/api/v1/services', async (req, reply) => {
    await blocking(req, 'catalog', () => registry.catalogIndex);
    const r = registry.listServices();
    return json(reply, r.index, {
      ...r,
      services: r.services.filter((s) => mayRead(req, 'service', s.name)),
    });
  });

  app.get('/api/v1/services/:name/instances', async (req, reply) => {
    const service = (req.params as { name: string }).name;
    const q = req.query as Query;
    const filter = parseInstanceFilter(q);
    await blocking(req, serviceTopic(service), () => registry.serviceIndex(service));
    const index = registry.serviceIndex(service);
    const key = `${service}?${filterKey(q)}`;
    const cached = listCache.get(key);
    if (cached !== undefined && cached.index === index) return json(reply, index, cached.body);
    const r = registry.listInstances(service, filter);
    const body = Buffer.from(JSON.stringify({ index: r.index, service, instances: r.instances }));
    if (listCache.size >= 10_000) listCache.clear();
    listCache.set(key, { index: r.index, body });
    return json(reply, r.index, body);
  });

  app.put('/api/v1/apply', async (req, reply) => {
    const body = parseOrThrow(applySchema, jsonBody(req));
    requireSetWrite(req, registry, body.set, body.instances);
    const r = await registry.apply(body.set, body.instances, body.source ?? 'config');
    return json(reply, r.index, r);
  });

  app.get('/api/v1/watch', (req, reply) => {
    const q = req.query as Query;
    const raw = typeof q.service === 'string' && q.service !== '' ? q.service : undefined;
    const intervalMs = streamIntervalMs(q.interval);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      'x-accel-buffering': 'no',
    });
    res.flushHeaders();
    const ping = setInterval(() => res.write(': ping\n\n'), STREAM_PING_MS);
    ping.unref();
    const sink = { write: (chunk: string) => res.write(chunk), buffered: () => res.writableLength };
    // `?interval=`: at most one write per interval (dashboards); else every frame at once.
    const out =
      intervalMs > 0
        ? coalesceStream(sink, intervalMs, MAX_STREAM_BUFFER_BYTES, clock)
        : {
            write: (frame: string): boolean => {
              if (res.writableLength > MAX_STREAM_BUFFER_BYTES) return false;
              res.write(frame);
              return true;
            },
            flush: () => undefined,
            close: () => undefined,
          };
    const unsubscribe = registry.subscribeStream(raw, {
      write: (frame) => out.write(frame),
      drop: (frame) => {
        clearInterval(ping);
        out.flush();
        res.end(frame);
        // A peer that reads nothing would keep the socket forever; cut it after a grace period.
        setTimeout(() => res.destroy(), 1000).unref();
      },
      close: () => {
        clearInterval(ping);
        out.flush();
        res.end(() => res.destroy());
      },
    });
    res.on('close', () => {
      clearInterval(ping);
      out.close();
      unsubscribe();
    });
  });

  // Native KV: raw values in, JSON entries (base64 values) out.
  app.get('/api/v1/kv/*', async (req, reply) => {
    const key = (req.params as { '*': string })['*'];
    const q = req.query as Query;
    await blocking(req, 'kv', () => registry.kvIndex);
    if ('recurse' in q) {
      const index = registry.kvIndex;
      // Streamed when large: the values of one listing can reach the KV quota (256 MiB).
      const body = jsonArrayAnswer(
        registry.kvList(key).filter((e) => mayRead(req, 'kv', e.key)),
        {
          head: `{"index":${index},"entries":[`,
          tail: ']}',
          encode: (e) =>
            kvEntryPieces({ key: e.key }, 'value', e.value, {
              flags: e.flags,
              createIndex: e.createIndex,
              modifyIndex: e.modifyIndex,
            }),
        },
        kvJsonBytes,
      );
      return json(reply, index, body);
    }
    requireAcl(req, 'kv', key, 'read');
    const e = registry.kvGet(key);
    if (e === undefined) throw errors.keyNotFound(key);
    return json(reply, e.modifyIndex, { index: e.modifyIndex, entry: kvDto(e) });
  });

  app.put('/api/v1/kv/*', async (req, reply) => {
    const key = (req.params as { '*': string })['*'];
    const q = req.query as Query;
    const value = rawBody(req);
    if (key.length > LIMITS.maxKvKeyLength)
      throw errors.validation('key', `must be at most ${LIMITS.maxKvKeyLength} characters`);
    const r = await registry.kvPut(key, value, {
      ...optInt(q, 'flags'),
      ...optInt(q, 'cas'),
    });
    return json(reply, r.index, r);
  });

  app.delete('/api/v1/kv/*', async (req, reply) => {
    const key = (req.params as { '*': string })['*'];
    const q = req.query as Query;
    // A recursive delete takes write on every key it removes (a deny under the prefix holds).
    if ('recurse' in q) for (const e of registry.kvList(key)) requireAcl(req, 'kv', e.key, 'write');
    const r = await registry.kvDelete(key, { recursive: 'recurse' in q, ...optInt(q, 'cas') });
    return json(reply, r.index, r);
  });
}

function optInt(q: Query, name: 'flags' | 'cas'): { flags?: number; cas?: number } {
  const v = q[name];
  if (v === undefined) return {};
  const s = Array.isArray(v) ? v[0] : v;
  if (s === undefined || !/^\d{1,16}$/.test(s))
    throw errors.validation(name, 'must be a non-negative integer');
  return { [name]: Number(s) };
}

function kvDto(e: {
  key: string;
  value: Uint8Array;
  flags: number;
  createIndex: number;
  modifyIndex: number;
}): object {
  return {
    key: e.key,
    value: Buffer.from(e.value).toString('base64'),
    flags: e.flags,
    createIndex: e.createIndex,
    modifyIndex: e.modifyIndex,
  };
}
