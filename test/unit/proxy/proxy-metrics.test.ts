import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { ProxyMetrics } from '../../../src/proxy/proxy-metrics.js';

describe('ProxyMetrics', () => {
  it('exposes the plain per-request counts at scrape time in the Prometheus format', async () => {
    const registry = new Registry();
    const metrics = new ProxyMetrics(registry, 'gateway', () => []);
    const stats = metrics.stats('all', 'hello');
    assert.equal(metrics.stats('all', 'hello'), stats, 'looked up once, then kept');
    stats.answered(200);
    stats.answered(204);
    stats.answered(503);
    stats.retried();
    stats.latency.observe(0.0004);
    stats.latency.observe(0.002);
    stats.latency.observe(20);
    metrics.stats('-', '-').answered(404);
    const text = await registry.metrics();
    for (const line of [
      'meshwork_gateway_requests_total{route="all",service="hello",class="2xx"} 2',
      'meshwork_gateway_requests_total{route="all",service="hello",class="5xx"} 1',
      'meshwork_gateway_requests_total{route="-",service="-",class="4xx"} 1',
      'meshwork_gateway_retries_total{service="hello"} 1',
      'meshwork_gateway_upstream_latency_seconds_bucket{le="0.0005",service="hello"} 1',
      'meshwork_gateway_upstream_latency_seconds_bucket{le="0.001",service="hello"} 1',
      'meshwork_gateway_upstream_latency_seconds_bucket{le="0.0025",service="hello"} 2',
      'meshwork_gateway_upstream_latency_seconds_bucket{le="10",service="hello"} 2',
      'meshwork_gateway_upstream_latency_seconds_bucket{le="+Inf",service="hello"} 3',
      'meshwork_gateway_upstream_latency_seconds_sum{service="hello"} 20.0024',
      'meshwork_gateway_upstream_latency_seconds_count{service="hello"} 3',
      '# TYPE meshwork_gateway_upstream_latency_seconds histogram',
    ]) {
      assert.ok(text.split('\n').includes(line), `missing: ${line}\n${text}`);
    }
    assert.doesNotMatch(text, /class="3xx"/, 'no series for a class never seen');
  });
});
