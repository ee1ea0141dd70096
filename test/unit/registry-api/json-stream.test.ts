/** Streamed JSON arrays: the same bytes as JSON.stringify, in chunks, for any items. */
import assert from 'node:assert/strict';
import type { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  jsonArrayAnswer,
  jsonArrayStream,
  kvEntryPieces,
  STREAM_ABOVE_BYTES,
} from '../../../src/registry-api/json-stream.js';

const SEED = 16;

async function text(stream: Readable): Promise<{ text: string; chunks: number }> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as string));
  return { text: Buffer.concat(chunks).toString('utf8'), chunks: chunks.length };
}

const entryArb = fc.record({
  key: fc.string({ maxLength: 40 }),
  value: fc.uint8Array({ maxLength: 200_000 }),
  flags: fc.nat(),
  createIndex: fc.nat(),
});

/** The entry as JSON.stringify writes it (value in base64, null when `nullEmpty` and empty). */
type Entry = { key: string; value: Uint8Array; flags: number; createIndex: number };

const plain = (e: Entry, nullEmpty: boolean) => ({
  key: e.key,
  value: nullEmpty && e.value.length === 0 ? null : Buffer.from(e.value).toString('base64'),
  flags: e.flags,
  createIndex: e.createIndex,
});

describe('jsonArrayStream', () => {
  it('writes exactly JSON.stringify(items) for any KV entries, in pieces or whole', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(entryArb, { maxLength: 12 }),
        fc.boolean(),
        async (es, nullEmpty) => {
          const encode = (e: (typeof es)[number]) =>
            kvEntryPieces(
              { key: e.key },
              'value',
              nullEmpty && e.value.length === 0 ? null : e.value,
              {
                flags: e.flags,
                createIndex: e.createIndex,
              },
            );
          const want = JSON.stringify({ index: 7, entries: es.map((e) => plain(e, nullEmpty)) });
          const shape = { head: '{"index":7,"entries":[', tail: ']}', encode };
          assert.equal((await text(jsonArrayStream(es, shape))).text, want);
          const answer = jsonArrayAnswer(es, shape, (e) => e.value.length * 2);
          assert.equal(typeof answer === 'string' ? answer : (await text(answer)).text, want);
        },
      ),
      { seed: SEED, numRuns: 60 },
    );
  });

  it('indents like JSON.stringify(items, null, 4) with a pretty shape', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.jsonValue(), { minLength: 1, maxLength: 8 }), async (items) => {
        const shape = {
          head: '[\n    ',
          tail: '\n]',
          separator: ',\n    ',
          encode: (i: unknown) => JSON.stringify(i, null, 4).replaceAll('\n', '\n    '),
        };
        assert.equal(
          (await text(jsonArrayStream(items, shape))).text,
          JSON.stringify(items, null, 4),
        );
      }),
      { seed: SEED, numRuns: 200 },
    );
  });

  it('builds small answers whole and streams large ones in many chunks', async () => {
    const small = jsonArrayAnswer(
      ['a'],
      { head: '[', tail: ']', encode: (s) => JSON.stringify(s) },
      () => 10,
    );
    assert.equal(small, '["a"]');
    const big = Array.from({ length: 8 }, () => new Uint8Array(100_000));
    const answer = jsonArrayAnswer(
      big,
      { head: '[', tail: ']', encode: (v) => kvEntryPieces({}, 'v', v, {}) },
      (v) => v.length * 2,
    );
    assert.notEqual(typeof answer, 'string', `over ${STREAM_ABOVE_BYTES} bytes: streamed`);
    const { text: out, chunks } = await text(answer as Readable);
    assert.ok(chunks >= 10, `chunks: ${chunks}`);
    assert.deepEqual(
      JSON.parse(out),
      big.map((v) => ({ v: Buffer.from(v).toString('base64') })),
    );
  });
});
