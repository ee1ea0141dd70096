/**
 * Issue 22: operator/raft/configuration of a cluster-mode agent describes its consensus as it is:
 * the etcd member as the voting leader (its ID and peer address as etcd reports them), and the
 * agents as non-voters. Read with python-consul 0.7.1's operator.raft_config(), unmodified.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { request } from 'undici';
import { useClusterPair } from '../helpers/cluster-pair.js';
import { runPythonFixture } from '../helpers/python-fixture.js';

/** python-consul's operator.raft_config() against `url`, printed as JSON. */
const RAFT_CONFIG = [
  'import json, sys, consul',
  'c = consul.Consul(host=sys.argv[1], port=int(sys.argv[2]))',
  "print(json.dumps({'raft': c.operator.raft_config()}))",
].join('\n');

interface RaftServer {
  ID: string;
  Node: string;
  Address: string;
  Leader: boolean;
  ProtocolVersion: string;
  Voter: boolean;
}

describe('operator/raft/configuration in cluster mode', () => {
  const cluster = useClusterPair('raft-test');

  it('lists the etcd member as the voting leader and both agents as non-voters', async () => {
    const { etcd, a, b } = cluster();
    // What etcd itself says (its gRPC gateway): the member's ID (decimal) and peer URL.
    const res = await request(`${etcd.endpoint}/v3/cluster/member/list`, {
      method: 'POST',
      body: '{}',
    });
    const list = (await res.body.json()) as {
      members: { ID: string; name: string; peerURLs: string[] }[];
    };
    assert.equal(list.members.length, 1);
    const member = list.members[0]!;

    const { hostname, port } = new URL(b.url);
    const seen = await runPythonFixture('-c', [RAFT_CONFIG, hostname, port]);
    const raft = seen.raft as { Servers: RaftServer[]; Index: number };
    const strip = ({ ID: _id, ...rest }: RaftServer & { LastIndex?: number }) => {
      delete rest.LastIndex;
      return rest;
    };
    assert.deepEqual(raft.Servers.map(strip), [
      {
        Node: member.name,
        Address: new URL(member.peerURLs[0]!).host,
        Leader: true,
        ProtocolVersion: '3',
        Voter: true,
      },
      {
        Node: 'agent-a',
        Address: new URL(a.url).host,
        Leader: false,
        ProtocolVersion: '3',
        Voter: false,
      },
      {
        Node: 'agent-b',
        Address: new URL(b.url).host,
        Leader: false,
        ProtocolVersion: '3',
        Voter: false,
      },
    ]);
    assert.equal(raft.Servers[0]?.ID, BigInt(member.ID).toString(16), "etcd's member ID, in hex");
    assert.ok(raft.Index > 0, "etcd's raft index");
  });
});
