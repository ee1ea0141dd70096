/** The generic loaders: file, env table, section merge, and one CONFIG_INVALID from validation. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { z } from 'zod';
import { mergeSections, readConfigFile, readEnv } from '../../../src/config/config-sources.js';
import { validateOptions } from '../../../src/config/validate-options.js';
import { ERROR_CODES, isMeshError } from '../../../src/core/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'meshwork-config-sources-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('readConfigFile', () => {
  it('reads YAML and JSON, and an empty file as no values', () => {
    const y = join(dir, 'a.yaml');
    writeFileSync(y, 'a: 1\nb: { c: x }\n');
    assert.deepEqual(readConfigFile(y), { a: 1, b: { c: 'x' } });
    const j = join(dir, 'a.json');
    writeFileSync(j, '{"a": [1, 2]}');
    assert.deepEqual(readConfigFile(j), { a: [1, 2] });
    const e = join(dir, 'empty.yaml');
    writeFileSync(e, '');
    assert.deepEqual(readConfigFile(e), {});
  });

  it('throws CONFIG_UNREADABLE for a missing file or a top level that is not a mapping', () => {
    const list = join(dir, 'list.yaml');
    writeFileSync(list, '- 1\n');
    for (const p of [join(dir, 'missing.yaml'), list]) {
      assert.throws(
        () => readConfigFile(p),
        (err) => isMeshError(err, ERROR_CODES.CONFIG_UNREADABLE),
      );
    }
  });
});

describe('readEnv', () => {
  it('maps variables by the table, dotted keys into their section, bad values as problems', () => {
    const r = readEnv(
      { X_A: 'v', X_B: 'yes', X_C: '12', X_D: 'a, b,,c', X_E: '' },
      {
        X_A: { key: 's.a', type: 'string' },
        X_B: { key: 'b', type: 'boolean' },
        X_C: { key: 'c', type: 'number' },
        X_D: { key: 'd', type: 'list' },
        X_E: { key: 'e', type: 'string' },
      },
    );
    assert.deepEqual(r.values, { s: { a: 'v' }, c: 12, d: ['a', 'b', 'c'] });
    assert.deepEqual(r.problems, ['X_B: must be true or false']);
  });
});

describe('mergeSections', () => {
  it('lets later sources win, merging sections key by key and replacing arrays', () => {
    assert.deepEqual(
      mergeSections({ a: 1, s: { x: 1, y: 1 }, l: [1] }, { s: { y: 2 }, l: [2] }, { a: 3 }),
      { a: 3, s: { x: 1, y: 2 }, l: [2] },
    );
  });
});

describe('validateOptions', () => {
  const schema = z.object({ port: z.number().int(), name: z.string() }).strict();

  it('answers the options deep-frozen', () => {
    const o = validateOptions(z.object({ s: z.object({ n: z.number() }) }), { s: { n: 1 } });
    assert.ok(Object.isFrozen(o) && Object.isFrozen(o.s));
  });

  it('lists the sources’ problems, then every schema issue, in one CONFIG_INVALID', () => {
    assert.throws(
      () => validateOptions(schema, { port: 'x', zzz: 1 }, ['X_ENV: must be a whole number']),
      (err) => {
        assert.ok(isMeshError(err, ERROR_CODES.CONFIG_INVALID));
        const problems = err.details?.problems as string[];
        assert.equal(problems[0], 'X_ENV: must be a whole number');
        assert.ok(problems.some((p) => p.startsWith('port: ')));
        assert.ok(problems.some((p) => p.startsWith('name: ')));
        assert.ok(problems.includes('zzz: unknown key'));
        return true;
      },
    );
  });

  it('runs the extra check only once the schema accepts', () => {
    const check = (o: { port: number }): string[] => (o.port === 0 ? ['port: not 0'] : []);
    assert.throws(
      () => validateOptions(schema, { port: 0, name: 'a' }, [], check),
      (err) => isMeshError(err) && (err.details?.problems as string[])[0] === 'port: not 0',
    );
    assert.equal(validateOptions(schema, { port: 1, name: 'a' }, [], check).port, 1);
  });
});
