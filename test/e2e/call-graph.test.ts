/**
 * @module The mesh call graph through real processes (issue 21): an agent, a caller's sidecar
 * (productpage, no app) and a callee's sidecar (reviews, in front of
 * test/fixtures/policy-app.mjs), plus a service without a sidecar (legacy, the same app
 * registered directly). Traffic through the caller's outbound listener shows in
 * `GET /api/v1/mesh/graph` as productpage -> reviews (counted once, by the callee's sidecar)
 * and productpage -> legacy (counted by the caller: no sidecar saw it), with the error rate of
 * the 500s the app answered, and `meshwork top --once` prints those edges.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type { MeshGraph, MeshGraphEdge } from '../../src/protocol/mesh/graph.js';
import { http } from '../helpers/agent.js';
import {
  BIN,
  FAST_SIDECAR_HEALTH,
  runCli,
  type AgentProcess,
  type SidecarProcess,
} from '../helpers/cli.js';
import { MeshFixture } from '../helpers/mesh-fixture.js';
import { until } from '../helpers/until.js';

const APP = fileURLToPath(new URL('../fixtures/policy-app.mjs', import.meta.url));

/** Fast health checks and a short report interval, so the test waits little. */
const ENV = { ...FAST_SIDECAR_HEALTH, MESHWORK_SIDECAR__EDGE_REPORT_INTERVAL_MS: '200' };

