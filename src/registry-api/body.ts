/** @module Request bodies: every body arrives as raw bytes; JSON routes parse it here. */
import type { FastifyRequest } from 'fastify';
import { errors } from '../core/errors.js';

const JSON_TYPES = /^(application\/(json|[a-z0-9.+-]*\+json)|text\/plain)\s*(;|$)/i;

/** The raw request body (empty when none was sent). */
export function rawBody(req: FastifyRequest): Buffer {
  return Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
}

/**
 * The body parsed as JSON. A missing Content-Type is accepted (curl and many clients omit it);
 * anything other than JSON or text is a 415. An empty body yields `whenEmpty` or a 400.
 */
export function jsonBody(req: FastifyRequest, whenEmpty?: unknown): unknown {
  const type = req.headers['content-type'];
  if (type !== undefined && type !== '' && !JSON_TYPES.test(type))
    throw errors.unsupportedMediaType(type);
  const buf = rawBody(req);
  if (buf.length === 0) {
    if (whenEmpty !== undefined) return whenEmpty;
    throw errors.malformedBody('empty body: send a JSON object');
  }
  try {
    return JSON.parse(buf.toString('utf8')) as unknown;
  } catch (err) {
    throw errors.malformedBody(`not valid JSON (${(err as Error).message})`);
  }
}
