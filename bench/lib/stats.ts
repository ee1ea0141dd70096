/** @module Small statistics for benchmark results: percentiles, median, summaries. */

/** The p-th percentile (0-100) of `values`, linear interpolation between closest ranks. */
export function percentile(values: ArrayLike<number>, p: number): number {
  const n = values.length;
  if (n === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  const rank = (Math.min(Math.max(p, 0), 100) / 100) * (n - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  const a = sorted[lo] ?? Number.NaN;
  const b = sorted[hi] ?? Number.NaN;
  return a + (b - a) * (rank - lo);
}

export function median(values: ArrayLike<number>): number {
  return percentile(values, 50);
}

export function mean(values: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i] ?? 0;
  return values.length === 0 ? Number.NaN : s / values.length;
}

export interface Summary {
  readonly n: number;
  readonly min: number;
  readonly p1: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  readonly mean: number;
}

/** Percentile summary of `values` (one sort). */
export function summarize(values: ArrayLike<number>): Summary {
  const sorted = Float64Array.from(values).sort();
  const at = (p: number): number => percentile(sorted, p);
  return {
    n: sorted.length,
    min: sorted[0] ?? Number.NaN,
    p1: at(1),
    p50: at(50),
    p90: at(90),
    p99: at(99),
    p999: at(99.9),
    max: sorted[sorted.length - 1] ?? Number.NaN,
    mean: mean(sorted),
  };
}

/** A wall-clock timestamp in ms comparable across processes on this machine. */
export function sharedNow(): number {
  return performance.timeOrigin + performance.now();
}
