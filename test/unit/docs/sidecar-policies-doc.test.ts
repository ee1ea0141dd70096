/**
 * @module docs/sidecar.md shows every example of examples/sidecar/policies/ verbatim, each in a
 * ```yaml block, so the page and the files the end-to-end tests apply (sidecar-policies,
 * sidecar-outlier) cannot drift apart (issue 19: "every policy with an example that the test
 * suite runs").
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const POLICIES = fileURLToPath(new URL('../../../examples/sidecar/policies/', import.meta.url));
const DOC = fileURLToPath(new URL('../../../docs/sidecar.md', import.meta.url));
const E2E = fileURLToPath(new URL('../../e2e/', import.meta.url));

/** The bodies of the page's ```yaml blocks. */
function yamlBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```yaml\n([\s\S]*?)^```$/gm)].map((m) => m[1] as string);
}

describe('docs/sidecar.md policies', () => {
  const files = readdirSync(POLICIES).filter((f) => f.endsWith('.yaml'));
  const blocks = yamlBlocks(readFileSync(DOC, 'utf8'));

  it('has example files to show', () => {
    assert.ok(files.length >= 10, files.join(', '));
  });

  for (const file of files) {
    it(`shows ${file} verbatim in a yaml block`, () => {
      const text = readFileSync(`${POLICIES}${file}`, 'utf8');
      assert.ok(
        blocks.includes(text),
        `docs/sidecar.md has no \`\`\`yaml block holding examples/sidecar/policies/${file} exactly`,
      );
    });
  }

  it('names each example file, and an end-to-end test applies each one', () => {
    const doc = readFileSync(DOC, 'utf8');
    const e2e = readdirSync(E2E)
      .filter((f) => f.endsWith('.test.ts'))
      .map((f) => readFileSync(`${E2E}${f}`, 'utf8'))
      .join('\n');
    for (const file of files) {
      assert.ok(doc.includes(`examples/sidecar/policies/${file}`), `the page names ${file}`);
      assert.ok(
        e2e.includes(`example('${file}')`) || e2e.includes(`examples/sidecar/policies/${file}`),
        `no test under test/e2e/ applies ${file}`,
      );
    }
  });
});
