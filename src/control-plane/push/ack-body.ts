/** @module The body of `POST /api/v1/mesh/ack`: an ACK or NACK of one version (PushAck). */
import { z } from 'zod';
import type { PushAck } from '../../protocol/mesh/snapshot.js';
import { printable } from '../../protocol/registration.js';
import { parseOrThrow } from '../../protocol/validation.js';
import { parseJsonBody } from '../json-body.js';

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

/**
 * Parses an ACK body (raw bytes, JSON). Throws a MeshError: 415 for a Content-Type other than
 * JSON (none at all is accepted), 400 malformed for bytes that are no JSON, 400 validation naming
 * the field (`version: must not be empty`, `extra: unknown field`).
 */
export function parsePushAck(body: Buffer | string, contentType?: string): PushAck {
  const ack = parseOrThrow(pushAckSchema, parseJsonBody(body, contentType));
  return ack.error === undefined
    ? { id: ack.id, version: ack.version }
    : { id: ack.id, version: ack.version, error: ack.error };
}
