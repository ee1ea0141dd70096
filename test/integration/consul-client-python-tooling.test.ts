/**
 * Issue 22: Debian's python3-consul 0.7.1, unmodified, on the endpoints tooling calls
 * (coordinate, operator/raft/configuration) and on the 404s it tolerates, each of which it reads
 * `X-Consul-Index` from (test/fixtures/python-consul-tooling.py). Before every /v1 404 carried
 * the header, those calls raised `KeyError: 'x-consul-index'`.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { startTestAgent, type TestAgent } from '../helpers/agent.js';
import { runPythonFixture } from '../helpers/python-fixture.js';

const SCRIPT = fileURLToPath(new URL('../fixtures/python-consul-tooling.py', import.meta.url));

const ORIGIN = { Vec: [0, 0, 0, 0, 0, 0, 0, 0], Error: 1.5, Adjustment: 0, Height: 1e-5 };

describe('python-consul 0.7.1 on the tooling endpoints and 404s', () => {
  let agent: TestAgent;
  let seen: Record<string, unknown>;
  const isIndex = (v: unknown): boolean => typeof v === 'string' && /^[1-9]\d*$/.test(v);

  before(async () => {
    agent = await startTestAgent();
    const { hostname, port } = new URL(agent.url);
    seen = await runPythonFixture(SCRIPT, [hostname, port, 'test-node']);
  });
  after(async () => {
    await agent.stop();
  });

  it('reads coordinate.nodes (blocking on its index) and coordinate.datacenters', () => {
    assert.deepEqual(seen.coordinate_nodes, [{ Node: 'test-node', Segment: '', Coord: ORIGIN }]);
    assert.deepEqual(seen.agent_self_coord, ORIGIN, 'agent.self() shows the same coordinate');
    assert.equal(seen.coordinate_index_is_digits, true);
    assert.equal(seen.coordinate_blocking_same_index, true);
    assert.deepEqual(seen.coordinate_datacenters, [
      {
        Datacenter: 'dc1',
        AreaID: 'WAN',
        Coordinates: [{ Node: 'test-node.dc1', Segment: '', Coord: ORIGIN }],
      },
    ]);
  });

  it('reads operator.raft_config: this agent, the one leader and voter', () => {
    const raft = seen.raft_config as { Servers: Record<string, unknown>[]; Index: number };
    assert.equal(raft.Servers.length, 1);
    assert.deepEqual(
      { ...raft.Servers[0], ID: undefined, LastIndex: undefined },
      {
        ID: undefined,
        Node: 'test-node',
        Address: '127.0.0.1:8300',
        Leader: true,
        ProtocolVersion: '3',
        Voter: true,
        LastIndex: undefined,
      },
    );
    assert.ok(raft.Index >= 1);
    assert.equal(seen.agent_self_version, '1.17.0');
  });

  it('gets (index, None) from every 404 it tolerates, instead of KeyError', () => {
    for (const name of [
      'kv_missing',
      'coordinate_node_unknown',
      'unknown_path',
      'unknown_agent_service',
    ]) {
      const v = seen[name] as unknown[];
      assert.ok(Array.isArray(v), `${name}: ${JSON.stringify(v)}`);
      assert.equal(v.length, 2, name);
      assert.ok(isIndex(v[0]), `${name} index ${String(v[0])}`);
      assert.equal(v[1], null, name);
    }
  });

  it('reads an unknown node as Consul answers it: catalog.node None, health.node []', () => {
    const [catalogIndex, catalogNode] = seen.catalog_node_unknown as [string, unknown];
    assert.ok(isIndex(catalogIndex));
    assert.equal(catalogNode, null);
    const [healthIndex, checks] = seen.health_node_unknown as [string, unknown];
    assert.ok(isIndex(healthIndex));
    assert.deepEqual(checks, []);
  });

  it('reads catalog/node-services through its HTTP layer', () => {
    const [index, body] = seen.node_services as [string, { Node: { Node: string } }];
    assert.ok(isIndex(index));
    assert.equal(body.Node.Node, 'test-node');
  });
});
