/** @module `meshwork top`: the mesh call graph in the terminal, who calls whom, refreshed. */
import { setTimeout as sleep } from 'node:timers/promises';
import { errors } from '../../core/errors.js';
import type { MeshGraph, MeshGraphEdge } from '../../protocol/mesh/graph.js';
import { printJson, withClient } from '../client-command.js';
import { CLIENT_FLAGS, parseFlags, table, type Command } from '../command.js';

/** How often the table is redrawn. */
const REFRESH_MS = 2_000;

/** The table row of one edge (SOURCE DESTINATION RPS ERRORS P99). */
export function edgeRow(e: MeshGraphEdge): string[] {
  return [
    e.source,
    e.destination,
    e.rps.toFixed(2),
    `${(e.errorRate * 100).toFixed(1)}%`,
    e.p99Ms >= 1000 ? `${e.p99Ms / 1000}s` : `${e.p99Ms}ms`,
  ];
}

/** The graph's edges as a table, busiest first. */
export function graphTable(g: MeshGraph): string {
  const edges = [...g.edges].sort((a, b) => b.rps - a.rps || a.source.localeCompare(b.source));
  return table(['SOURCE', 'DESTINATION', 'RPS', 'ERRORS', 'P99'], edges.map(edgeRow));
}

export const command: Command = {
  name: 'top',
  synopsis: 'Show the mesh call graph: requests per second, errors and p99 per edge',
  help: `Usage: meshwork top [--once] [--window SECONDS] [--json] [--registry URL] [--token T]

Shows who calls whom in the mesh, from the call graph the agent aggregates from its proxies'
reports (GET /api/v1/mesh/graph; docs/observability.md, "Call graph"): one row per edge with
its requests per second, the share of errors (5xx or no answer) and the p99 latency over the
window, busiest first, redrawn every 2 s until Ctrl-C. The token needs mesh read and service read.

Flags:
  --once              print the table once and exit
  --window <seconds>  the window the rates are over (10 to 3600, default 60)
  --json              the graph as JSON (implies --once)

Examples:
  meshwork top
  meshwork top --once --window 600
`,
  async run(argv, io) {
    const { values } = parseFlags(
      argv,
      { ...CLIENT_FLAGS, once: { type: 'boolean' }, window: { type: 'string' } },
      false,
    );
    let windowSeconds: number | undefined;
    if (values.window !== undefined) {
      if (!/^\d+$/.test(values.window))
        throw errors.cliUsage(`--window must be a whole number of seconds, not "${values.window}"`);
      windowSeconds = Number(values.window);
    }
    const once = values.once === true || values.json === true;
    return withClient(values, io, async (c) => {
      const fetchGraph = (): Promise<MeshGraph> =>
        c.meshGraph(windowSeconds === undefined ? {} : { windowSeconds });
      if (once) {
        const g = await fetchGraph();
        if (values.json === true) printJson(io, g);
        else io.stdout.write(graphTable(g));
        return 0;
      }
      let stopped = false;
      const stop = (): void => {
        stopped = true;
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      const tty = (io.stdout as { isTTY?: boolean }).isTTY === true;
      while (!stopped) {
        // On a terminal the table is redrawn in place; piped, each one follows the last. An
        // agent away for a moment is said, and asked again at the next refresh.
        const clear = tty ? '\x1b[H\x1b[2J' : '';
        try {
          const g = await fetchGraph();
          io.stdout.write(
            `${clear}${g.generatedAt}  window ${g.windowSeconds}s  ${g.edges.length} edges\n${graphTable(g)}\n`,
          );
        } catch (err) {
          io.stderr.write(`meshwork top: ${(err as Error).message}\n`);
        }
        await sleep(REFRESH_MS);
      }
      return 0;
    });
  },
};
