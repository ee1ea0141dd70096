/**
 * @module What `meshwork agent` loads at start: the etcd client (etcd3 and its gRPC stack,
 * ~200 ms of CPU at every start, ~1/5 of the agent's module loading) only in cluster mode
 * (`--store etcd`), by import() where the runtime builds the etcd store, ACL store and cluster.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { staticGraph } from '../../../helpers/static-graph.js';

describe('meshwork agent: what it loads at start', () => {
  const { files, packages } = staticGraph('cli/commands/agent.ts');

  it('reaches etcd3 and the etcd store, ACL store and membership only on use', () => {
    assert.ok(!packages.has('etcd3'), 'etcd3 is imported statically');
    const etcdFiles = [...files].filter((f) => /(^|\/)etcd[^/]*\.ts$/.test(f)).sort();
    // Types and the connection options only: nothing that loads etcd3.
    assert.deepEqual(etcdFiles, []);
  });

  it('still reaches the parts every agent runs', () => {
    for (const p of ['fastify', 'better-sqlite3', 'zod', 'prom-client', 'pino'])
      assert.ok(packages.has(p), `${p} not reached`);
    assert.ok(files.has('cli/agent-runtime.ts'));
  });
});
