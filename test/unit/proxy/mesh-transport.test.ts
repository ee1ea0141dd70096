/**
 * @module Unit tests of createMeshTransports (issue 20): which instances of a snapshot's cluster
 * a proxy with an identity reaches over mTLS (auto mTLS by the `tls-mode` meta, ISTIO_MUTUAL,
 * DISABLE), which identity it expects of them, and that transports, connectors and pools are
 * made once per destination identity and pool settings. A stand-in identity and pool source;
 * the TLS itself is tested in mesh-tls.test.ts and the integration tests.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { silentLogger } from '../../../src/core/logger.js';
import type { InstanceDto } from '../../../src/protocol/api-types.js';
import type { SnapshotCluster } from '../../../src/protocol/mesh/snapshot.js';
import type { UpstreamDispatcher } from '../../../src/proxy/contract.js';
import {
  createMeshTransports,
  meshTlsCount,
  TLS_MODE_ISTIO,
  TLS_MODE_META,
} from '../../../src/proxy/mesh-transport.js';
import type { UpstreamPoolSettings } from '../../../src/proxy/snapshot-routes.js';
import type { MeshTlsIdentity } from '../../../src/proxy/tls-identity.js';

/** An identity that is never asked for a context here (no connection is made). */
function standInIdentity(): MeshTlsIdentity & { subscribed: number } {
  const fail = (): never => assert.fail('no TLS context is needed to choose transports');
  const identity = {
    trustDomain: 'cluster.local',
    spiffeId: 'spiffe://cluster.local/ns/default/sa/meshwork-gateway',
    secureContext: fail,
    secureContextOptions: fail,
    bundlePem: () => '',
    subscribed: 0,
    onChange: () => {
      identity.subscribed++;
      return () => void identity.subscribed--;
    },
  };
  return identity;
}

/** A pool source recording what it was asked for; each pool a distinct object. */
function recordingPools() {
  const asked: { settings: UpstreamPoolSettings; key: string | undefined }[] = [];
  return {
    asked,
    for(settings: UpstreamPoolSettings, tls?: { readonly key: string }): UpstreamDispatcher {
      asked.push({ settings, key: tls?.key });
      return { pool: asked.length } as unknown as UpstreamDispatcher;
    },
  };
}

const cluster = (tls?: SnapshotCluster['tls']): SnapshotCluster => ({
  name: 'shop',
  service: 'shop',
  endpoints: [],
  ...(tls === undefined ? {} : { tls }),
});
const instance = (meta: Record<string, string>): InstanceDto =>
  ({ id: 'shop-1', service: 'shop', meta }) as unknown as InstanceDto;
const WITH_SIDECAR = instance({ [TLS_MODE_META]: TLS_MODE_ISTIO });
const PLAIN = instance({});

describe('createMeshTransports', () => {
  const setup = () => {
    const identity = standInIdentity();
    const pools = recordingPools();
    const mesh = createMeshTransports({
      identity,
      pools,
      connectTimeoutMs: 1_000,
      count: () => undefined,
    });
    return { identity, pools, mesh };
  };

  it("auto mTLS: only instances registered with tls-mode istio, expected to be their namespace's service", () => {
    const { pools, mesh } = setup();
    const of = mesh.endpointTransport(cluster(), undefined);
    assert.ok(of !== undefined);
    assert.equal(of(PLAIN), undefined);
    assert.ok(of(WITH_SIDECAR) !== undefined);
    assert.ok(of(instance({ [TLS_MODE_META]: 'disabled' })) === undefined);
    of(instance({ [TLS_MODE_META]: TLS_MODE_ISTIO, namespace: 'shop-ns' }));
    assert.deepEqual(
      pools.asked.map((a) => a.key),
      ['spiffe://cluster.local/ns/default/sa/shop', 'spiffe://cluster.local/ns/shop-ns/sa/shop'],
    );
  });

  it('ISTIO_MUTUAL: every instance; DISABLE: none', () => {
    const { mesh } = setup();
    const mutual = mesh.endpointTransport(cluster({ mode: 'ISTIO_MUTUAL' }), undefined);
    assert.ok(mutual?.(PLAIN) !== undefined);
    assert.ok(mutual?.(WITH_SIDECAR) !== undefined);
    assert.equal(mesh.endpointTransport(cluster({ mode: 'DISABLE' }), undefined), undefined);
  });

  it('makes one transport and pool per destination identity and pool settings, and keeps them', () => {
    const { identity, pools, mesh } = setup();
    const own = { connectTimeoutMs: 250, maxConnections: 4 };
    const a = mesh.endpointTransport(cluster(), undefined)?.(WITH_SIDECAR);
    const b = mesh.endpointTransport(cluster(), undefined)?.(WITH_SIDECAR);
    const c = mesh.endpointTransport(cluster(), own)?.(WITH_SIDECAR);
    assert.equal(a, b);
    assert.notEqual(a, c);
    assert.notEqual(a?.dispatcher, c?.dispatcher);
    // The proxy's connect timeout when the DestinationRule sets no pool of its own.
    assert.deepEqual(pools.asked, [
      { settings: { connectTimeoutMs: 1_000 }, key: 'spiffe://cluster.local/ns/default/sa/shop' },
      { settings: own, key: 'spiffe://cluster.local/ns/default/sa/shop' },
    ]);
    // One connector per destination identity (shared by both pools), following the identity
    // until close().
    assert.equal(identity.subscribed, 1);
    mesh.close();
    assert.equal(identity.subscribed, 0);
  });
});

describe('meshTlsCount', () => {
  it('counts outcomes as meshwork_<component>_mtls_connections_total{direction, result}', async () => {
    const registry = new Registry();
    const count = meshTlsCount(registry, 'gateway', 'outbound mTLS outcomes', silentLogger);
    count('outbound', 'mtls');
    count('outbound', 'mtls');
    count('outbound', 'identity_mismatch', 'spiffe://cluster.local/ns/default/sa/evil');
    const text = await registry.metrics();
    assert.match(
      text,
      /^meshwork_gateway_mtls_connections_total\{direction="outbound",result="mtls"\} 2$/m,
    );
    assert.match(
      text,
      /^meshwork_gateway_mtls_connections_total\{direction="outbound",result="identity_mismatch"\} 1$/m,
    );
  });
});
