/** @module Unit tests of createLogger, reading the raw JSON lines a real pino logger writes. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const loggerModule = fileURLToPath(new URL('../../../src/telemetry/logger.ts', import.meta.url));

/** Runs `body` (with `createLogger` in scope) in a child process; answers its stderr lines. */
function stderrLines(body: string): string[] {
  const script = `const { createLogger } = await import(${JSON.stringify(loggerModule)});\n${body}`;
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '--eval', script],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  return r.stderr.split('\n').filter((line) => line.startsWith('{'));
}

describe('createLogger', () => {
  // Issue 17: child loggers repeated the key ("component":"registry","component":"health"), and
  // JSON.parse silently keeps the last one, so the raw text is what is checked.
  it('writes one component key, the innermost, for a child of a child', () => {
    const [line] = stderrLines(`
      const log = createLogger({ level: 'info' });
      log.child({ component: 'registry' }).child({ component: 'health' }).info({ checkId: 'c1' }, 'nested');
    `);
    assert.ok(line !== undefined, 'no log line written');
    assert.equal(line.match(/"component":/g)?.length, 1, line);
    const parsed = JSON.parse(line) as Record<string, unknown>;
    assert.equal(parsed['component'], 'health');
    assert.equal(parsed['checkId'], 'c1');
    assert.equal(parsed['msg'], 'nested');
  });

  it('keeps the bindings of every ancestor that the child does not rebind', () => {
    const [line] = stderrLines(`
      const log = createLogger({ level: 'info' });
      log.child({ component: 'catalog-store', kind: 'sqlite' }).child({ component: 'x', shard: 2 }).warn({}, 'kept');
    `);
    assert.ok(line !== undefined, 'no log line written');
    for (const key of ['component', 'kind', 'shard', 'pid', 'name']) {
      assert.equal(line.match(new RegExp(`"${key}":`, 'g'))?.length, 1, `${key} in ${line}`);
    }
    const parsed = JSON.parse(line) as Record<string, unknown>;
    assert.deepEqual([parsed['component'], parsed['kind'], parsed['shard']], ['x', 'sqlite', 2]);
  });

  it('honours the level in children', () => {
    const lines = stderrLines(`
      const log = createLogger({ level: 'warn' }).child({ component: 'a' }).child({ component: 'b' });
      log.info({}, 'dropped');
      log.warn({}, 'written');
    `);
    assert.deepEqual(
      lines.map((l) => (JSON.parse(l) as { msg: string }).msg),
      ['written'],
    );
  });
});
