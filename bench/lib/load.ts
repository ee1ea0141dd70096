/**
 * @module Load shapes shared by the benchmarks: a closed loop (N operations, C in flight), A B A B
 * rounds, and a flag parser with numeric options.
 */
import { parseArgs } from 'node:util';

export interface ClosedLoopResult {
  readonly ops: number;
  readonly errors: number;
  readonly elapsedMs: number;
  /** Per-operation latency in ms (successful operations only). */
  readonly latenciesMs: Float64Array;
  readonly firstError?: string;
}

/**
 * Runs `op(i)` for i in [0, n) with `concurrency` operations in flight. `op` resolves to false
 * (or throws) on failure. Latencies are closed-loop: they hide queueing (quote throughput).
 */
export async function closedLoop(
  n: number,
  concurrency: number,
  op: (i: number) => Promise<boolean>,
): Promise<ClosedLoopResult> {
  const latencies = new Float64Array(n);
  let ok = 0;
  let errors = 0;
  let firstError: string | undefined;
  let next = 0;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= n) return;
      const t = performance.now();
      let good = false;
      try {
        good = await op(i);
        if (!good) firstError ??= `operation ${i} failed`;
      } catch (err) {
        firstError ??= (err as Error).message;
      }
      if (good) latencies[ok++] = performance.now() - t;
      else errors++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return {
    ops: n,
    errors,
    elapsedMs: performance.now() - t0,
    latenciesMs: latencies.subarray(0, ok),
    ...(firstError === undefined ? {} : { firstError }),
  };
}

/** One contestant of an A B A B comparison. */
export interface Peer<R> {
  readonly name: string;
  run(round: number): Promise<R>;
}

export interface AlternateOptions {
  /**
   * `same` (the default): every round runs the peers in the given order (A B C, A B C, ...).
   * `mirrored`: even rounds run them in reverse (A B C, C B A, ...), so that peers next to each
   * other in the list run back to back in every round, each first in half of them: a steady
   * drift of the machine's speed then favours neither of two neighbours.
   */
  readonly order?: 'same' | 'mirrored';
}

/**
 * Runs every peer once per round (A B A B ...), so drift in the machine's speed hits all peers
 * alike. Returns the results per peer name, in round order.
 */
export async function alternate<R>(
  peers: readonly Peer<R>[],
  rounds: number,
  onResult?: (peer: string, round: number, result: R) => void,
  options: AlternateOptions = {},
): Promise<Map<string, R[]>> {
  const out = new Map<string, R[]>(peers.map((p) => [p.name, []]));
  const reversed = [...peers].reverse();
  for (let round = 1; round <= rounds; round++) {
    const order = options.order === 'mirrored' && round % 2 === 0 ? reversed : peers;
    for (const peer of order) {
      const r = await peer.run(round);
      out.get(peer.name)?.push(r);
      onResult?.(peer.name, round, r);
    }
  }
  return out;
}

/**
 * Like {@link alternate}, but every round runs all the peers at the same moment, each with its own
 * load (as bench:gateway-ab does): a swing of the machine's speed, which on this VM moves rounds
 * run one after the other by 10-50%, then hits every peer of a round alike.
 */
export async function together<R>(
  peers: readonly Peer<R>[],
  rounds: number,
  onResult?: (peer: string, round: number, result: R) => void,
): Promise<Map<string, R[]>> {
  const out = new Map<string, R[]>(peers.map((p) => [p.name, []]));
  for (let round = 1; round <= rounds; round++) {
    const results = await Promise.all(peers.map((p) => p.run(round)));
    peers.forEach((p, i) => {
      out.get(p.name)?.push(results[i] as R);
      onResult?.(p.name, round, results[i] as R);
    });
  }
  return out;
}

type FlagSpec = Record<string, { default: number | string | boolean; help: string }>;

/**
 * Parses `--name value` flags against `spec` (numbers, strings, booleans); `--help` prints the
 * flags and exits. Returns the values with the types of their defaults.
 */
export function flags<S extends FlagSpec>(
  usage: string,
  spec: S,
): {
  [K in keyof S]: S[K]['default'] extends number
    ? number
    : S[K]['default'] extends boolean
      ? boolean
      : string;
} {
  const options: Record<string, { type: 'string' | 'boolean' }> = { help: { type: 'boolean' } };
  for (const [k, v] of Object.entries(spec))
    options[k] = { type: typeof v.default === 'boolean' ? 'boolean' : 'string' };
  const { values } = parseArgs({ options, strict: true, allowPositionals: false });
  if (values.help === true) {
    console.log(usage);
    for (const [k, v] of Object.entries(spec))
      console.log(`  --${k.padEnd(14)} ${v.help} (default ${String(v.default)})`);
    process.exit(0);
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(spec)) {
    const raw = values[k];
    if (raw === undefined) out[k] = v.default;
    else if (typeof v.default === 'number') {
      const n = Number(raw);
      if (!Number.isFinite(n)) throw new Error(`--${k} must be a number, got "${String(raw)}"`);
      out[k] = n;
    } else out[k] = raw;
  }
  return out as never;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
