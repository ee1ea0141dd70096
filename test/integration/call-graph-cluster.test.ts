/**
 * @module The call graph across a cluster (issue 21): two agents over one real etcd, each
 * sharing its proxies' edge counts under its reserved key (graph-share.ts; every 100 ms here).
 * Edge reports posted to agent A show in agent B's graph, and reports to both add up on both
 * (requests and errors summed, p99 from the merged histograms), each agent's counted once (no
 * echo of a share back into the next), and a gateway connected to A is drawn as a gateway by B.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RunningAgent } from '../../src/cli/agent-runtime.js';
import type { MeshGraph, MeshGraphEdge } from '../../src/protocol/mesh/graph.js';
import { http, startClusterAgent } from '../helpers/agent.js';
import { startEtcd, type EtcdProcess } from '../helpers/etcd.js';
import { openRawStream, type RawStream } from '../helpers/mesh-push.js';
import { until } from '../helpers/until.js';
import { edgeReport } from '../helpers/edge-report.js';

describe('the call graph over two agents on one etcd', () => {
  let etcd: EtcdProcess;
  let a: RunningAgent;
  let b: RunningAgent;
  let gateway: RawStream | undefined;
  before(async () => {
    etcd = await startEtcd();
    const prefix = `/call-graph-${process.pid}/`;
    const deps = { graphShareIntervalMs: 100 };
    a = await startClusterAgent([etcd.endpoint], 'agent-a', prefix, {}, deps);
    b = await startClusterAgent([etcd.endpoint], 'agent-b', prefix, {}, deps);
  });
  after(async () => {
    await gateway?.close();
    // Until A saw the stream go: an agent closed while it still holds a stream its client has
    // just aborted took 70 s to close here (fastify waits on that connection).
    if (a !== undefined && gateway !== undefined)
      await until(
        async () =>
          (await http(a.url, 'GET', '/api/v1/mesh/proxies?local=true')).body.proxies.length === 0
            ? true
            : undefined,
        10_000,
        "A saw the gateway's stream end",
      );
    await a?.close();
    await b?.close();
    await etcd?.stop();
  });

  const report = async (
    agent: RunningAgent,
    proxy: string,
    source: string,
    requests: number,
    errors: number,
    bucket: number,
  ): Promise<void> => {
    const r = await http(
      agent.url,
      'POST',
      '/api/v1/mesh/edges',
      edgeReport(proxy, source, 'payments', requests, errors, bucket),
    );
    assert.equal(r.status, 204, r.text);
  };
  const graph = async (agent: RunningAgent): Promise<MeshGraph> => {
    const r = await http<MeshGraph>(agent.url, 'GET', '/api/v1/mesh/graph?window=600');
    assert.equal(r.status, 200, r.text);
    return r.body;
  };
  const edge = async (agent: RunningAgent, source: string): Promise<MeshGraphEdge | undefined> =>
    (await graph(agent)).edges.find((e) => e.source === source && e.destination === 'payments');
  const requestsAt = (agent: RunningAgent, source: string, n: number, what: string) =>
    until(
      async () => {
        const e = await edge(agent, source);
        return e?.requests === n ? e : undefined;
      },
      10_000,
      what,
    );

  it('serves on one agent the edges reported to the other, summed with its own, each counted once', async () => {
    // 60 calls under 5 ms, 6 of them errors, reported to A only.
    await report(a, 'payments-a', 'orders', 60, 6, 2);
    const seen = await requestsAt(b, 'orders', 60, "A's report in B's graph");
    assert.equal(seen.errors, 6);
    assert.equal(seen.p99Ms, 5);

    // 40 more calls between 25 and 50 ms, reported to B: both agents add them up.
    await report(b, 'payments-b', 'orders', 40, 0, 5);
    for (const [agent, name] of [
      [a, 'A'],
      [b, 'B'],
    ] as const) {
      const e = await requestsAt(agent, 'orders', 100, `both reports in ${name}'s graph`);
      assert.equal(e.errors, 6);
      assert.equal(e.errorRate, 0.06);
      // The merged histogram: 60 calls <= 5 ms and 40 <= 50 ms: the 99th is in the 50 ms bucket.
      assert.equal(e.p99Ms, 50);
    }

    // No echo: a share merged by B is not shared again. After more intervals and one more
    // report to A, both agents hold exactly what was reported.
    await report(a, 'payments-a', 'orders', 10, 0, 2);
    await requestsAt(b, 'orders', 110, "A's second report in B's graph");
    assert.equal((await edge(a, 'orders'))?.requests, 110);
    await report(b, 'payments-b', 'orders', 1, 0, 2);
    await requestsAt(a, 'orders', 111, "B's second report in A's graph");
    assert.equal((await edge(b, 'orders'))?.requests, 111);
    // Reporting proxies are each agent's own.
    const metrics = (await http(b.url, 'GET', '/metrics')).text;
    assert.match(metrics, /^meshwork_call_graph_reporting_proxies 1$/m);
    assert.match(metrics, /^meshwork_call_graph_share_events_total\{event="merged"\} [1-9]/m);
  });

  it('draws a gateway connected to the other agent as a gateway', async () => {
    gateway = await openRawStream(a.url, 'id=gw-a&kind=gateway&name=edge');
    await gateway.until(1);
    await report(a, 'payments-a', 'edge', 5, 0, 2);
    await requestsAt(b, 'edge', 5, "the gateway's calls in B's graph");
    await until(
      async () =>
        (await graph(b)).nodes.find((n) => n.id === 'edge')?.kind === 'gateway' ? true : undefined,
      10_000,
      'the gateway drawn as one by B',
    );
    // B's own gateways are none: only the node the edges name is marked.
    assert.equal((await graph(b)).nodes.filter((n) => n.kind === 'gateway').length, 1);
  });
});
