import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isMeshError } from '../../../src/core/errors.js';
import type { FilterExchange, LocalReply } from '../../../src/proxy/filter.js';
import {
  buildSnapshotRoutes,
  type SnapshotRouteOptions,
} from '../../../src/proxy/snapshot-routes.js';
import type { MeshSnapshot } from '../../../src/protocol/mesh/snapshot.js';
import { FakeClock } from '../../../src/testing/fake-clock.js';
import { meshSnapshot, snapshotRoute } from '../../helpers/mesh-snapshot.js';

const OPTIONS: SnapshotRouteOptions = {
  proxy: 'sidecar',
  balancer: 'round-robin',
  retry: {},
  outlierDetection: {},
  panicThresholdPercent: 50,
  requestTimeoutMs: 15_000,
  connectTimeoutMs: 1_000,
};

const withInbound = (maxTokens: number): MeshSnapshot => ({
  ...meshSnapshot([snapshotRoute('r')]),
  inbound: {
    service: 'web',
    mtls: 'PERMISSIVE',
    authorization: [],
    rateLimit: { maxTokens, tokensPerFill: 1, fillIntervalMs: 1000 },
  },
});

describe('buildSnapshotRoutes (the compiler the gateway and the sidecar share)', () => {
  it("builds the sidecar's inbound rate limit, and keeps its bucket while the settings stay", () => {
    const clock = new FakeClock();
    const first = buildSnapshotRoutes(withInbound(1), OPTIONS, { clock });
    const filter = first.inboundRateLimit?.filter;
    assert.equal(filter?.onRequest?.({} as FilterExchange), 'continue');
    assert.equal((filter?.onRequest?.({} as FilterExchange) as LocalReply).status, 429);
    const same = buildSnapshotRoutes(withInbound(1), OPTIONS, {
      clock,
      previousInboundRateLimit: first.inboundRateLimit,
    });
    assert.equal(same.inboundRateLimit, first.inboundRateLimit);
    const changed = buildSnapshotRoutes(withInbound(2), OPTIONS, {
      clock,
      previousInboundRateLimit: first.inboundRateLimit,
    });
    assert.notEqual(changed.inboundRateLimit, first.inboundRateLimit);
    assert.equal(
      buildSnapshotRoutes(meshSnapshot([snapshotRoute('r')]), OPTIONS).inboundRateLimit,
      undefined,
    );
  });

  it('refuses a bad inbound rate limit, naming the field and the proxy in refusals', () => {
    assert.throws(
      () => buildSnapshotRoutes(withInbound(0), OPTIONS),
      (err) =>
        isMeshError(err) &&
        (err.details?.problems as string[]).some((p) =>
          p.startsWith('inbound.rateLimit.maxTokens: must be a whole number'),
        ),
    );
    assert.throws(
      () =>
        buildSnapshotRoutes(
          meshSnapshot(
            [snapshotRoute('r')],
            [
              {
                name: 'web',
                service: 'web',
                endpoints: [],
                connectionPool: { maxRequestsPerConnection: 1 },
              },
            ],
          ),
          OPTIONS,
        ),
      (err) =>
        isMeshError(err) &&
        (err.details?.problems as string[]).some((p) =>
          p.includes('is not implemented by the sidecar yet'),
        ),
    );
  });
});
