/**
 * consulMetricsJson: a real prom-client registry, filled with generated values (fast-check),
 * mapped to Consul's /v1/agent/metrics JSON.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Counter, Gauge, Histogram, Registry, Summary } from 'prom-client';
import {
  consulMetricsJson,
  goTimestamp,
} from '../../../../src/registry-api/consul/consul-metrics-json.js';

const BUCKETS = [0.01, 0.1, 1, 10];
const value = fc.double({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true });
const observation = fc.double({ min: 0, max: 20, noNaN: true, noDefaultInfinity: true });
const label = fc.constantFrom('a', 'b', 'c');

/** The smallest bucket bound at or above `v`, or the last finite bound past all of them. */
const boundOf = (v: number): number => BUCKETS.find((b) => v <= b) ?? BUCKETS[BUCKETS.length - 1]!;

describe('consulMetricsJson', () => {
  it('keeps gauges with their labels, and leaves out values JSON cannot carry', async () => {
    await fc.assert(
      fc.asyncProperty(fc.dictionary(label, value, { minKeys: 1 }), async (values) => {
        const registry = new Registry();
        const g = new Gauge({ name: 'g', help: 'g', labelNames: ['k'], registers: [registry] });
        for (const [k, v] of Object.entries(values)) g.set({ k }, v);
        g.set({ k: 'nan' }, NaN);
        const out = consulMetricsJson(await registry.getMetricsAsJSON(), 0, 1);
        assert.deepEqual(
          out.Gauges.map((x) => [x.Labels.k, x.Value]).sort(),
          Object.entries(values).sort(),
        );
        assert.ok(out.Gauges.every((x) => x.Name === 'g'));
        assert.deepEqual(out.Points, []);
      }),
      { numRuns: 50 },
    );
  });

  it('maps a counter to one reading of its total, with Rate the total per second of uptime', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(label, fc.double({ min: 0, max: 1000, noNaN: true })), {
          minLength: 1,
        }),
        fc.double({ min: 0.5, max: 1e5, noNaN: true }),
        async (incs, uptimeS) => {
          const registry = new Registry();
          const c = new Counter({
            name: 'c_total',
            help: 'c',
            labelNames: ['k'],
            registers: [registry],
          });
          const totals: Record<string, number> = {};
          for (const [k, n] of incs) {
            c.inc({ k }, n);
            totals[k] = (totals[k] ?? 0) + n;
          }
          const out = consulMetricsJson(await registry.getMetricsAsJSON(), 0, uptimeS);
          assert.equal(out.Counters.length, Object.keys(totals).length);
          for (const x of out.Counters) {
            const total = totals[x.Labels.k!]!;
            assert.ok(Math.abs(x.Sum - total) <= 1e-9 * Math.max(1, total));
            assert.equal(x.Count, 1);
            assert.equal(x.Min, x.Sum);
            assert.equal(x.Max, x.Sum);
            assert.equal(x.Mean, x.Sum);
            assert.ok(Math.abs(x.Rate - x.Sum / uptimeS) <= 1e-9 * Math.max(1, x.Rate));
          }
        },
      ),
      { numRuns: 50 },
    );
  });

  it('maps a histogram per label set to a sample: count, sum, mean, bucket-bound min and max', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(label, observation), { minLength: 1 }), async (obs) => {
        const registry = new Registry();
        const h = new Histogram({
          name: 'h_seconds',
          help: 'h',
          labelNames: ['k'],
          buckets: BUCKETS,
          registers: [registry],
        });
        const seen: Record<string, number[]> = {};
        for (const [k, v] of obs) {
          h.observe({ k }, v);
          (seen[k] ??= []).push(v);
        }
        const out = consulMetricsJson(await registry.getMetricsAsJSON(), 0, 10);
        assert.equal(out.Samples.length, Object.keys(seen).length);
        for (const s of out.Samples) {
          assert.deepEqual(Object.keys(s.Labels), ['k'], 'no le label');
          const vs = seen[s.Labels.k!]!;
          const sum = vs.reduce((a, b) => a + b, 0);
          assert.equal(s.Name, 'h_seconds');
          assert.equal(s.Count, vs.length);
          assert.ok(Math.abs(s.Sum - sum) <= 1e-9 * Math.max(1, sum));
          assert.ok(Math.abs(s.Mean - sum / vs.length) <= 1e-9 * Math.max(1, s.Mean));
          assert.equal(s.Min, boundOf(Math.min(...vs)));
          assert.equal(s.Max, boundOf(Math.max(...vs)));
          assert.ok(s.Min <= s.Max);
          assert.equal(s.Stddev, 0);
        }
      }),
      { numRuns: 50 },
    );
  });

  it('maps a summary to a sample with its outer quantiles as min and max', async () => {
    const registry = new Registry();
    const s = new Summary({
      name: 's',
      help: 's',
      percentiles: [0, 0.5, 1],
      registers: [registry],
    });
    for (const v of [3, 1, 2]) s.observe(v);
    const [sample] = consulMetricsJson(await registry.getMetricsAsJSON(), 0, 1).Samples;
    assert.deepEqual(
      { ...sample, Labels: { ...sample?.Labels } },
      {
        Name: 's',
        Count: 3,
        Rate: 6,
        Sum: 6,
        Min: 1,
        Max: 3,
        Mean: 2,
        Stddev: 0,
        Labels: {},
      },
    );
  });

  it('gives an empty histogram zeros, not NaN', async () => {
    const registry = new Registry();
    new Histogram({ name: 'empty', help: 'e', buckets: BUCKETS, registers: [registry] });
    const out = consulMetricsJson(await registry.getMetricsAsJSON(), 0, 0);
    assert.deepEqual(
      out.Samples.map((x) => [x.Count, x.Sum, x.Min, x.Max, x.Mean, x.Rate]),
      [[0, 0, 0, 0, 0, 0]],
    );
  });
});

describe('goTimestamp', () => {
  it("writes the second of `ms` as Go's time.String does in UTC", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4_102_444_800_000 }), (ms) => {
        const text = goTimestamp(ms);
        const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d) \+0000 UTC$/.exec(text);
        assert.ok(m, text);
        assert.equal(Date.parse(`${m[1]}T${m[2]}Z`), Math.floor(ms / 1000) * 1000);
      }),
    );
  });
});
