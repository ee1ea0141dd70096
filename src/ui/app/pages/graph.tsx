/**
 * @module The mesh call graph (`GET /api/v1/mesh/graph?window=60`): who calls whom, drawn as SVG
 * with each edge's requests per second, error rate and p99. The graph is a rate over a window,
 * so the page reads it again every 10 s while it is visible (one small read, not a hot loop).
 */
import { useEffect, useState } from 'preact/hooks';
import { ApiError, call, messageOf } from '../api.js';
import { LAYER_GAP, NODE_HEIGHT, NODE_WIDTH, layoutGraph } from '../graph-layout.js';
import { Notice } from '../parts.js';
import type { MeshGraph } from '../types.js';

const REFRESH_MS = 10_000;
const WINDOW_S = 60;

type GraphState =
  | { readonly kind: 'loading' }
  | { readonly kind: 'absent'; readonly why: string }
  | { readonly kind: 'error'; readonly message: string }
  | { readonly kind: 'graph'; readonly graph: MeshGraph };

function Edge(props: {
  edge: MeshGraph['edges'][number];
  at: Map<string, { x: number; y: number }>;
  /** The lowest node's bottom edge. */
  bottom: number;
}) {
  const { edge: e, at } = props;
  const a = at.get(e.source);
  const b = at.get(e.destination);
  if (a === undefined || b === undefined) return null;
  const x1 = a.x + NODE_WIDTH;
  const y1 = a.y + NODE_HEIGHT / 2;
  const x2 = b.x;
  const y2 = b.y + NODE_HEIGHT / 2;
  // A call to the same layer, backwards (a cycle) or past the next layer bends below the
  // nodes, so it crosses none of them.
  const back = x2 <= x1 || x2 - x1 > LAYER_GAP + 1;
  // Longer bends dip deeper, so the labels of two bends from one node do not overlap.
  const dip = 50 + (Math.abs(b.x - a.x) / (NODE_WIDTH + LAYER_GAP)) * 30;
  const bx = b.x + NODE_WIDTH / 2;
  // Below every node of the drawing, from the caller's side to the callee's bottom.
  const low = props.bottom + dip;
  const path = back
    ? `M${x1},${y1} C${x1 + 40},${low} ${bx},${low} ${bx},${b.y + NODE_HEIGHT}`
    : `M${x1},${y1} C${(x1 + x2) / 2},${y1} ${(x1 + x2) / 2},${y2} ${x2},${y2}`;
  const label = `${e.rps.toFixed(1)} rps · ${(e.errorRate * 100).toFixed(1)}% err · p99 ${e.p99Ms} ms`;
  const lx = back ? (x1 + bx) / 2 : (x1 + x2) / 2;
  const ly = back ? props.bottom + dip * 0.75 + 12 : (y1 + y2) / 2 - 6;
  return (
    <g class={`edge${e.errors > 0 ? ' erroring' : ''}`} data-edge={`${e.source}->${e.destination}`}>
      <title>
        {e.source} → {e.destination}: {e.requests} requests, {e.errors} errors
      </title>
      <path d={path} marker-end="url(#arrow)" />
      <text x={lx} y={ly} text-anchor="middle">
        {label}
      </text>
    </g>
  );
}

function GraphSvg({ graph }: { graph: MeshGraph }) {
  const layout = layoutGraph(graph);
  const at = new Map(layout.nodes.map((n) => [n.id, n]));
  return (
    <svg
      class="graph"
      width={layout.width}
      height={layout.height + 130}
      role="img"
      aria-label="mesh call graph"
    >
      <defs>
        <marker
          id="arrow"
          viewBox="0 0 10 10"
          refX="10"
          refY="5"
          markerWidth="7"
          markerHeight="7"
          orient="auto"
        >
          <path d="M0,0 L10,5 L0,10 z" fill="#8a94a8" />
        </marker>
      </defs>
      {graph.edges.map((e) => (
        <Edge edge={e} at={at} bottom={Math.max(...layout.nodes.map((n) => n.y + NODE_HEIGHT))} />
      ))}
      {layout.nodes.map((n) => (
        <g class={`node ${n.kind}`} data-node={n.id}>
          <rect x={n.x} y={n.y} width={NODE_WIDTH} height={NODE_HEIGHT} rx="6" />
          <text x={n.x + NODE_WIDTH / 2} y={n.y + NODE_HEIGHT / 2 + 4} text-anchor="middle">
            {n.kind === 'gateway' ? `⇥ ${n.id}` : n.id}
          </text>
        </g>
      ))}
    </svg>
  );
}

export function GraphPage() {
  const [state, setState] = useState<GraphState>({ kind: 'loading' });
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ac = new AbortController();
    const load = async (): Promise<void> => {
      // A tab in the background asks nothing; it reads again once it is looked at.
      if (document.hidden) {
        timer = setTimeout(() => void load(), REFRESH_MS);
        return;
      }
      try {
        const r = await call<MeshGraph>('GET', `/api/v1/mesh/graph?window=${WINDOW_S}`, {
          signal: ac.signal,
        });
        setState({ kind: 'graph', graph: r.body });
      } catch (err) {
        if (ac.signal.aborted) return;
        if (err instanceof ApiError && err.status === 404) {
          // An agent without the call graph (older than issue 21's): nothing to refresh.
          setState({ kind: 'absent', why: err.message });
          return;
        }
        setState({ kind: 'error', message: messageOf(err) });
      }
      if (!ac.signal.aborted) timer = setTimeout(() => void load(), REFRESH_MS);
    };
    void load();
    return () => {
      ac.abort();
      clearTimeout(timer);
    };
  }, []);
  return (
    <section>
      <div class="toolbar">
        <h1>Call graph</h1>
        <span class="muted">
          last {WINDOW_S} s, from the proxies' reports; refreshed every 10 s
        </span>
      </div>
      {state.kind === 'loading' && <Notice>Loading the call graph…</Notice>}
      {state.kind === 'error' && <Notice error={state.message} />}
      {state.kind === 'absent' && (
        <p class="empty" data-testid="no-graph">
          No call graph data: this agent does not serve the call graph ({state.why}).
        </p>
      )}
      {state.kind === 'graph' && state.graph.edges.length === 0 && (
        <p class="empty" data-testid="no-graph">
          No call graph data: no proxy reported calls in the last {state.graph.windowSeconds} s.
        </p>
      )}
      {/* The catalog's services are nodes even before any call: drawn without edges. */}
      {state.kind === 'graph' && state.graph.nodes.length > 0 && (
        <div class="graph-wrap">
          <GraphSvg graph={state.graph} />
        </div>
      )}
    </section>
  );
}
