import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isMeshError } from '../../../src/core/errors.js';
import { buildMeshRoutes } from '../../../src/gateway/mesh-routes.js';
import { resolveGatewayOptions } from '../../../src/gateway/options.js';
import type {
  SnapshotCluster,
  SnapshotMatch,
  SnapshotRoute,
  SnapshotStringMatch,
} from '../../../src/protocol/mesh/snapshot.js';
import type { MatchInput } from '../../../src/proxy/route-table.js';
import { meshSnapshot, snapshotCluster, snapshotEndpoint } from '../../helpers/mesh-snapshot.js';

const OPTIONS = resolveGatewayOptions({ flags: { mesh: true } });

// Strings from a small alphabet of the characters that matter (regex syntax, header syntax,
// separators), so both accepted and refused snapshots come up often.
const text = fc.string({
  unit: fc.constantFrom('a', 'B', '/', '*', '.', '(', ')', '?', '=', '[', '\r', ' ', '-', '1'),
  maxLength: 8,
});
const stringMatch: fc.Arbitrary<SnapshotStringMatch> = fc.oneof(
  text.map((exact) => ({ exact })),
  text.map((prefix) => ({ prefix })),
  text.map((regex) => ({ regex })),
);
const match: fc.Arbitrary<SnapshotMatch> = fc.record(
  {
    path: stringMatch,
    method: stringMatch,
    authority: stringMatch,
    headers: fc.array(
      stringMatch.map((m) => ({ name: 'x-a', ...m })),
      { maxLength: 2 },
    ),
    query: fc.array(
      stringMatch.map((m) => ({ name: 'q', ...m })),
      { maxLength: 2 },
    ),
    ignoreUriCase: fc.boolean(),
  },
  { requiredKeys: [] },
);
const clusterNames = ['web', 'web|v1', 'nope'];
const cluster: fc.Arbitrary<SnapshotCluster> = fc
  .record(
    {
      name: fc.constantFrom('web', 'web|v1'),
      loadBalancer: fc.oneof(
        fc.constant({ type: 'least-request' as const }),
        fc.constant({ type: 'ring-hash' as const, hashOn: { header: 'x-u' } }),
        fc.constant({ type: 'maglev' as const, hashOn: { sourceIp: true as const } }),
      ),
      outlierDetection: fc.record({
        consecutive5xxErrors: fc.integer({ min: 0, max: 20 }),
        intervalMs: fc.integer({ min: 1, max: 100_000 }),
        baseEjectionMs: fc.integer({ min: 0, max: 100_000 }),
        maxEjectionPercent: fc.integer({ min: 0, max: 100 }),
        minHealthPercent: fc.integer({ min: 0, max: 100 }),
      }),
      connectionPool: fc.record({ maxConnections: fc.integer({ min: 1, max: 5 }) }),
    },
    { requiredKeys: ['name'] },
  )
  .map((c) => snapshotCluster(c.name, { ...c, endpoints: [snapshotEndpoint('e1')] }));
const route: fc.Arbitrary<SnapshotRoute> = fc.record(
  {
    name: fc.constantFrom('r1', 'r2'),
    hosts: fc.array(fc.constantFrom('*', 'shop.example.com', '*.example.com'), { maxLength: 2 }),
    match: fc.array(match, { maxLength: 2 }),
    backends: fc.array(
      fc.record({
        cluster: fc.constantFrom(...clusterNames),
        weight: fc.integer({ min: -1, max: 100 }),
        requestHeaders: fc.record({ set: fc.dictionary(text, text, { maxKeys: 1 }) }),
      }),
      { minLength: 1, maxLength: 3 },
    ),
    rewrite: fc.record({ uri: text, authority: text }, { requiredKeys: [] }),
    timeoutMs: fc.integer({ min: 0, max: 10_000 }),
    retries: fc.record({
      attempts: fc.integer({ min: 0, max: 12 }),
      perTryTimeoutMs: fc.integer({ min: 0, max: 10_000 }),
      retryOn: fc.array(fc.constantFrom('5xx', 'gateway-error', '503', 'often', 'cancelled')),
    }),
    fault: fc.constant({ abort: { status: 503, percent: 1 } }),
  },
  { requiredKeys: ['name', 'hosts', 'match', 'backends'] },
);
const request: fc.Arbitrary<MatchInput> = fc.record({
  method: fc.constantFrom('GET', 'POST'),
  host: fc.constantFrom('shop.example.com', 'a.example.com', 'other'),
  authority: fc.constantFrom('shop.example.com:80', 'other'),
  path: text.map((t) => `/${t}`),
  query: fc.constantFrom('', 'q=a', 'q=B&x=1'),
  headers: fc.record({ 'x-a': text }, { requiredKeys: [] }),
});

describe('buildMeshRoutes (property)', () => {
  it('builds a table that matches any request without throwing, or refuses with CONFIG_INVALID naming a route or cluster', () => {
    let accepted = 0;
    fc.assert(
      fc.property(
        fc.array(route, { maxLength: 3 }),
        fc.uniqueArray(cluster, { selector: (c) => c.name, maxLength: 2 }),
        fc.array(request, { minLength: 1, maxLength: 3 }),
        (routes, clusters, requests) => {
          let built;
          try {
            built = buildMeshRoutes(meshSnapshot(routes, clusters), OPTIONS);
          } catch (err) {
            assert.ok(isMeshError(err, 'MESHWORK_ERR_CONFIG_INVALID'), String(err));
            const problems = err.details?.problems as string[];
            assert.ok(problems.length > 0);
            for (const p of problems) assert.match(p, /^(routes|clusters)\[\d+\] \([^)]*\)\./);
            return;
          }
          accepted++;
          for (const r of requests) {
            const found = built.table.match(r);
            if (found !== undefined) assert.ok(found.pickCluster().name.startsWith('web'));
          }
        },
      ),
      { numRuns: 300 },
    );
    // Both sides of the property are exercised.
    assert.ok(accepted > 20, `only ${accepted} of 300 snapshots were accepted`);
  });
});
