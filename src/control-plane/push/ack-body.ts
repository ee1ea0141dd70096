/** @module The body of `POST /api/v1/mesh/ack`: an ACK or NACK of one version (PushAck). */
import { z } from 'zod';
import { errors } from '../../core/errors.js';
import type { PushAck } from '../../protocol/mesh/snapshot.js';
import { printable } from '../../protocol/registration.js';
import { parseOrThrow, protoKeyPath } from '../../protocol/validation.js';

/** A NACK's reason is cut to this many characters (it is shown in `meshwork proxy-status`). */
export const MAX_NACK_ERROR_CHARS = 4096;

const pushAckSchema = z
  .object({
    id: printable(256, 1),
    version: printable(256, 1),
    error: z
      .string()
      .min(1, 'must not be empty (leave it out to ACK)')
      .max(MAX_NACK_ERROR_CHARS, `must be at most ${MAX_NACK_ERROR_CHARS} characters`)
      .optional(),
  })
  .strict();

const JSON_TYPE = /^application\/(json|[a-z0-9.+-]*\+json)\s*(;|$)/i;

/**
 * Parses an ACK body (raw bytes, JSON). Throws a MeshError: 415 for a Content-Type other than
 * JSON (none at all is accepted), 400 malformed for bytes that are no JSON, 400 validation naming
 * the field (`version: must not be empty`, `extra: unknown field`).
 */
export function parsePushAck(body: Buffer | string, contentType?: string): PushAck {
  if (contentType !== undefined && contentType !== '' && !JSON_TYPE.test(contentType))
    throw errors.unsupportedMediaType(contentType);
  const text = typeof body === 'string' ? body : body.toString('utf8');
  if (text.trim() === '') throw errors.malformedBody('empty body: send a JSON object');
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch (err) {
    throw errors.malformedBody(`not valid JSON (${(err as Error).message})`);
  }
  const proto = protoKeyPath(value);
  if (proto !== undefined) throw errors.validation(proto, 'the key "__proto__" is not allowed');
  const ack = parseOrThrow(pushAckSchema, value);
  return ack.error === undefined
    ? { id: ack.id, version: ack.version }
    : { id: ack.id, version: ack.version, error: ack.error };
}
