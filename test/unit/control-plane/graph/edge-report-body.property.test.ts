/**
 * Property tests of the call graph's inputs: the edge report body (POST /api/v1/mesh/edges), round
 * trip and refusals, and the graph's `?window=`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { bodyTexts, refusalOrValue } from '../../../helpers/body-refusal.js';
import { ejectedHealth } from '../../../helpers/proxy-health.js';
import { ERROR_CODES, isMeshError } from '../../../../src/core/errors.js';
import {
  MAX_REPORT_EDGES,
  parseEdgeReport,
} from '../../../../src/control-plane/graph/edge-report-body.js';
import { parseGraphWindow } from '../../../../src/control-plane/graph/graph-routes.js';
import {
  EDGE_LATENCY_BUCKETS_MS,
  type ProxyEdgeReport,
} from '../../../../src/protocol/mesh/graph.js';
import { hasControlChars } from '../../../../src/protocol/validation.js';
import {
  MAX_EJECTED_LISTED,
  MAX_HEALTH_CLUSTERS,
  type ClusterHealth,
} from '../../../../src/protocol/mesh/proxy-health.js';

const SEED = 21;
const BUCKETS = EDGE_LATENCY_BUCKETS_MS.length + 1;
const name = fc.string({ minLength: 1, maxLength: 40 }).filter((s) => !hasControlChars(s));

/** A valid edge: its buckets add up to its requests, its errors at most those. */
const edge = fc
  .tuple(name, name, fc.array(fc.nat(1_000_000), { minLength: BUCKETS, maxLength: BUCKETS }))
  .chain(([source, destination, latencyBuckets]) => {
    const requests = latencyBuckets.reduce((a, b) => a + b, 0);
    return fc
      .nat(requests)
      .map((errors) => ({ source, destination, requests, errors, latencyBuckets }));
  });

/** A valid cluster health: available and ejectedCount within endpoints, the listed within the count. */
const clusterHealth: fc.Arbitrary<ClusterHealth> = fc
  .tuple(
    name,
    name,
    fc.nat(1000),
    fc.boolean(),
    fc.array(fc.record({ id: name, address: fc.constantFrom('', '10.0.0.1:80', '[::1]:8080') }), {
      maxLength: 5,
    }),
  )
  .chain(([cluster, service, extra, panic, ejected]) => {
    const endpoints = ejected.length + extra;
    return fc.record({
      cluster: fc.constant(cluster),
      service: fc.constant(service),
      endpoints: fc.constant(endpoints),
      available: fc.nat(endpoints),
      panic: fc.constant(panic),
      ejected: fc.constant(ejected),
      ejectedCount: fc.integer({ min: ejected.length, max: endpoints }),
    });
  });

const report: fc.Arbitrary<ProxyEdgeReport> = fc.record(
  {
    proxy: name,
    reporter: fc.constantFrom('source' as const, 'destination' as const),
    intervalMs: fc.integer({ min: 1, max: 3_600_000 }),
    edges: fc.array(edge, { maxLength: 20 }),
    health: fc.array(clusterHealth, { maxLength: 4 }),
  },
  { requiredKeys: ['proxy', 'reporter', 'intervalMs', 'edges'] },
);

