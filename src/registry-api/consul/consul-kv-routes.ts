/** @module The Consul /v1/kv endpoints: get (one, recurse, keys, raw), put (cas, flags), delete. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ERROR_CODES, isMeshError } from '../../core/errors.js';
import type { KvEntry } from '../../core/types.js';
import { LIMITS } from '../../protocol/limits.js';
import { rawBody } from '../body.js';
import { kvEntryPieces, kvJsonBytes } from '../json-stream.js';
import type { Query } from '../query.js';
import type { ConsulContext } from './consul-context.js';
import { mayRead, requireAcl } from '../acl/request-acl.js';
import { refuse } from './consul-refuse.js';
import { checkDatacenter, first } from './consul-query.js';

/** Adds the /v1/kv routes to the context's router. */
export function registerConsulKvRoutes(ctx: ConsulContext): void {
  const { registry, node, route, q, json, jsonArray, meta, blocking, param } = ctx;

  const kvKey = (req: FastifyRequest): string => param(req, '*');

  route(['GET'], '/kv/*', async (req, reply) => {
    const key = kvKey(req);
    const query = q(req);
    const list = 'recurse' in query || 'keys' in query;
    if (!list && key === '') throw refuse('Missing key name');
    if (!list) requireAcl(req, 'kv', key, 'read');
    // One key: its ModifyIndex, or the KV index once it is gone (so a delete wakes watchers).
    const current = (): number =>
      list ? registry.kvIndex : (registry.kvGet(key)?.modifyIndex ?? registry.kvIndex);
    await blocking(req, 'kv', current);
    const index = current();
    if ('keys' in query) {
      const sep = first(query.separator) ?? first(query.seperator) ?? '';
      const keys = new Set<string>();
      for (const e of registry.kvList(key)) {
        if (!mayRead(req, 'kv', e.key)) continue;
        const at = sep === '' ? -1 : e.key.indexOf(sep, key.length);
        keys.add(at < 0 ? e.key : e.key.slice(0, at + sep.length));
      }
      if (keys.size === 0 && key !== '') return notFound(req, reply, index);
      const sorted = [...keys].sort();
      const asJson = (k: string): string => JSON.stringify(k);
      return jsonArray(
        req,
        reply,
        sorted,
        { encode: asJson, toJson: (k) => k, estimateBytes: (k) => k.length + 3 },
        index,
      );
    }
    const entries =
      'recurse' in query
        ? registry.kvList(key).filter((e) => mayRead(req, 'kv', e.key))
        : [registry.kvGet(key)].filter((e) => e !== undefined);
    if (entries.length === 0) return notFound(req, reply, index);
    if ('raw' in query && !('recurse' in query)) {
      meta(req, reply, index);
      return reply
        .status(200)
        .header('content-type', 'text/plain; charset=utf-8')
        .header('x-content-type-options', 'nosniff')
        .header('content-security-policy', 'sandbox')
        .send(Buffer.from((entries[0] as KvEntry).value));
    }
    return jsonArray(
      req,
      reply,
      entries,
      { encode: dirEntryPieces, toJson: dirEntry, estimateBytes: kvJsonBytes },
      index,
    );
  });

  const notFound = (req: FastifyRequest, reply: FastifyReply, index: number): FastifyReply => {
    meta(req, reply, index);
    return reply.status(404).send();
  };

  const uintParam = (query: Query, name: string): number | undefined => {
    const v = first(query[name]);
    if (v === undefined) return undefined;
    if (!/^\d{1,15}$/.test(v))
      throw refuse(`Invalid ${name} value "${v}": must be an unsigned integer`);
    return Number(v);
  };

  route(['PUT'], '/kv/*', async (req, reply) => {
    const key = kvKey(req);
    const query = q(req);
    checkDatacenter(query, node.datacenter);
    if (key === '') throw refuse('Missing key name');
    const flagsGiven = ['cas', 'acquire', 'release'].filter((f) => f in query);
    if (flagsGiven.length > 1) throw refuse(`Conflicting flags: ${req.url.split('?')[1] ?? ''}`);
    if (key.length > LIMITS.maxKvKeyLength)
      throw refuse(`Key too long: at most ${LIMITS.maxKvKeyLength} characters`);
    const value = rawBody(req);
    if (value.length > LIMITS.maxKvValueBytes)
      throw refuse(
        `Request body(${value.length} bytes) too large, max size: ${LIMITS.maxKvValueBytes} bytes. Key: "${key}".`,
        413,
      );
    const flags = uintParam(query, 'flags');
    const lockOp = 'acquire' in query ? 'acquire' : 'release' in query ? 'release' : undefined;
    if (lockOp !== undefined) {
      const session = first(query[lockOp]) ?? '';
      if (session === '') throw refuse(`Missing session: ?${lockOp}= takes a session ID`);
      try {
        const r =
          lockOp === 'acquire'
            ? await registry.kvAcquire(key, value, session, flags)
            : await registry.kvRelease(key, value, session, flags);
        return json(req, reply, r.ok);
      } catch (err) {
        // Consul answers an acquire with an unknown session as its RPC error: 500.
        if (isMeshError(err, ERROR_CODES.SESSION_NOT_FOUND))
          throw refuse(`invalid session "${session}"`, 500);
        throw err;
      }
    }
    const cas = uintParam(query, 'cas');
    const r = await registry.kvPut(key, value, {
      ...(flags === undefined ? {} : { flags }),
      ...(cas === undefined ? {} : { cas }),
    });
    return json(req, reply, r.ok);
  });

  route(['DELETE'], '/kv/*', async (req, reply) => {
    const key = kvKey(req);
    const query = q(req);
    checkDatacenter(query, node.datacenter);
    const recurse = 'recurse' in query;
    if (!recurse && key === '') throw refuse('Missing key name');
    if (recurse && 'cas' in query)
      throw refuse(`Conflicting flags: ${req.url.split('?')[1] ?? ''}`);
    const cas = uintParam(query, 'cas');
    requireAcl(req, 'kv', key, 'write');
    // A recursive delete takes write on every key it removes (a deny under the prefix holds).
    if (recurse) for (const e of registry.kvList(key)) requireAcl(req, 'kv', e.key, 'write');
    // Consul: a compare-and-delete of a key that is already gone succeeds.
    if (cas !== undefined && registry.kvGet(key) === undefined) return json(req, reply, true);
    const r = await registry.kvDelete(key, {
      recursive: recurse,
      ...(cas === undefined ? {} : { cas }),
    });
    return json(req, reply, r.ok);
  });
}

/** KV entry as Consul's DirEntry: base64 value, null when empty; `Session` only while locked. */
export function dirEntry(e: KvEntry): Record<string, unknown> {
  return {
    LockIndex: e.lockIndex ?? 0,
    Key: e.key,
    Flags: e.flags,
    Value: e.value.length === 0 ? null : Buffer.from(e.value).toString('base64'),
    ...(e.session === undefined ? {} : { Session: e.session }),
    CreateIndex: e.createIndex,
    ModifyIndex: e.modifyIndex,
  };
}

/** {@link dirEntry} as JSON pieces, for listings (the value encoded a slice at a time). */
function dirEntryPieces(e: KvEntry): Iterable<string> {
  return kvEntryPieces(
    { LockIndex: e.lockIndex ?? 0, Key: e.key, Flags: e.flags },
    'Value',
    e.value.length === 0 ? null : e.value,
    {
      ...(e.session === undefined ? {} : { Session: e.session }),
      CreateIndex: e.createIndex,
      ModifyIndex: e.modifyIndex,
    },
  );
}
