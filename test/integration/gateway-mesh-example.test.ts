// The edge gateway example of docs/mesh.md (examples/mesh-resources/gateway.yaml) on a real
// in-process agent and a real gateway in mesh mode (issue 18): applied as it is, it routes as its
// comments say.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { createRegistryClient } from '../../src/client/registry-client.js';
import { silentLogger } from '../../src/core/logger.js';
import { startGateway, type RunningGateway } from '../../src/gateway/gateway.js';
import { createMeshFeed } from '../../src/gateway/mesh-feed.js';
import { resolveGatewayOptions } from '../../src/gateway/options.js';
import { startTestAgent, type TestAgent } from '../helpers/agent.js';
import { call, startUpstream, until, type Upstream } from '../helpers/gateway.js';

const EXAMPLE = 'examples/mesh-resources/gateway.yaml';

describe('the edge gateway example of docs/mesh.md', () => {
  let agent: TestAgent;
  let users: Upstream;
  let orders: Upstream;
  let gw: RunningGateway;

  before(async () => {
    agent = await startTestAgent();
    users = await startUpstream('users');
    orders = await startUpstream('orders');
    const documents = parseAllDocuments(readFileSync(EXAMPLE, 'utf8')).map((d) => d.toJS());
    documents.push({
      set: 'edge-example',
      services: [
        { service: 'users', id: 'users-1', address: '127.0.0.1', port: users.port },
        { service: 'orders', id: 'orders-1', address: '127.0.0.1', port: orders.port },
      ],
    });
    await createRegistryClient({ addresses: [agent.url] }).meshApply({ documents });
    const options = resolveGatewayOptions({
      flags: {
        mesh: true,
        listen: '127.0.0.1:0',
        admin: '127.0.0.1:0',
        registry: [agent.url],
        dataDir: `${agent.dataDir}/gateway`,
        logLevel: 'silent',
      },
    });
    gw = await startGateway(options, silentLogger, {
      snapshotFeed: createMeshFeed(options, silentLogger),
    });
    await until(() => (gw.snapshot()?.clusters.length ?? 0) === 2, 10_000, 'both clusters');
  });
  after(async () => {
    await gw.close();
    await agent.stop();
    await Promise.all([users.close(), orders.close()]);
  });

  it('sends /api/users/... to users with the prefix rewritten', async () => {
    const r = await call(gw.url, '/api/users/42?full=1');
    assert.equal(r.text, 'users');
    assert.equal(users.seen.at(-1)?.url, '/users/42?full=1');
  });

  it('sends the rest of /api/, and /v<n>/orders, to orders with x-entry set and x-internal-token removed', async () => {
    for (const path of ['/api/carts/1', '/v2/orders/7']) {
      const r = await call(gw.url, path, { headers: { 'x-internal-token': 'secret' } });
      assert.equal(r.text, 'orders', path);
      const seen = orders.seen.at(-1);
      assert.equal(seen?.url, path);
      assert.equal(seen?.headers['x-entry'], 'gateway');
      assert.equal(seen?.headers['x-internal-token'], undefined);
    }
  });

  it('routes nothing else', async () => {
    assert.equal((await call(gw.url, '/v2/other')).status, 404);
  });
});