describe('the mesh call graph through real sidecars', () => {
  let mesh: MeshFixture;
  let agent: AgentProcess;
  let caller: SidecarProcess;
  /** What the test sent, per edge: requests and the 5xx among them. */
  const sent = { reviews: { requests: 0, errors: 0 }, legacy: { requests: 0, errors: 0 } };

  const send = async (host: 'reviews' | 'legacy', path: string): Promise<number> => {
    const r = await http(caller.outboundUrl, 'GET', path, undefined, { host });
    sent[host].requests++;
    if (r.status >= 500) sent[host].errors++;
    return r.status;
  };
  const graph = async (): Promise<MeshGraph> => {
    const r = await http<MeshGraph>(agent.url, 'GET', '/api/v1/mesh/graph?window=600');
    assert.equal(r.status, 200);
    return r.body;
  };
  const edge = (g: MeshGraph, destination: string): MeshGraphEdge | undefined =>
    g.edges.find((e) => e.source === 'productpage' && e.destination === destination);

  before(async () => {
    mesh = await MeshFixture.start('call-graph-');
    agent = mesh.agent;
    const legacy = await mesh.app(APP, 'legacy');
    const reg = await http(agent.url, 'PUT', '/api/v1/instances', {
      id: 'legacy-1',
      service: 'legacy',
      address: '127.0.0.1',
      port: legacy.port,
    });
    assert.equal(reg.status, 200, JSON.stringify(reg.body));
    [, caller] = await Promise.all([
      mesh.sidecar('reviews', { app: APP, env: ENV }),
      mesh.sidecar('productpage', { env: ENV }),
    ]);
    // Until both are reachable through the caller (these calls count on the edges too).
    await until(async () => (await send('reviews', '/warm')) === 200, 15_000, 'reviews reachable');
    await until(async () => (await send('legacy', '/warm')) === 200, 15_000, 'legacy reachable');
    // Warm-up calls that failed (before the caller's first snapshot, or before reviews passed)
    // may or may not be edges, depending on how they failed: start from what the graph counted
    // of them, once it stays the same for 1 s (five report intervals).
    let last = '';
    await until(
      async () => {
        const g = await graph();
        const counts = (['reviews', 'legacy'] as const).map((d) => {
          const e = edge(g, d);
          return { requests: e?.requests ?? 0, errors: e?.errors ?? 0 };
        });
        const now = JSON.stringify(counts);
        const settled = now === last;
        last = now;
        if (settled)
          [sent.reviews, sent.legacy] = counts as [typeof sent.reviews, typeof sent.legacy];
        else await new Promise((r) => setTimeout(r, 1_000));
        return settled;
      },
      20_000,
      'the warm-up calls reported',
    );
  });

  after(async () => {
    await mesh?.stop();
  });

  it('shows each call once on its edge, with the 500s as its error rate', async () => {
    for (let i = 0; i < 20; i++) assert.equal(await send('reviews', `/ok/${i}`), 200);
    for (let i = 0; i < 5; i++) assert.equal(await send('reviews', '/status/500'), 500);
    for (let i = 0; i < 7; i++) assert.equal(await send('legacy', `/ok/${i}`), 200);
    await until(
      async () => {
        const g = await graph();
        return (
          edge(g, 'reviews')?.requests === sent.reviews.requests &&
          edge(g, 'legacy')?.requests === sent.legacy.requests
        );
      },
      10_000,
      'the graph counts every call sent',
    );
    // More calls after the graph caught up: counted once each again (the caller does not count
    // what reached the callee's sidecar, or reviews would show twice what was sent).
    for (let i = 0; i < 2; i++) assert.equal(await send('reviews', '/status/500'), 500);
    await until(
      async () => edge(await graph(), 'reviews')?.requests === sent.reviews.requests,
      10_000,
      'the graph counts the last calls',
    );
    const g = await graph();
    const reviews = edge(g, 'reviews')!;
    assert.equal(reviews.requests, sent.reviews.requests);
    assert.equal(reviews.errors, sent.reviews.errors);
    assert.ok(reviews.errors >= 7);
    assert.equal(
      reviews.errorRate,
      Math.round((sent.reviews.errors / sent.reviews.requests) * 1e4) / 1e4,
    );
    assert.ok(reviews.rps > 0);
    assert.ok(reviews.p99Ms > 0);
    const legacyEdge = edge(g, 'legacy')!;
    assert.deepEqual(
      [legacyEdge.requests, legacyEdge.errors],
      [sent.legacy.requests, sent.legacy.errors],
    );
    // The catalog's services are nodes.
    for (const id of ['productpage', 'reviews', 'legacy'])
      assert.ok(
        g.nodes.some((n) => n.id === id && n.kind === 'service'),
        id,
      );
  });

  it('shows a mesh gateway as a node of kind gateway, its calls on its edge', async () => {
    // The gateway reports every 200 ms; a VirtualService bound to it routes shop.test to reviews.
    const config = join(mesh.dir, 'gateway.yaml');
    writeFileSync(config, 'edgeReportIntervalMs: 200\n');
    const vs = join(mesh.dir, 'vs.yaml');
    writeFileSync(
      vs,
      `apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: { name: shop }
spec:
  hosts: [shop.test]
  gateways: [edge]
  http:
  - route:
    - destination: { host: reviews }
`,
    );
    const applied = await runCli(['apply', '-f', vs], { MESHWORK_ADDR: agent.url });
    assert.equal(applied.code, 0, applied.stderr);
    const gw = await mesh.gateway('gateway', ['--name', 'edge', '--config', config]);
    let calls = 0;
    const viaGateway = async (path: string): Promise<number> => {
      const r = await http(gw.url, 'GET', path, undefined, { host: 'shop.test' });
      calls++;
      return r.status;
    };
    await until(async () => (await viaGateway('/warm')) === 200, 15_000, 'reviews via the gateway');
    for (let i = 0; i < 9; i++) assert.equal(await viaGateway(`/gw/${i}`), 200);
    const g = await until(
      async () => {
        const g = await graph();
        const e = g.edges.find((x) => x.source === 'edge' && x.destination === 'reviews');
        return e?.requests === calls ? g : undefined;
      },
      10_000,
      'the graph counts the calls through the gateway',
    );
    assert.deepEqual(
      g.nodes.find((n) => n.id === 'edge'),
      { id: 'edge', kind: 'gateway' },
    );
    // Not counted as unknown callers of reviews as well.
    assert.equal(
      g.edges.find((x) => x.source === 'unknown'),
      undefined,
    );
  });

  it('refuses a bad report naming the field', async () => {
    const r = await http(agent.url, 'POST', '/api/v1/mesh/edges', {
      proxy: 'p',
      reporter: 'source',
      intervalMs: 1000,
      edges: [
        {
          source: 'a',
          destination: 'b',
          requests: 1,
          errors: 2,
          latencyBuckets: new Array(16).fill(0),
        },
      ],
    });
    assert.equal(r.status, 400);
    assert.match(JSON.stringify(r.body), /edges\[0\]\.errors/);
    // The agent's metrics count the reports by result.
    const text = (await http(agent.url, 'GET', '/metrics')).text;
    const reports = (result: string): number =>
      Number(
        new RegExp(`meshwork_call_graph_reports_total\\{result="${result}"\\} (\\d+)`).exec(
          text,
        )?.[1] ?? 0,
      );
    assert.ok(reports('recorded') > 0, text);
    assert.equal(reports('invalid'), 1);
    assert.match(text, /meshwork_call_graph_edges [1-9]/);
    const w = await http(agent.url, 'GET', '/api/v1/mesh/graph?window=5');
    assert.equal(w.status, 400);
    assert.match(JSON.stringify(w.body), /window/);
  });

  it('meshwork top --once prints the edges', async () => {
    const r = await runCli(['top', '--once', '--window', '600', '--registry', agent.url]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0] ?? '', /SOURCE\s+DESTINATION\s+RPS\s+ERRORS\s+P99/);
    const row = lines.find((l) => /^productpage\s+reviews\s/.test(l));
    assert.ok(row !== undefined, r.stdout);
    const pct = ((sent.reviews.errors / sent.reviews.requests) * 100).toFixed(1);
    assert.ok(row.includes(`${pct}%`), `${row} has ${pct}%`);
    assert.ok(
      lines.some((l) => /^productpage\s+legacy\s/.test(l)),
      r.stdout,
    );
  });

  it('meshwork top redraws the table until SIGINT', async () => {
    const top = spawn(process.execPath, [BIN, 'top', '--window', '600', '--registry', agent.url], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    top.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => top.once('exit', resolve));
    // Piped, each table follows the last (one every 2 s).
    await until(() => (out.match(/SOURCE\s+DESTINATION/g) ?? []).length >= 2, 10_000, 'two tables');
    assert.match(out, /^productpage\s+reviews\s/m);
    top.kill('SIGINT');
    assert.equal(await exited, 0);
  });
});
