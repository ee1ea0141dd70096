// Istio's standard metrics from request records (issue 21): the label mapping of source and
// destination reports, the bucket counts, the exposition and the series bound.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Registry } from 'prom-client';
import type { Endpoint } from '../../../src/client/balancers/index.js';
import { IstioMetrics, ISTIO_LABELS, type IstioLabels } from '../../../src/proxy/istio-metrics.js';
import type { RequestRecord, ResponseFlag } from '../../../src/proxy/observe.js';
import { setPeerIdentity } from '../../../src/proxy/peer-identity.js';
import { requestRecord, testEndpoint } from '../../helpers/request-record.js';

const endpointOf = (meta: Record<string, string>, port = 15006): Endpoint =>
  testEndpoint({ id: `payments-${port}`, address: '127.0.0.1', port, meta });

const record = (over: Partial<RequestRecord> = {}): RequestRecord =>
  requestRecord({ endpoint: endpointOf({}), responseBytes: 120, ...over });

const make = (
  opts: Partial<ConstructorParameters<typeof IstioMetrics>[1]> = {},
): { istio: IstioMetrics; registry: Registry } => {
  const registry = new Registry();
  const istio = new IstioMetrics(registry, {
    component: 'sidecar',
    workload: { name: 'orders', namespace: 'shop', version: 'v1' },
    trustDomain: 'cluster.local',
    ...opts,
  });
  return { istio, registry };
};

const only = (istio: IstioMetrics): { labels: IstioLabels; requests: number } => {
  const all = [...istio.series()];
  assert.equal(all.length, 1, `one series, got ${JSON.stringify(all.map((s) => s.labels))}`);
  return all[0] as { labels: IstioLabels; requests: number };
};

