/** @module Large JSON arrays (KV listings) sent piece by piece, never built as one string. */
import { Readable } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';

/**
 * Answers estimated at most this large are built whole (with a Content-Length, as before);
 * larger ones are streamed. 256 KiB encodes in well under a millisecond.
 */
export const STREAM_ABOVE_BYTES = 256 * 1024;

/** Streamed answers go out in chunks of about this many characters. */
const CHUNK_CHARS = 64 * 1024;

/** How one array answer is written: what comes before and after the items, and each item. */
export interface JsonArrayShape<T> {
  /** Text before the first item, `[` included (`{"index":3,"entries":[`). */
  readonly head: string;
  /** Text after the last item, `]` included. */
  readonly tail: string;
  /** One item as JSON, whole or in pieces (pieces let a large item go out over several turns). */
  readonly encode: (item: T) => string | Iterable<string>;
  /** Text between two items (default `,`). */
  readonly separator?: string;
}

/**
 * The answer `shape.head + items.map(encode).join(separator) + shape.tail`, as a stream of chunks
 * of about 64 KiB. A chunk is encoded only when the socket wants more (a slow reader holds one
 * chunk, not the answer), and the event loop takes a turn between chunks, so other requests
 * (`/health/live`, heartbeats) are served while a listing of hundreds of megabytes goes out
 * (issue 16: one `?recurse` over 400 MB of values froze the agent for 6.5 s, then failed with
 * `RangeError: Invalid string length`).
 * @example
 * reply.send(jsonArrayStream(entries, { head: '[', tail: ']', encode: (e) => JSON.stringify(e) }))
 */
export function jsonArrayStream<T>(items: readonly T[], shape: JsonArrayShape<T>): Readable {
  const separator = shape.separator ?? ',';
  async function* chunks(): AsyncGenerator<string> {
    let chunk = shape.head;
    for (let i = 0; i < items.length; i++) {
      if (i > 0) chunk += separator;
      const encoded = shape.encode(items[i] as T);
      for (const piece of typeof encoded === 'string' ? [encoded] : encoded) {
        chunk += piece;
        if (chunk.length >= CHUNK_CHARS) {
          yield chunk;
          chunk = '';
          await nextTurn();
        }
      }
    }
    yield chunk + shape.tail;
  }
  return Readable.from(chunks(), { objectMode: false });
}

/**
 * The answer as one string when it is small (estimated from `estimateBytes` of each item), or
 * as a stream (see {@link jsonArrayStream}).
 */
export function jsonArrayAnswer<T>(
  items: readonly T[],
  shape: JsonArrayShape<T>,
  estimateBytes: (item: T) => number,
): string | Readable {
  let estimate = shape.head.length + shape.tail.length;
  for (const item of items) {
    estimate += estimateBytes(item);
    if (estimate > STREAM_ABOVE_BYTES) return jsonArrayStream(items, shape);
  }
  const whole = (item: T): string => {
    const encoded = shape.encode(item);
    return typeof encoded === 'string' ? encoded : [...encoded].join('');
  };
  return shape.head + items.map(whole).join(shape.separator ?? ',') + shape.tail;
}

/** About how many bytes a KV entry takes as JSON: its key, its value in base64, the fields. */
export function kvJsonBytes(e: { readonly key: string; readonly value: Uint8Array }): number {
  return e.key.length + Math.ceil(e.value.byteLength / 3) * 4 + 100;
}

/** Values are base64-encoded this many bytes at a time (a multiple of 3: no padding inside). */
const VALUE_SLICE_BYTES = 48 * 1024;

/**
 * A KV entry as JSON in pieces: the fields of `before`, `valueField` holding `value` in base64
 * (`null` when `value` is null), then the fields of `after`. The value is encoded 48 KiB at a
 * time, so that a 512 KiB value is not one 700 KB turn of the event loop.
 * @example [...kvEntryPieces({ Key: 'a' }, 'Value', Buffer.from('hi'), { Flags: 0 })].join('')
 * // '{"Key":"a","Value":"aGk=","Flags":0}'
 */
export function* kvEntryPieces(
  before: Readonly<Record<string, unknown>>,
  valueField: string,
  value: Uint8Array | null,
  after: Readonly<Record<string, unknown>>,
): Generator<string> {
  const head = JSON.stringify(before);
  yield `${head.slice(0, -1)}${head.length > 2 ? ',' : ''}"${valueField}":`;
  if (value === null) yield 'null';
  else {
    yield '"';
    const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    for (let at = 0; at < bytes.length; at += VALUE_SLICE_BYTES)
      yield bytes.toString('base64', at, Math.min(at + VALUE_SLICE_BYTES, bytes.length));
    yield '"';
  }
  const tail = JSON.stringify(after);
  yield tail.length > 2 ? `,${tail.slice(1)}` : '}';
}
