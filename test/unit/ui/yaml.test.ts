/** toYaml, the dashboard's YAML writer: what it writes reads back as the value it was given. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parse } from 'yaml';
import { toYaml } from '../../../src/ui/app/yaml.js';

/** The value as JSON sees it (-0 is 0). */
const asJson = (v: unknown): unknown => JSON.parse(JSON.stringify(v));

describe('toYaml', () => {
  it('writes any JSON value so that a YAML reader reads back the same value', () => {
    fc.assert(
      fc.property(fc.jsonValue({ stringUnit: 'binary' }), (value) => {
        const text = toYaml(value);
        assert.deepEqual(asJson(parse(text)), asJson(value), text);
      }),
      { numRuns: 2000, seed: 21 },
    );
  });

  it('quotes strings a reader would take for something else', () => {
    const tricky = [
      'true',
      'no',
      'null',
      '~',
      '1.5',
      '0x1f',
      '',
      ' x',
      'a: b',
      'a #b',
      '- x',
      '*',
      'y',
    ];
    const value = Object.fromEntries(tricky.map((s, i) => [`k${i}`, s]));
    assert.deepEqual(parse(toYaml(value)), value);
    assert.equal(
      toYaml({ kind: 'VirtualService', hosts: ['payments'] }),
      'kind: VirtualService\nhosts:\n  - payments\n',
    );
  });
});
