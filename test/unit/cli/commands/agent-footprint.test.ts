/**
 * @module What `meshwork agent` loads at start: its options first and the runtime by import()
 * once they hold (bad flags and config files exit 2 without loading the agent), and the etcd
 * client (etcd3 and its gRPC stack, ~200 ms of CPU at every start, ~1/5 of the agent's module
 * loading) only in cluster mode (`--store etcd`), by import() where the runtime builds the etcd
 * store, ACL store and cluster.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { SRC, staticGraph } from '../../../helpers/static-graph.js';

describe('meshwork agent: what it loads at start', () => {
  const { files, packages } = staticGraph('cli/agent-runtime.ts');

  it('loads the runtime only once its options hold', () => {
    const command = staticGraph('cli/commands/agent.ts');
    assert.ok(command.files.has('agent/options.ts'));
    assert.ok(!command.files.has('cli/agent-runtime.ts'), 'the runtime is imported statically');
    for (const p of ['fastify', 'better-sqlite3', 'etcd3'])
      assert.ok(!command.packages.has(p), `${p} is imported statically`);
    const source = readFileSync(join(SRC, 'cli/commands/agent.ts'), 'utf8');
    assert.match(source, /await import\('\.\.\/agent-runtime\.js'\)/);
  });

  it('reaches etcd3 and the etcd store, ACL store and membership only on use', () => {
    assert.ok(!packages.has('etcd3'), 'etcd3 is imported statically');
    const etcdFiles = [...files].filter((f) => /(^|\/)etcd[^/]*\.ts$/.test(f)).sort();
    // The runtime names EtcdConnection as a type only (erased): no etcd module at all.
    assert.deepEqual(etcdFiles, []);
  });

  it('still reaches the parts every agent runs', () => {
    for (const p of ['fastify', 'better-sqlite3', 'zod', 'prom-client'])
      assert.ok(packages.has(p), `${p} not reached`);
    assert.ok(files.has('registry/store/sqlite/sqlite-catalog-store.ts'));
  });
});
