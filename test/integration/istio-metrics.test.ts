// Istio's standard metrics (issue 21) from a real pair of in-process sidecars with mTLS
// identities from a test CA: client -> outbound of orders -> inbound of payments (mTLS) -> app.
// The caller's registry reports reporter="source", the callee's reporter="destination", read
// from the Prometheus text as a scrape sees it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { silentLogger } from '../../src/core/logger.js';
import { IstioMetrics } from '../../src/proxy/istio-metrics.js';
import {
  startSidecarProxy,
  TLS_MODE_ISTIO,
  TLS_MODE_META,
  type RunningSidecarProxy,
} from '../../src/sidecar/sidecar-proxy.js';
import { fakeInstance, fakeResource } from '../../src/testing/fake-mesh-catalog.js';
import { call, startUpstream, type Upstream } from '../helpers/gateway.js';
import { compileSidecarSnapshot } from '../helpers/mesh-snapshot.js';
import { instanceAtSidecar, SIDECAR_PROXY_BASE } from '../helpers/sidecar.js';
import { createTestCa, testIdentity } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';

/** The value of the one sample of `name` whose labels include every `labels` pair (0: none). */
function sample(text: string, name: string, labels: Record<string, string>): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
      total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

describe('Istio standard metrics from a sidecar pair over mTLS', () => {
  let app: Upstream;
  let a: RunningSidecarProxy;
  let b: RunningSidecarProxy;
  const aRegistry = new Registry();
  const bRegistry = new Registry();

  before(async () => {
    const ca = await createTestCa();
    app = await startUpstream('payments');
    const bIstio = new IstioMetrics(bRegistry, {
      component: 'sidecar',
      workload: { name: 'payments', namespace: 'default', version: 'v2' },
      trustDomain: 'cluster.local',
    });
    const aIstio = new IstioMetrics(aRegistry, {
      component: 'sidecar',
      workload: { name: 'orders', namespace: 'default', version: 'v1' },
      trustDomain: 'cluster.local',
    });
    b = await startSidecarProxy(
      {
        ...SIDECAR_PROXY_BASE,
        service: 'payments',
        appPort: app.port,
        tls: testIdentity(await ca.serviceLeaf('payments'), ca.certPem),
      },
      silentLogger,
      { inboundObservers: [bIstio.destination] },
    );
    a = await startSidecarProxy(
      { ...SIDECAR_PROXY_BASE, tls: testIdentity(await ca.serviceLeaf('orders'), ca.certPem) },
      silentLogger,
      { outboundObservers: [aIstio.source] },
    );
    a.applySnapshot(
      compileSidecarSnapshot(
        'orders',
        [
          instanceAtSidecar('p1', 'payments', b, {
            [TLS_MODE_META]: TLS_MODE_ISTIO,
            version: 'v2',
          }),
          fakeInstance('d1', 'dead', { address: '127.0.0.1', port: 1 }),
        ],
        [
          fakeResource('VirtualService', 'dead', {
            hosts: ['dead'],
            http: [{ route: [{ destination: { host: 'dead' } }], retries: { attempts: 2 } }],
          }),
        ],
      ),
    );
  });
  after(async () => {
    await Promise.all([a.close(), b.close()]);
    await app.close();
  });

  it('counts a call on both sides with Istio labels: principals, versions, mutual_tls', async () => {
    for (let i = 0; i < 5; i++) {
      const res = await call(a.outboundUrl, '/pay', {
        method: 'POST',
        headers: { host: 'payments', 'content-type': 'text/plain' },
        body: 'x'.repeat(50),
      });
      assert.equal(res.status, 200);
    }
    const source = {
      reporter: 'source',
      source_workload: 'orders',
      source_principal: 'spiffe://cluster.local/ns/default/sa/orders',
      source_version: 'v1',
      destination_service_name: 'payments',
      destination_service: 'payments.default.svc.cluster.local',
      destination_principal: 'spiffe://cluster.local/ns/default/sa/payments',
      destination_version: 'v2',
      response_code: '200',
      response_flags: '-',
      connection_security_policy: 'unknown',
    };
    const destination = {
      reporter: 'destination',
      source_workload: 'orders',
      source_workload_namespace: 'default',
      source_principal: 'spiffe://cluster.local/ns/default/sa/orders',
      destination_workload: 'payments',
      destination_principal: 'spiffe://cluster.local/ns/default/sa/payments',
      destination_version: 'v2',
      response_code: '200',
      connection_security_policy: 'mutual_tls',
    };
    let aText = '';
    let bText = '';
    await until(
      async () => {
        [aText, bText] = await Promise.all([aRegistry.metrics(), bRegistry.metrics()]);
        return (
          sample(aText, 'istio_requests_total', source) === 5 &&
          sample(bText, 'istio_requests_total', destination) === 5
        );
      },
      5_000,
      '5 requests counted on each side',
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${aText}\n${bText}`);
    });
    assert.equal(sample(aText, 'istio_request_duration_milliseconds_count', source), 5);
    assert.equal(sample(aText, 'istio_request_bytes_bucket', { ...source, le: '10' }), 0);
    assert.equal(sample(aText, 'istio_request_bytes_bucket', { ...source, le: '100' }), 5);
    assert.equal(sample(aText, 'istio_request_bytes_sum', source), 250);
    assert.equal(sample(bText, 'istio_response_bytes_sum', destination), 5 * 'payments'.length);
  });

  it('reports retries exhausted on a refused instance as 502 with UF,URX', async () => {
    const res = await call(a.outboundUrl, '/', { headers: { host: 'dead' } });
    assert.equal(res.status, 502);
    await until(
      async () =>
        sample(await aRegistry.metrics(), 'istio_requests_total', {
          reporter: 'source',
          destination_service_name: 'dead',
          response_code: '502',
          response_flags: 'UF,URX',
          destination_principal: 'unknown',
        }) === 1,
      5_000,
      'the 502 counted with its flags',
    );
  });
});