describe('IstioMetrics', () => {
  it('maps a source report to an mTLS sidecar: principals, version, namespace, FQDN', () => {
    const { istio } = make();
    const e = endpointOf({ version: 'v2', namespace: 'pay', 'tls-mode': 'istio' });
    istio.source.end(record({ endpoint: e }), undefined);
    istio.source.end(record({ endpoint: e }), undefined);
    const s = only(istio);
    assert.equal(s.requests, 2);
    assert.deepEqual(s.labels, {
      reporter: 'source',
      source_workload: 'orders',
      source_workload_namespace: 'shop',
      source_principal: 'spiffe://cluster.local/ns/shop/sa/orders',
      source_app: 'orders',
      source_version: 'v1',
      source_canonical_service: 'orders',
      source_canonical_revision: 'v1',
      destination_workload: 'payments',
      destination_workload_namespace: 'pay',
      destination_principal: 'spiffe://cluster.local/ns/pay/sa/payments',
      destination_app: 'payments',
      destination_version: 'v2',
      destination_service: 'payments.pay.svc.cluster.local',
      destination_service_name: 'payments',
      destination_service_namespace: 'pay',
      destination_canonical_service: 'payments',
      destination_canonical_revision: 'v2',
      request_protocol: 'http',
      response_code: '200',
      grpc_response_status: '',
      response_flags: '-',
      connection_security_policy: 'unknown',
    });
  });

  it('leaves principals unknown to a plaintext instance or without an identity', () => {
    const { istio } = make();
    istio.source.end(record(), undefined);
    const s = only(istio).labels;
    assert.equal(s.source_principal, 'unknown');
    assert.equal(s.destination_principal, 'unknown');
    assert.equal(s.destination_version, 'unknown');
    assert.equal(s.destination_canonical_revision, 'latest');
    assert.equal(s.destination_workload_namespace, 'default');
    const noId = make({ trustDomain: undefined }).istio;
    noId.source.end(record({ endpoint: endpointOf({ 'tls-mode': 'istio' }) }), undefined);
    assert.equal(only(noId).labels.destination_principal, 'unknown');
  });

  it('labels local replies with their flags joined, and no instance as unknown', () => {
    const { istio } = make();
    istio.source.end(
      record({ endpoint: undefined, status: 503, flags: ['URX', 'UF'], attempts: 3 }),
      undefined,
    );
    istio.source.end(
      record({
        route: undefined,
        service: undefined,
        endpoint: undefined,
        status: 400,
        flags: ['DPE'],
      }),
      undefined,
    );
    const all = [...istio.series()].map((s) => s.labels);
    assert.equal(all.length, 2);
    const uf = all.find((l) => l.response_code === '503');
    assert.equal(uf?.response_flags, 'UF,URX');
    assert.equal(uf?.destination_service_name, 'payments');
    assert.equal(uf?.destination_workload_namespace, 'unknown');
    const dpe = all.find((l) => l.response_code === '400');
    assert.equal(dpe?.response_flags, 'DPE');
    assert.equal(dpe?.destination_service_name, 'unknown');
    assert.equal(dpe?.destination_service, 'unknown');
  });

  it('names pass-through and refused egress as Istio does (PassthroughCluster, BlackHoleCluster)', () => {
    const { istio } = make();
    istio.source.end(
      record({
        route: 'passthrough|example.com:80',
        service: 'example.com',
        cluster: 'example.com:80',
        endpoint: endpointOf({}, 80),
        authority: 'example.com',
      }),
      undefined,
    );
    istio.source.end(
      record({
        route: 'egress-refused',
        service: 'egress-denied',
        endpoint: undefined,
        authority: 'evil.example',
        status: 502,
        flags: ['NR'],
      }),
      undefined,
    );
    const all = [...istio.series()].map((s) => s.labels);
    const pass = all.find((l) => l.response_code === '200');
    assert.equal(pass?.destination_service_name, 'PassthroughCluster');
    assert.equal(pass?.destination_service, 'example.com');
    const hole = all.find((l) => l.response_code === '502');
    assert.equal(hole?.destination_service_name, 'BlackHoleCluster');
    assert.equal(hole?.destination_service, 'evil.example');
  });

  it('maps a destination report over mTLS from the peer certificate', () => {
    const { istio } = make();
    const socket = { remoteAddress: '10.0.0.9' };
    setPeerIdentity(socket, {
      mtls: true,
      spiffeId: 'spiffe://cluster.local/ns/front/sa/web',
      principal: 'cluster.local/ns/front/sa/web',
      namespace: 'front',
    });
    // The claimed header loses against the certificate.
    const r = record({ socket, headers: { 'x-meshwork-source-service': 'liar' } });
    istio.destination.end(r, undefined);
    const l = only(istio).labels;
    assert.equal(l.reporter, 'destination');
    assert.equal(l.source_workload, 'web');
    assert.equal(l.source_workload_namespace, 'front');
    assert.equal(l.source_principal, 'spiffe://cluster.local/ns/front/sa/web');
    assert.equal(l.destination_workload, 'orders');
    assert.equal(l.destination_service, 'orders.shop.svc.cluster.local');
    assert.equal(l.destination_principal, 'spiffe://cluster.local/ns/shop/sa/orders');
    assert.equal(l.destination_version, 'v1');
    assert.equal(l.connection_security_policy, 'mutual_tls');
  });

  it('maps a plaintext destination report from the caller sidecar header, policy none', () => {
    const { istio } = make();
    istio.destination.end(record({ headers: { 'x-meshwork-source-service': 'web' } }), undefined);
    istio.destination.end(
      record({ headers: { 'x-meshwork-source-service': 'Not A Name' } }),
      undefined,
    );
    istio.destination.end(record({ headers: {} }), undefined);
    const all = [...istio.series()].map((s) => s.labels);
    const web = all.find((l) => l.source_workload === 'web');
    assert.equal(web?.source_principal, 'unknown');
    assert.equal(web?.destination_principal, 'unknown');
    assert.equal(web?.connection_security_policy, 'none');
    const unknown = [...istio.series()].filter((s) => s.labels.source_workload === 'unknown');
    assert.equal(unknown.length, 1, 'a bad name and no name share the unknown series');
    assert.equal(unknown[0]?.requests, 2);
  });

  it('exposes the four metrics with Istio buckets and cumulative counts', async () => {
    const { istio, registry } = make();
    istio.source.end(record({ durationMs: 3, requestBytes: 5, responseBytes: 5000 }), undefined);
    istio.source.end(record({ durationMs: 700, requestBytes: 0, responseBytes: 20 }), undefined);
    const text = await registry.metrics();
    const sample = (name: string, le?: string): number => {
      const line = text
        .split('\n')
        .find(
          (l) =>
            l.startsWith(`${name}{`) &&
            l.includes('reporter="source"') &&
            (le === undefined || l.includes(`le="${le}"`)),
        );
      assert.ok(line !== undefined, `${name} le=${le ?? '-'} in\n${text}`);
      return Number(line.slice(line.lastIndexOf(' ') + 1));
    };
    assert.match(text, /# TYPE istio_requests_total counter/);
    assert.match(text, /# TYPE istio_request_duration_milliseconds histogram/);
    assert.equal(sample('istio_requests_total'), 2);
    assert.equal(sample('istio_request_duration_milliseconds_bucket', '1'), 0);
    assert.equal(sample('istio_request_duration_milliseconds_bucket', '5'), 1);
    assert.equal(sample('istio_request_duration_milliseconds_bucket', '500'), 1);
    assert.equal(sample('istio_request_duration_milliseconds_bucket', '1000'), 2);
    assert.equal(sample('istio_request_duration_milliseconds_bucket', '+Inf'), 2);
    assert.equal(sample('istio_request_duration_milliseconds_sum'), 703);
    assert.equal(sample('istio_request_duration_milliseconds_count'), 2);
    assert.equal(sample('istio_request_bytes_bucket', '1'), 1);
    assert.equal(sample('istio_request_bytes_bucket', '10'), 2);
    assert.equal(sample('istio_response_bytes_bucket', '100'), 1);
    assert.equal(sample('istio_response_bytes_bucket', '10000'), 2);
    assert.equal(sample('istio_response_bytes_sum'), 5020);
    for (const l of ISTIO_LABELS) assert.ok(text.includes(`${l}=`), `label ${l} exposed`);
    // A second scrape reads the same (counters are not reset by reading).
    assert.equal(await registry.metrics(), text);
  });

  it('keeps at most maxSeries label sets, counting the rest as overflow', async () => {
    const { istio, registry } = make({ maxSeries: 3 });
    for (let code = 200; code < 210; code++) istio.source.end(record({ status: code }), undefined);
    const all = [...istio.series()];
    assert.equal(all.length, 4, 'three kept and the overflow series');
    const overflow = all.find((s) => s.labels.response_code === 'overflow');
    assert.equal(overflow?.requests, 7);
    assert.equal(overflow?.labels.reporter, 'source');
    assert.equal(overflow?.labels.destination_service_name, 'overflow');
    assert.match(await registry.metrics(), /meshwork_sidecar_istio_series_overflow_total 7/);
  });

  it('counts every record exactly once in one series whatever its status, flags and peer', () => {
    const flag = fc.constantFrom<ResponseFlag>('NR', 'UH', 'UF', 'UT', 'URX', 'DC', 'RBAC');
    const rec = fc.record({
      status: fc.integer({ min: 0, max: 599 }),
      flags: fc.uniqueArray(flag, { maxLength: 3 }),
      version: fc.constantFrom('v1', 'v2', undefined),
      dest: fc.boolean(),
      caller: fc.constantFrom('web', 'api', 'BAD', undefined),
    });
    fc.assert(
      fc.property(fc.array(rec, { maxLength: 60 }), (recs) => {
        const { istio } = make({ maxSeries: 10_000 });
        const endpoints = new Map<string, Endpoint>();
        for (const r of recs) {
          const v = r.version ?? '';
          const e = endpoints.get(v) ?? endpointOf(r.version === undefined ? {} : { version: v });
          endpoints.set(v, e);
          const full = record({
            status: r.status,
            flags: r.flags,
            endpoint: e,
            headers: r.caller === undefined ? {} : { 'x-meshwork-source-service': r.caller },
          });
          (r.dest ? istio.destination : istio.source).end(full, undefined);
        }
        const all = [...istio.series()];
        assert.equal(
          all.reduce((n, s) => n + s.requests, 0),
          recs.length,
        );
        const keys = all.map((s) => JSON.stringify(s.labels));
        assert.equal(new Set(keys).size, keys.length, 'no two series share labels');
        for (const s of all) {
          assert.match(s.labels.response_flags, /^(-|[A-Z]+(,[A-Z]+)*)$/);
          assert.ok(Number.isInteger(Number(s.labels.response_code)));
        }
      }),
    );
  });
});