describe('parseEdgeReport', () => {
  it('round-trips every valid report', () => {
    fc.assert(
      fc.property(report, (generated) => {
        // fast-check's records have no prototype; the parser's answer does.
        const r = JSON.parse(JSON.stringify(generated)) as ProxyEdgeReport;
        assert.deepEqual(parseEdgeReport(Buffer.from(JSON.stringify(r))), r);
        assert.deepEqual(parseEdgeReport(JSON.stringify(r), 'application/json; charset=utf-8'), r);
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('answers any bytes with a valid report or a refusal naming the field', () => {
    const count = fc.oneof(
      fc.integer({ min: -5, max: 50 }),
      fc.double(),
      fc.string(),
      fc.constant(null),
    );
    const looseEdge = fc.record(
      {
        source: fc.oneof(name, fc.string(), fc.integer()),
        destination: fc.oneof(name, fc.string()),
        requests: count,
        errors: count,
        latencyBuckets: fc.array(count, { maxLength: 20 }),
        extra: fc.anything(),
      },
      { requiredKeys: [] },
    );
    const looseHealth = fc.record(
      {
        cluster: fc.oneof(name, fc.string(), fc.integer()),
        service: fc.oneof(name, fc.string()),
        endpoints: count,
        available: count,
        panic: fc.oneof(fc.boolean(), fc.string()),
        ejected: fc.oneof(
          fc.array(
            fc.record(
              { id: fc.oneof(name, fc.string()), address: fc.string() },
              {
                requiredKeys: [],
              },
            ),
            { maxLength: 3 },
          ),
          fc.anything(),
        ),
        ejectedCount: count,
        extra: fc.anything(),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(
        bodyTexts(
          fc.record(
            {
              proxy: fc.oneof(name, fc.string(), fc.integer()),
              reporter: fc.oneof(fc.constantFrom('source', 'destination'), fc.string()),
              intervalMs: fc.oneof(fc.integer({ min: -10, max: 4_000_000 }), fc.double()),
              edges: fc.oneof(fc.array(looseEdge, { maxLength: 4 }), fc.anything()),
              health: fc.oneof(fc.array(looseHealth, { maxLength: 3 }), fc.anything()),
              extra: fc.anything(),
            },
            { requiredKeys: ['proxy', 'reporter', 'intervalMs', 'edges'] },
          ),
        ),
        (text) => {
          const r = refusalOrValue(() => parseEdgeReport(text));
          if (r === undefined) return;
          assert.ok(r.proxy.length > 0 && r.intervalMs >= 1);
          for (const e of r.edges) {
            assert.ok(Number.isInteger(e.requests) && e.errors <= e.requests);
            assert.equal(e.latencyBuckets.length, BUCKETS);
            assert.equal(
              e.latencyBuckets.reduce((a, b) => a + b, 0),
              e.requests,
            );
          }
          for (const c of r.health ?? []) {
            assert.ok(c.available <= c.endpoints && typeof c.panic === 'boolean');
            assert.ok(c.ejected.length <= c.ejectedCount && c.ejectedCount <= c.endpoints);
          }
        },
      ),
      { seed: SEED, numRuns: 2000 },
    );
  });

  it('names the field and the reason', () => {
    const valid = {
      source: 'a',
      destination: 'b',
      requests: 2,
      errors: 0,
      latencyBuckets: [2, ...new Array<number>(BUCKETS - 1).fill(0)],
    };
    const health = ejectedHealth('payments', 3, [{ id: 'payments-1', address: '10.0.0.1:80' }]);
    const cases: [unknown, string, RegExp][] = [
      [{ proxy: 'p', reporter: 'x', intervalMs: 1, edges: [] }, 'reporter', /./],
      [{ proxy: 'p', reporter: 'source', intervalMs: 0, edges: [] }, 'intervalMs', />= 1/],
      [
        { proxy: 'p', reporter: 'source', intervalMs: 1, edges: [{ ...valid, errors: 3 }] },
        'edges[0].errors',
        /must not exceed requests/,
      ],
      [
        {
          proxy: 'p',
          reporter: 'source',
          intervalMs: 1,
          edges: [{ ...valid, requests: 3, errors: 0 }],
        },
        'edges[0].latencyBuckets',
        /add up to requests/,
      ],
      [
        {
          proxy: 'p',
          reporter: 'source',
          intervalMs: 1,
          edges: [{ ...valid, latencyBuckets: [2] }],
        },
        'edges[0].latencyBuckets',
        /16 counts/,
      ],
      [
        {
          proxy: 'p',
          reporter: 'source',
          intervalMs: 1,
          edges: new Array(MAX_REPORT_EDGES + 1).fill(valid),
        },
        'edges',
        /at most 1024/,
      ],
      [
        {
          proxy: 'p',
          reporter: 'source',
          intervalMs: 1,
          edges: [],
          health: [{ ...health, available: 4 }],
        },
        'health[0].available',
        /must not exceed endpoints/,
      ],
      [
        {
          proxy: 'p',
          reporter: 'source',
          intervalMs: 1,
          edges: [],
          health: [{ ...health, ejectedCount: 0 }],
        },
        'health[0].ejectedCount',
        /from the instances listed/,
      ],
      [
        {
          proxy: 'p',
          reporter: 'source',
          intervalMs: 1,
          edges: [],
          health: [
            { ...health, ejected: new Array(MAX_EJECTED_LISTED + 1).fill(health.ejected[0]) },
          ],
        },
        'health[0].ejected',
        /at most 64/,
      ],
      [
        {
          proxy: 'p',
          reporter: 'source',
          intervalMs: 1,
          edges: [],
          health: new Array(MAX_HEALTH_CLUSTERS + 1).fill(health),
        },
        'health',
        /at most 256/,
      ],
    ];
    for (const [body, field, reason] of cases) {
      assert.throws(
        () => parseEdgeReport(JSON.stringify(body)),
        (err) =>
          isMeshError(err, ERROR_CODES.VALIDATION) &&
          err.details?.field === field &&
          reason.test(err.message),
        field,
      );
    }
    assert.throws(
      () => parseEdgeReport('{}', 'text/plain'),
      (err) => isMeshError(err, ERROR_CODES.UNSUPPORTED_MEDIA_TYPE),
    );
  });
});

describe('parseGraphWindow', () => {
  it('answers a whole number of seconds in bounds, or a refusal naming window', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.integer({ min: -10, max: 5000 }).map(String),
          fc.string(),
          fc.array(fc.string(), { maxLength: 2 }),
          fc.constant(undefined),
        ),
        (value) => {
          let w: number;
          try {
            w = parseGraphWindow(value);
          } catch (err) {
            assert.ok(isMeshError(err, ERROR_CODES.VALIDATION));
            assert.equal(err.details?.field, 'window');
            return;
          }
          assert.ok(Number.isInteger(w) && w >= 10 && w <= 3600);
          if (value === undefined) assert.equal(w, 60);
          else assert.equal(w, Number(Array.isArray(value) ? value[0] : value));
        },
      ),
      { seed: SEED, numRuns: 1000 },
    );
  });
});
