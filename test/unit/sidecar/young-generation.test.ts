/** @module Unit tests of boundYoungGeneration: V8's young generation stays at its initial size. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import ts from 'typescript';
import {
  boundYoungGeneration,
  youngGenerationDrift,
} from '../../../src/sidecar/young-generation.js';

// The module compiled to plain JS, so the child runs without tsx: loading tsx alone grows the
// young generation before the bound could be set.
const dir = mkdtempSync(join(tmpdir(), 'meshwork-young-'));
const MODULE = join(dir, 'young-generation.mjs');
writeFileSync(
  MODULE,
  ts.transpileModule(
    readFileSync(new URL('../../../src/sidecar/young-generation.ts', import.meta.url), 'utf8'),
    { compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 } },
  ).outputText,
);
after(() => rmSync(dir, { recursive: true, force: true }));

/**
 * The new space's size (MB) in a fresh node after allocating ~150 MB of short-lived objects with
 * a few survivors, with or without the bound. Unbounded, V8 grows it to two 16 MB semi-spaces.
 */
function newSpaceAfterAllocating(bound: boolean): number {
  const code = `
    import { getHeapSpaceStatistics } from 'node:v8';
    import { boundYoungGeneration } from ${JSON.stringify(MODULE)};
    if (${bound}) boundYoungGeneration({}, []);
    const keep = [];
    for (let i = 0; i < 3e6; i++) { const o = { i, s: 'x' + i }; if (i % 1000 === 0) keep.push(o); }
    const s = getHeapSpaceStatistics().find((x) => x.space_name === 'new_space');
    console.log(s.space_size / 1048576, keep.length);`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], {
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  assert.equal(r.status, 0, r.stderr);
  return Number(r.stdout.trim().split(' ')[0]);
}

describe('boundYoungGeneration', () => {
  it('keeps the new space at its initial two 1 MB semi-spaces, where V8 would grow it', () => {
    // Deterministic in V8 (no timing): 2 MB bounded; the default grows past 8 MB with this load.
    assert.ok(newSpaceAfterAllocating(false) > 8, 'unbounded, the new space grows');
    assert.ok(newSpaceAfterAllocating(true) <= 2, 'bounded, it stays at its initial size');
  });

  it("leaves V8 alone when the operator's node flags size the semi-spaces", () => {
    assert.equal(boundYoungGeneration({ NODE_OPTIONS: '--max-semi-space-size=8' }, []), false);
    assert.equal(boundYoungGeneration({}, ['--max-semi-space-size=4']), false);
  });
});

describe('youngGenerationDrift (the self-test the sidecar runs)', () => {
  const MB = 1024 * 1024;
  it('says nothing where the bound was not set, or holds', () => {
    assert.equal(youngGenerationDrift(false, 32 * MB), undefined);
    assert.equal(youngGenerationDrift(true, 2 * MB), undefined);
  });
  it('says why where the new space grew past its bound', () => {
    assert.match(youngGenerationDrift(true, 16 * MB) ?? '', /grew to 16\.0 MB/);
  });
});
