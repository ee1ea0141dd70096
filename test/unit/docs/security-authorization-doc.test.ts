/**
 * @module docs/security.md's AuthorizationPolicy section shows every example of
 * examples/security/ verbatim, each in a ```yaml block, and each is applied by an end-to-end test
 * (test/e2e/sidecar-authorization.test.ts), so the page and what the tests run cannot drift apart
 * (issue 20: "AuthorizationPolicy with examples the tests run").
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const EXAMPLES = fileURLToPath(new URL('../../../examples/security/', import.meta.url));
const DOC = fileURLToPath(new URL('../../../docs/security.md', import.meta.url));
const E2E = fileURLToPath(new URL('../../e2e/', import.meta.url));

/** The bodies of the page's ```yaml blocks. */
function yamlBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```yaml\n([\s\S]*?)^```$/gm)].map((m) => m[1] as string);
}

describe('docs/security.md AuthorizationPolicy examples', () => {
  const files = readdirSync(EXAMPLES).filter((f) => /^authz-.*\.yaml$/.test(f));
  const doc = readFileSync(DOC, 'utf8');
  const section = doc.slice(doc.indexOf('\n## AuthorizationPolicy\n'));
  const blocks = yamlBlocks(section);

  it('has a section and example files to show', () => {
    assert.ok(section.length > 1, 'docs/security.md has no "## AuthorizationPolicy" section');
    assert.ok(files.length >= 8, files.join(', '));
  });

  for (const file of files) {
    it(`shows ${file} verbatim in a yaml block and names it`, () => {
      const text = readFileSync(`${EXAMPLES}${file}`, 'utf8');
      assert.ok(
        blocks.includes(text),
        `the section has no \`\`\`yaml block holding examples/security/${file} exactly`,
      );
      assert.ok(section.includes(`examples/security/${file}`), `the section names ${file}`);
    });
  }

  it('an end-to-end test applies each example', () => {
    const e2e = readdirSync(E2E)
      .filter((f) => f.endsWith('.test.ts'))
      .map((f) => readFileSync(`${E2E}${f}`, 'utf8'))
      .join('\n');
    for (const file of files)
      assert.ok(e2e.includes(`example('${file}')`), `no test under test/e2e/ applies ${file}`);
  });
});
