/**
 * Istio's standard metrics scraped by a real Prometheus (issue 21): Debian's `prometheus`
 * (scripts/ensure-tools.sh prometheus) scrapes a real agent, two real sidecars (orders -> payments
 * over auto mTLS, payments in front of test/fixtures/sidecar-app.mjs) and a real gateway in mesh
 * mode every second; the test drives requests through the caller's outbound listener and the
 * gateway, then asks Prometheus's HTTP API (/api/v1/query) for the source and destination reports
 * until they hold exactly the requests sent. Also checks that `meshwork sidecar` writes access
 * logs to stdout by default.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { http } from '../helpers/agent.js';
import type { AgentProcess, GatewayProcess, SidecarProcess } from '../helpers/cli.js';
import { MeshFixture } from '../helpers/mesh-fixture.js';
import { queryPrometheus, startPrometheus, type PrometheusProcess } from '../helpers/prometheus.js';
import { until } from '../helpers/until.js';

const APP = fileURLToPath(new URL('../fixtures/sidecar-app.mjs', import.meta.url));
const HOST = 'shop.example.com';

const hostPort = (url: string): string => new URL(url).host;

describe('a real Prometheus scraping agent, sidecars and gateway', () => {
  let mesh: MeshFixture;
  let agent: AgentProcess;
  let payments: SidecarProcess;
  let orders: SidecarProcess;
  let gateway: GatewayProcess;
  let prometheus: PrometheusProcess;

  before(async () => {
    mesh = await MeshFixture.start('meshwork-prometheus-');
    agent = mesh.agent;
    payments = await mesh.sidecar('payments', { app: APP, flags: ['--meta', 'version=v2'] });
    orders = await mesh.sidecar('orders', { flags: ['--meta', 'version=v1'] });
    await mesh.apply(
      `apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: edge
spec:
  hosts: [${HOST}]
  gateways: [meshwork-gateway]
  http:
  - route:
    - destination: { host: payments }
`,
      'edge.yaml',
    );
    gateway = await mesh.gateway('gateway');
    prometheus = mesh.track(
      await startPrometheus(mesh.dir, {
        agent: hostPort(agent.url),
        orders: hostPort(orders.adminUrl),
        payments: hostPort(payments.adminUrl),
        gateway: hostPort(gateway.adminUrl),
      }),
    );
  });
  after(async () => {
    await mesh?.stop();
  });

  it('counts the requests as Istio reports them, source and destination, queried through its API', async () => {
    // The first 200 through each path tells it routes; every 200 is counted from there.
    let viaOrders = 0;
    let viaGateway = 0;
    const throughOrders = async (): Promise<number> =>
      (await http(orders.outboundUrl, 'GET', '/pay', undefined, { host: 'payments' })).status;
    const throughGateway = async (): Promise<number> =>
      (await http(gateway.url, 'GET', '/shop', undefined, { host: HOST })).status;
    await until(async () => (await throughOrders()) === 200, 20_000, 'orders routes to payments');
    viaOrders++;
    await until(async () => (await throughGateway()) === 200, 20_000, 'the gateway routes');
    viaGateway++;
    for (let i = 0; i < 9; i++) {
      assert.equal(await throughOrders(), 200);
      viaOrders++;
    }
    for (let i = 0; i < 4; i++) {
      assert.equal(await throughGateway(), 200);
      viaGateway++;
    }

    const expected: [string, number][] = [
      // orders' outbound: its source report, the callee's principal known (auto mTLS).
      [
        `sum(istio_requests_total{job="orders",reporter="source",source_workload="orders",source_version="v1",destination_service_name="payments",destination_version="v2",destination_principal="spiffe://cluster.local/ns/default/sa/payments",response_code="200"})`,
        viaOrders,
      ],
      // payments' inbound: the destination report of the same requests, over mTLS.
      [
        `sum(istio_requests_total{job="payments",reporter="destination",source_workload="orders",source_principal="spiffe://cluster.local/ns/default/sa/orders",destination_service_name="payments",connection_security_policy="mutual_tls",response_code="200"})`,
        viaOrders,
      ],
      // The gateway reports as source, as Istio's ingress gateway does.
      [
        `sum(istio_requests_total{job="gateway",reporter="source",source_workload="meshwork-gateway",destination_service_name="payments",response_code="200"})`,
        viaGateway,
      ],
      // ... and payments sees those as mTLS calls from the gateway's identity (the gateway
      // originates mesh mTLS with a leaf for its name).
      [
        `sum(istio_requests_total{job="payments",reporter="destination",source_workload="meshwork-gateway",source_principal="spiffe://cluster.local/ns/default/sa/meshwork-gateway",connection_security_policy="mutual_tls",response_code="200"})`,
        viaGateway,
      ],
      [
        `sum(istio_request_duration_milliseconds_count{job="orders",reporter="source",destination_service_name="payments"})`,
        viaOrders,
      ],
    ];
    const seen = new Map<string, number | undefined>();
    await until(
      async () => {
        for (const [q] of expected) seen.set(q, await queryPrometheus(prometheus.url, q));
        return expected.every(([q, n]) => seen.get(q) === n);
      },
      20_000,
      'Prometheus to hold every count',
    ).catch((err: unknown) => {
      const got = expected.map(([q, n]) => `${q}\n  want ${n}, got ${String(seen.get(q))}`);
      throw new Error(`${String(err)}\n${got.join('\n')}\n${prometheus.log()}`);
    });
    // Every target scraped (each on its own offset within the interval), the agent's own
    // metrics among them.
    await until(
      async () => {
        for (const job of ['agent', 'orders', 'payments', 'gateway'])
          if ((await queryPrometheus(prometheus.url, `up{job="${job}"}`)) !== 1) return false;
        const agentMetrics = await queryPrometheus(
          prometheus.url,
          `count({job="agent",__name__=~"meshwork_.+"})`,
        );
        return (agentMetrics ?? 0) > 0;
      },
      10_000,
      "every target up, the agent's meshwork_* metrics scraped",
    );
    const bucket = await queryPrometheus(
      prometheus.url,
      `sum(istio_request_duration_milliseconds_bucket{job="orders",reporter="source",le="+Inf"})`,
    );
    assert.ok((bucket ?? 0) >= viaOrders);
  });

  it('exposes the snapshot in force as meshwork_proxy_snapshot_version (index as value, version as label)', async () => {
    for (const [job, admin] of [
      ['orders', orders.adminUrl],
      ['gateway', gateway.adminUrl],
    ] as const)
      await until(
        async () => {
          const dump = (await http(admin, 'GET', '/config_dump')).body as {
            snapshot: { version: string; index: number };
          };
          const { version, index } = dump.snapshot;
          const got = await queryPrometheus(
            prometheus.url,
            `meshwork_proxy_snapshot_version{job="${job}",version="${version}"}`,
          );
          return got === index && index > 0;
        },
        20_000,
        `${job}'s snapshot version scraped`,
      );
  });

  it('writes access logs to stdout by default in `meshwork sidecar`: every failed request', async () => {
    // Sampled at 0.1 by default, so the check is a request always logged: one refused as
    // malformed (400, DPE).
    const refused = await http(orders.outboundUrl, 'GET', '/refused', undefined, {
      host: 'bad host!',
    });
    assert.equal(refused.status, 400);
    const entries = () =>
      orders
        .stdout()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    // Written within the writer's 1 s flush.
    const e = await until(
      () => entries().find((x) => x.path === '/refused'),
      10_000,
      "orders' access log line on stdout",
    );
    assert.equal(e.reporter, 'source');
    assert.equal(e.method, 'GET');
    assert.equal(e.response_code, 400);
    assert.equal(e.response_flags, 'DPE');
    assert.equal(e.response_code_details, 'MESHWORK_ERR_PROXY_BAD_REQUEST');
    // Successful calls are sampled (one in ten): any that was kept names its instance.
    for (const ok of entries().filter((x) => x.response_code === 200)) {
      assert.equal(ok.destination_service, 'payments');
      assert.match(String(ok.upstream_host), /^127\.0\.0\.1:\d+$/);
    }
  });
});
