/** @module Request bodies: every body arrives as raw bytes; JSON routes parse it here. */
import type { FastifyRequest } from 'fastify';
import { errors } from '../core/errors.js';
import { protoKeyPath } from '../protocol/validation.js';

const JSON_TYPES = /^(application\/(json|[a-z0-9.+-]*\+json)|text\/plain)\s*(;|$)/i;
const CHARSET = /;\s*charset\s*=\s*(?:"([^"]*)"|([^;\s]*))/i;
// JSON is UTF-8 (RFC 8259 8.1); ASCII is a subset of it.
const UTF8 = /^(utf-?8|us-ascii)$/i;

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
  assertUtf8(type);
  const buf = rawBody(req);
  if (buf.length === 0) {
    if (whenEmpty !== undefined) return whenEmpty;
    throw errors.malformedBody('empty body: send a JSON object');
  }
  const text = buf.toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch (err) {
    throw errors.malformedBody(`not valid JSON (${(err as Error).message})`);
  }
  assertNoProtoKey(value, text);
  return value;
}

/** Refuses (415) a Content-Type whose charset is not UTF-8: the body is read as UTF-8. */
export function assertUtf8(contentType: string | undefined): void {
  if (contentType === undefined) return;
  const m = CHARSET.exec(contentType);
  const charset = m?.[1] ?? m?.[2];
  if (charset !== undefined && !UTF8.test(charset)) throw errors.unsupportedCharset(charset);
}

/**
 * Refuses (400, naming the field) parsed JSON holding a `__proto__` key anywhere. `text`, the
 * JSON `value` was parsed from, spares most bodies the walk: such a key is written either as
 * `__proto__` or with `\u` escapes (JSON has no other escape for its letters).
 */
export function assertNoProtoKey(value: unknown, text?: string): void {
  if (text !== undefined && !text.includes('__proto__') && !text.includes('\\u')) return;
  const path = protoKeyPath(value);
  if (path !== undefined) throw errors.validation(path, 'the key "__proto__" is not allowed');
}
