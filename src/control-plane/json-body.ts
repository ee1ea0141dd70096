/**
 * @module The JSON bodies of the control plane's routes (an ACK, an edge report): raw bytes in,
 * a parsed value out, or the MeshError the API answers (415, 400 malformed, 400 `__proto__`).
 */
import { errors } from '../core/errors.js';
import { protoKeyPath } from '../protocol/validation.js';

const JSON_TYPE = /^application\/(json|[a-z0-9.+-]*\+json)\s*(;|$)/i;

/**
 * Parses a JSON body. Throws a MeshError: 415 for a Content-Type other than JSON (none at all is
 * accepted), 400 malformed for an empty body or bytes that are no JSON, 400 validation for a
 * `__proto__` key (which copying would turn into a prototype).
 */
export function parseJsonBody(body: Buffer | string, contentType: string | undefined): unknown {
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
  return value;
}
