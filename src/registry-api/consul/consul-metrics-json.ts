/**
 * @module consulMetricsJson: the agent's Prometheus metrics (prom-client's `getMetricsAsJSON()`)
 * in the JSON shape of Consul's `GET /v1/agent/metrics` (go-metrics' in-memory sink display:
 * `Timestamp`, `Gauges`, `Points`, `Counters`, `Samples`). docs/consul-compatibility.md, "agent:
 * metrics", says how each Prometheus type maps and what cannot be carried over.
 */

/** One metric as prom-client's `Registry.getMetricsAsJSON()` gives it. */
export interface PromMetricJson {
  readonly name: string;
  /**
   * `'counter'`, `'gauge'`, `'histogram'` or `'summary'` (prom-client types it as a numeric enum,
   * but its JSON carries these strings).
   */
  readonly type: unknown;
  readonly values: readonly {
    readonly value: number;
    readonly labels: Readonly<Record<string, string | number | undefined>>;
    readonly metricName?: string;
  }[];
}

/** A gauge of Consul's answer. */
export interface ConsulGauge {
  readonly Name: string;
  readonly Value: number;
  readonly Labels: Record<string, string>;
}

/** A counter or sample of Consul's answer (go-metrics' SampledValue). */
export interface ConsulSampled {
  readonly Name: string;
  readonly Count: number;
  readonly Rate: number;
  readonly Sum: number;
  readonly Min: number;
  readonly Max: number;
  readonly Mean: number;
  readonly Stddev: number;
  readonly Labels: Record<string, string>;
}

/** Consul's `/v1/agent/metrics` JSON answer. */
export interface ConsulMetricsJson {
  readonly Timestamp: string;
  readonly Gauges: ConsulGauge[];
  readonly Points: never[];
  readonly Counters: ConsulSampled[];
  readonly Samples: ConsulSampled[];
}

/** Labels that split a series into buckets or quantiles: not labels of the Consul entry. */
const SPLIT_LABELS = new Set(['le', 'quantile']);

function labelsOf(
  labels: Readonly<Record<string, string | number | undefined>>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(labels).sort()) {
    const v = labels[k];
    if (!SPLIT_LABELS.has(k) && v !== undefined) out[k] = String(v);
  }
  return out;
}

/** The key of a label set (without `le` / `quantile`), to group a histogram's series. */
const keyOf = (labels: Record<string, string>): string => JSON.stringify(labels);

/**
 * Go's `time.Time.String()` of `ms` without its fraction, as Consul shows `Timestamp`
 * (`2017-08-08 02:55:10 +0000 UTC`).
 */
export function goTimestamp(ms: number): string {
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} +0000 UTC`;
}

/** A histogram's or summary's series of one label set, as read from prom-client's values. */
interface Series {
  labels: Record<string, string>;
  count: number;
  sum: number;
  /** Histogram: [upper bound, cumulative count] in prom-client's (ascending) order. */
  buckets: [number, number][];
  /** Summary: [quantile, value]. */
  quantiles: [number, number][];
}

function seriesOf(metric: PromMetricJson): Series[] {
  const byKey = new Map<string, Series>();
  for (const v of metric.values) {
    const labels = labelsOf(v.labels);
    const key = keyOf(labels);
    let s = byKey.get(key);
    if (s === undefined) {
      s = { labels, count: 0, sum: 0, buckets: [], quantiles: [] };
      byKey.set(key, s);
    }
    const suffix = (v.metricName ?? metric.name).slice(metric.name.length);
    if (suffix === '_count') s.count = v.value;
    else if (suffix === '_sum') s.sum = v.value;
    else if (suffix === '_bucket') s.buckets.push([Number(v.labels.le), v.value]);
    else if (v.labels.quantile !== undefined)
      s.quantiles.push([Number(v.labels.quantile), v.value]);
  }
  return [...byKey.values()];
}

/**
 * Min and Max of a histogram: the upper bounds of the first and the last bucket that gained
 * observations (the true values lie at or below them); with every observation past the last
 * finite bound, that bound for both. 0 and 0 without observations.
 */
function bucketBounds(buckets: readonly [number, number][]): { min: number; max: number } {
  let min: number | undefined;
  let max = 0;
  let below = 0;
  let lastFinite = 0;
  for (const [le, cumulative] of [...buckets].sort((a, b) => a[0] - b[0])) {
    if (Number.isFinite(le)) lastFinite = le;
    if (cumulative > below) {
      const bound = Number.isFinite(le) ? le : lastFinite;
      min ??= bound;
      max = bound;
    }
    below = cumulative;
  }
  return { min: min ?? 0, max };
}

const finite = (n: number): number => (Number.isFinite(n) ? n : 0);

function sampled(
  name: string,
  labels: Record<string, string>,
  f: { count: number; sum: number; min: number; max: number },
  uptimeS: number,
): ConsulSampled {
  return {
    Name: name,
    Count: finite(f.count),
    Rate: uptimeS > 0 ? finite(f.sum / uptimeS) : 0,
    Sum: finite(f.sum),
    Min: finite(f.min),
    Max: finite(f.max),
    Mean: f.count > 0 ? finite(f.sum / f.count) : 0,
    // Neither a Prometheus histogram nor a summary keeps the sum of squares.
    Stddev: 0,
    Labels: labels,
  };
}

/**
 * Maps prom-client's metrics to Consul's answer. Gauges stay gauges; a counter (a running total)
 * becomes one `Counters` entry of one reading: `Count` 1, `Sum`/`Min`/`Max`/`Mean` the total;
 * histograms and summaries become `Samples` (`Count` and `Sum` as kept, `Mean` their ratio,
 * `Min`/`Max` from the buckets or the outer quantiles). `Rate` is `Sum` per second since the agent
 * started (`uptimeS`), as go-metrics gives `Sum` per second of its interval. Values JSON cannot
 * carry (NaN, ±Inf) are left out (gauges) or read as 0. `Points` stays empty (the agent has none).
 */
export function consulMetricsJson(
  metrics: readonly PromMetricJson[],
  nowMs: number,
  uptimeS: number,
): ConsulMetricsJson {
  const out: ConsulMetricsJson = {
    Timestamp: goTimestamp(nowMs),
    Gauges: [],
    Points: [],
    Counters: [],
    Samples: [],
  };
  for (const m of metrics) {
    const type = String(m.type);
    if (type === 'gauge') {
      for (const v of m.values)
        if (Number.isFinite(v.value))
          out.Gauges.push({ Name: m.name, Value: v.value, Labels: labelsOf(v.labels) });
    } else if (type === 'counter') {
      for (const v of m.values) {
        const total = v.value;
        out.Counters.push(
          sampled(
            m.name,
            labelsOf(v.labels),
            { count: 1, sum: total, min: total, max: total },
            uptimeS,
          ),
        );
      }
    } else if (type === 'histogram' || type === 'summary') {
      for (const s of seriesOf(m)) {
        const q = [...s.quantiles]
          .filter(([, v]) => Number.isFinite(v))
          .sort((a, b) => a[0] - b[0]);
        const { min, max } =
          type === 'histogram'
            ? bucketBounds(s.buckets)
            : { min: q[0]?.[1] ?? 0, max: q[q.length - 1]?.[1] ?? 0 };
        out.Samples.push(
          sampled(m.name, s.labels, { count: s.count, sum: s.sum, min, max }, uptimeS),
        );
      }
    }
  }
  return out;
}
