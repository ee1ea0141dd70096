/** layoutGraph, the dashboard's call graph layout: callers left of callees, cycles bounded. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NODE_HEIGHT, NODE_WIDTH, layoutGraph } from '../../../src/ui/app/graph-layout.js';
import type { MeshGraph } from '../../../src/protocol/mesh/graph.js';

const edge = (source: string, destination: string): MeshGraph['edges'][number] => ({
  source,
  destination,
  rps: 1,
  errorRate: 0,
  p99Ms: 5,
  requests: 60,
  errors: 0,
});

function graph(edges: MeshGraph['edges'], nodes: MeshGraph['nodes'] = []): MeshGraph {
  return { generatedAt: '2026-12-06T00:00:00Z', windowSeconds: 60, nodes, edges };
}

describe('layoutGraph', () => {
  it('places each caller left of what it calls, and nodes only edges name too', () => {
    const g = graph(
      [
        edge('edge', 'users'),
        edge('users', 'orders'),
        edge('edge', 'orders'),
        edge('orders', 'payments'),
      ],
      [{ id: 'edge', kind: 'gateway' }],
    );
    const l = layoutGraph(g);
    const at = new Map(l.nodes.map((n) => [n.id, n]));
    assert.deepEqual([...at.keys()].sort(), ['edge', 'orders', 'payments', 'users']);
    assert.equal(at.get('edge')?.kind, 'gateway');
    for (const e of g.edges) {
      assert.ok(
        (at.get(e.source)?.x ?? 0) < (at.get(e.destination)?.x ?? 0),
        `${e.source} -> ${e.destination}`,
      );
    }
    for (const n of l.nodes) {
      assert.ok(n.x + NODE_WIDTH <= l.width && n.y + NODE_HEIGHT <= l.height);
    }
  });

  it('ends on a cycle, every node placed once inside the drawing', () => {
    const l = layoutGraph(graph([edge('a', 'b'), edge('b', 'c'), edge('c', 'a'), edge('a', 'a')]));
    assert.equal(l.nodes.length, 3);
    const spots = new Set(l.nodes.map((n) => `${n.x},${n.y}`));
    assert.equal(spots.size, 3, 'no two nodes overlap');
    for (const n of l.nodes) assert.ok(n.x + NODE_WIDTH <= l.width);
  });

  it('draws a lone node for an empty call list', () => {
    const l = layoutGraph(graph([], [{ id: 'solo', kind: 'service' }]));
    assert.equal(l.nodes.length, 1);
  });
});
