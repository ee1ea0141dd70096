/**
 * @module The call graph's layout: layers from left to right by call depth (callers left of
 * what they call), nodes spread down each layer. Cycles are cut where a depth stops growing.
 */
import type { MeshGraph } from './types.js';

export interface PlacedNode {
  readonly id: string;
  readonly kind: MeshGraph['nodes'][number]['kind'];
  readonly x: number;
  readonly y: number;
}

export interface GraphLayout {
  readonly nodes: readonly PlacedNode[];
  readonly width: number;
  readonly height: number;
}

export const NODE_WIDTH = 150;
export const NODE_HEIGHT = 34;
/** Room between layers for an edge's label (rps, error rate, p99). */
export const LAYER_GAP = 220;
const ROW_GAP = 40;
const MARGIN = 20;

/** Places every node (those only edges name too); deterministic for the same graph. */
export function layoutGraph(graph: MeshGraph): GraphLayout {
  const kinds = new Map(graph.nodes.map((n) => [n.id, n.kind]));
  for (const e of graph.edges) {
    if (!kinds.has(e.source)) kinds.set(e.source, 'service');
    if (!kinds.has(e.destination)) kinds.set(e.destination, 'service');
  }
  const ids = [...kinds.keys()].sort();
  // Longest-path depth, relaxed at most |nodes| times so a cycle cannot loop forever.
  const depth = new Map(ids.map((id) => [id, 0]));
  for (let round = 0; round < ids.length; round += 1) {
    let moved = false;
    for (const e of graph.edges) {
      if (e.source === e.destination) continue;
      const d = (depth.get(e.source) ?? 0) + 1;
      if (d > (depth.get(e.destination) ?? 0) && d < ids.length) {
        depth.set(e.destination, d);
        moved = true;
      }
    }
    if (!moved) break;
  }
  const layers = new Map<number, string[]>();
  for (const id of ids) {
    const d = depth.get(id) ?? 0;
    layers.set(d, [...(layers.get(d) ?? []), id]);
  }
  const tallest = Math.max(1, ...[...layers.values()].map((l) => l.length));
  const height = MARGIN * 2 + tallest * NODE_HEIGHT + (tallest - 1) * ROW_GAP;
  const nodes: PlacedNode[] = [];
  for (const [d, layer] of layers) {
    const span = layer.length * NODE_HEIGHT + (layer.length - 1) * ROW_GAP;
    const top = (height - span) / 2;
    layer.forEach((id, row) =>
      nodes.push({
        id,
        kind: kinds.get(id) ?? 'service',
        x: MARGIN + d * (NODE_WIDTH + LAYER_GAP),
        y: top + row * (NODE_HEIGHT + ROW_GAP),
      }),
    );
  }
  const deepest = Math.max(0, ...layers.keys());
  return {
    nodes,
    width: MARGIN * 2 + (deepest + 1) * NODE_WIDTH + deepest * LAYER_GAP,
    height,
  };
}
