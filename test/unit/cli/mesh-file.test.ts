/** @module Unit tests of parseMeshFile: a multi-document YAML file split for `meshwork apply`. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { parseMeshFile } from '../../../src/cli/mesh-file.js';
import { ERROR_CODES, isMeshError } from '../../../src/core/errors.js';

describe('parseMeshFile', () => {
  it('answers the documents in order, numbered as in the file, empty ones skipped', () => {
    const text = '# a comment\na: 1\n---\n---\n# only a comment\n---\nb: [2]\n---\n';
    assert.deepEqual(parseMeshFile('f.yaml', text), [
      { number: 1, value: { a: 1 } },
      { number: 4, value: { b: [2] } },
    ]);
  });

  it('answers nothing for an empty file', () => {
    assert.deepEqual(parseMeshFile('f.yaml', ''), []);
    assert.deepEqual(parseMeshFile('f.yaml', '# nothing\n'), []);
  });

  it('names the file, line and column of a syntax error', () => {
    const text = 'a: 1\n---\nservices:\n  - id: x\n   bad: [\n';
    assert.throws(
      () => parseMeshFile('dir/mesh.yaml', text),
      (err: unknown) =>
        isMeshError(err, ERROR_CODES.CONFIG_UNREADABLE) &&
        /^cannot read dir\/mesh\.yaml: line \d+, column \d+: \S/.test(err.message) &&
        !err.message.includes('\n'),
    );
  });

  it('refuses an alias that does not resolve, naming the document', () => {
    assert.throws(
      () => parseMeshFile('m.yaml', 'a: 1\n---\nb: *nowhere\n'),
      (err: unknown) =>
        isMeshError(err, ERROR_CODES.CONFIG_UNREADABLE) && /document 2/.test(err.message),
    );
  });

  it('refuses alias bombs', () => {
    const bomb = [
      'a: &a [x, x, x, x, x, x, x, x, x, x]',
      ...Array.from({ length: 8 }, (_, i) => {
        const p = i === 0 ? 'a' : `l${i - 1}`;
        return `l${i}: &l${i} [*${p}, *${p}, *${p}, *${p}, *${p}, *${p}, *${p}, *${p}, *${p}, *${p}]`;
      }),
    ].join('\n');
    assert.throws(
      () => parseMeshFile('bomb.yaml', bomb),
      (err: unknown) => isMeshError(err, ERROR_CODES.CONFIG_UNREADABLE),
    );
  });

  it('never throws anything but CONFIG_UNREADABLE, whatever the text', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc
            .array(fc.constantFrom('---\n', 'a: 1\n', '- x\n', '  b: [\n', '*x\n', '&x y\n', '"\n'))
            .map((p) => p.join('')),
        ),
        (text) => {
          try {
            parseMeshFile('f.yaml', text);
          } catch (err) {
            assert.ok(isMeshError(err, ERROR_CODES.CONFIG_UNREADABLE), String(err));
          }
        },
      ),
      { seed: 18, numRuns: 500 },
    );
  });

  it('gives back the documents a stream was written from', () => {
    const doc = fc
      .dictionary(
        fc.string({ minLength: 1, maxLength: 8 }),
        fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.array(fc.string(), { maxLength: 3 })),
        { minKeys: 1, maxKeys: 4 },
      )
      .map((d) => ({ ...d }));
    fc.assert(
      fc.property(fc.array(doc, { maxLength: 5 }), (docs) => {
        const text = docs.map((d) => `---\n${stringify(d)}`).join('');
        const parsed = parseMeshFile('f.yaml', text);
        assert.deepEqual(
          parsed.map((p) => p.value),
          docs,
        );
        assert.deepEqual(
          parsed.map((p) => p.number),
          docs.map((_, i) => i + 1),
        );
      }),
      { seed: 18, numRuns: 200 },
    );
  });
});
