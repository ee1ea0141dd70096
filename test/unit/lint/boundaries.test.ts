/** The lint rule that enforces docs/architecture.md's dependency arrows really fires. */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { ESLint } from 'eslint';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const eslint = new ESLint({ cwd: root });

async function violations(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: `${root}${file}` });
  return (result?.messages ?? [])
    .filter((m) => m.ruleId === 'meshwork/layers' || m.ruleId === 'no-restricted-imports')
    .map((m) => m.message);
}

describe('dependency rules (eslint)', () => {
  it('refuses client/ importing the server', async () => {
    const v = await violations(
      'src/client/zz.ts',
      "import { Registry } from '../registry/registry.js';\nexport const x = Registry;\n",
    );
    assert.equal(v.length, 1);
    assert.match(v[0] ?? '', /client\/ may not import registry\/ \(allowed: core, protocol/);
  });

  it('sees through nested folders and re-exports', async () => {
    const v = await violations(
      'src/client/balancers/zz.ts',
      "export { Registry } from '../../registry/registry.js';\n",
    );
    assert.equal(v.length, 1);
    const cli = await violations(
      'src/cli/commands/zz.ts',
      "import { FakeClock } from '../../testing/fake-clock.js';\nexport const x = FakeClock;\n",
    );
    assert.ok(cli.some((m) => /cli\/ may not import testing\//.test(m)));
  });

  it('refuses core/ importing anything, and anyone importing cli/', async () => {
    const v = await violations(
      'src/core/zz.ts',
      "import { errors } from '../protocol/validation.js';\nexport const x = errors;\n",
    );
    assert.equal(v.length, 1);
    const c = await violations(
      'src/registry/zz.ts',
      "import { main } from '../cli/main.js';\nexport const x = main;\n",
    );
    assert.ok(c.some((m) => /registry\/ may not import cli\//.test(m)));
  });

  it('refuses src/ importing testing/', async () => {
    const v = await violations(
      'src/registry/zz.ts',
      "import { FakeClock } from '../testing/fake-clock.js';\nexport const x = FakeClock;\n",
    );
    assert.ok(v.some((m) => /registry\/ may not import testing\//.test(m)));
  });

  it('requires node: for built-ins', async () => {
    const v = await violations(
      'src/registry/zz.ts',
      "import { readFileSync } from 'fs';\nexport const x = readFileSync;\n",
    );
    assert.match(v[0] ?? '', /node:fs/);
  });

  it('allows the arrows the architecture draws', async () => {
    assert.deepEqual(
      await violations(
        'src/client/zz.ts',
        "import { errors } from '../core/errors.js';\nimport { LIMITS } from '../protocol/limits.js';\nexport const x = [errors, LIMITS];\n",
      ),
      [],
    );
    assert.deepEqual(
      await violations(
        'src/registry-api/zz.ts',
        "import { Registry } from '../registry/registry.js';\nexport const x = Registry;\n",
      ),
      [],
    );
  });
});
