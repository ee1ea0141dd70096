/**
 * @module The gateway's mesh identity against a real agent's CA with ACLs on (issue 20): the CA
 * signs the gateway's leaf only for a token that may write its service account, as a sidecar's
 * only for its service; the identity is `spiffe://<td>/ns/<namespace>/sa/<serviceAccount>`. An
 * in-process agent (ACLs from a resolver: token `<name>-token` may write service `<name>`) and
 * in-process gateways in mesh mode, fed by the real push stream.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isMeshError } from '../../src/core/errors.js';
import { silentLogger } from '../../src/core/logger.js';
import { startGateway, type RunningGateway } from '../../src/gateway/gateway.js';
import { createMeshFeed } from '../../src/gateway/mesh-feed.js';
import { resolveGatewayOptions } from '../../src/gateway/options.js';
import {
  FAST_CHECKS,
  http,
  PER_SERVICE_TOKENS,
  startTestAgent,
  type TestAgent,
} from '../helpers/agent.js';

describe('gateway identity: the token decides which identity', () => {
  let agent: TestAgent;
  let dir: string;
  before(async () => {
    agent = await startTestAgent({ flags: FAST_CHECKS, deps: { acl: PER_SERVICE_TOKENS } });
    dir = mkdtempSync(join(tmpdir(), 'gateway-identity-'));
  });
  after(async () => {
    await agent.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A mesh gateway against the agent with `flags` (its snapshot kept under `dir`). */
  const start = (flags: Record<string, unknown>): Promise<RunningGateway> => {
    const options = resolveGatewayOptions({
      flags: {
        mesh: true,
        listen: '127.0.0.1:0',
        admin: '127.0.0.1:0',
        logLevel: 'silent',
        registry: [agent.url],
        dataDir: join(dir, String(flags.serviceAccount ?? 'default')),
        ...flags,
      },
    });
    return startGateway(options, silentLogger, {
      snapshotFeed: createMeshFeed(options, silentLogger),
    });
  };

  it('a token that may not write the service account: the start fails, naming the right it lacks', async () => {
    await assert.rejects(
      start({ token: 'orders-token' }),
      (err: unknown) =>
        isMeshError(err, 'MESHWORK_ERR_SIDECAR_IDENTITY') &&
        /spiffe:\/\/cluster\.local\/ns\/default\/sa\/meshwork-gateway/.test(err.message) &&
        /service:meshwork-gateway write/.test(err.message),
    );
  });

  it("a token for its service account: a leaf for that account in the gateway's namespace", async () => {
    const gw = await start({ token: 'edge-token', serviceAccount: 'edge', namespace: 'shop' });
    try {
      assert.equal(gw.mtls.state, 'on');
      const dump = (await http(gw.adminUrl, 'GET', '/config_dump')).body;
      assert.equal(dump.mtls.state, 'on');
      assert.equal(dump.mtls.spiffeId, 'spiffe://cluster.local/ns/shop/sa/edge');
      const roots = (await http(agent.url, 'GET', '/api/v1/mesh/ca/roots')).body;
      assert.equal(dump.mtls.activeRootId, roots.activeRootId);
    } finally {
      await gw.close();
    }
  });
});
