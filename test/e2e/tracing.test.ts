/**
 * @module Distributed tracing end to end (issue 21): real `meshwork sidecar` and `meshwork
 * gateway` processes export spans over OTLP/HTTP (the OpenTelemetry JS SDK's JSON exporter) to a
 * receiver in this test. The chain: the test (playing a client with its own span) -> sidecar A's
 * inbound -> app A (test/fixtures/tracing-app.mjs, which passes the trace headers it got on, as
 * an instrumented app does) -> sidecar A's outbound -> sidecar B's inbound (mTLS) -> app B. One
 * trace: A's SERVER span under the client's, A's CLIENT span under it (through the app), B's
 * SERVER span under that, and app B gets B's span as its parent. B3 in joins its trace; an
 * unsampled request (a sidecar at ratio 0, or a caller's `-00`) exports nothing and still
 * carries its context to the app; the gateway makes a SERVER span and its CLIENT child.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { http } from '../helpers/agent.js';
import {
  runCli,
  spawnGateway,
  type AgentProcess,
  type GatewayProcess,
  type SidecarProcess,
} from '../helpers/cli.js';
import { MeshFixture } from '../helpers/mesh-fixture.js';
import { until } from '../helpers/until.js';

const APP = fileURLToPath(new URL('../fixtures/tracing-app.mjs', import.meta.url));

/** The SDK's batch processor exports every 100 ms instead of every 5 s. */
const FAST_EXPORT = { OTEL_BSP_SCHEDULE_DELAY: '100' };

/** OTLP's SpanKind numbers (opentelemetry-proto trace.proto). */
const SERVER = 2;
const CLIENT = 3;

/** One span as the receiver got it, with its resource's service.name. */
interface Span {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  traceState: string;
  attributes: Record<string, string | number | boolean>;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  status: { code?: number };
}

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
  doubleValue?: number;
}
interface OtlpKeyValue {
  key: string;
  value: OtlpValue;
}
interface ExportTraceServiceRequest {
  resourceSpans: {
    resource: { attributes: OtlpKeyValue[] };
    scopeSpans: {
      spans: (Omit<Span, 'service' | 'attributes'> & { attributes: OtlpKeyValue[] })[];
    }[];
  }[];
}

const valueOf = (v: OtlpValue): string | number | boolean =>
  v.stringValue ??
  (v.intValue !== undefined ? Number(v.intValue) : (v.boolValue ?? v.doubleValue ?? ''));
const attributesOf = (kvs: OtlpKeyValue[] = []): Record<string, string | number | boolean> =>
  Object.fromEntries(kvs.map((kv) => [kv.key, valueOf(kv.value)]));

/** An OTLP/HTTP receiver: POST /v1/traces, JSON (ExportTraceServiceRequest). */
class OtlpReceiver {
  readonly spans: Span[] = [];
  readonly contentTypes = new Set<string>();
  readonly #server: Server;
  url = '';

  constructor() {
    this.#server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        if (req.method !== 'POST' || req.url !== '/v1/traces') {
          res.writeHead(404).end();
          return;
        }
        this.contentTypes.add(String(req.headers['content-type']));
        const doc = JSON.parse(body) as ExportTraceServiceRequest;
        for (const rs of doc.resourceSpans) {
          const service = String(attributesOf(rs.resource.attributes)['service.name']);
          for (const ss of rs.scopeSpans)
            for (const s of ss.spans)
              this.spans.push({ ...s, service, attributes: attributesOf(s.attributes) });
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', r));
    const { port } = this.#server.address() as { port: number };
    this.url = `http://127.0.0.1:${port}/v1/traces`;
  }

  of(traceId: string): Span[] {
    return this.spans.filter((s) => s.traceId === traceId);
  }

  /** Waits until the trace has `n` spans; answers them. */
  async trace(traceId: string, n: number): Promise<Span[]> {
    return until(
      () => (this.of(traceId).length >= n ? this.of(traceId) : undefined),
      15_000,
      `${n} spans of trace ${traceId} (have ${this.of(traceId).length}: ${JSON.stringify(this.of(traceId).map((s) => [s.service, s.kind]))})`,
    );
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((r) => this.#server.close(() => r()));
  }
}

const hex = (bytes: number): string =>
  Array.from({ length: bytes }, () =>
    Math.floor(Math.random() * 256)
      .toString(16)
      .padStart(2, '0'),
  ).join('');

/** What app A answers: the headers it got, and what app B answered it. */
interface Chain {
  received: Record<string, string>;
  downstream: { status: number; body: { received: Record<string, string> } };
}

/** The parent-id of a traceparent. */
const parentIdOf = (traceparent: string | undefined): string | undefined =>
  traceparent?.split('-')[2];

describe('tracing through real sidecars and a gateway (OTLP/HTTP to a receiver in the test)', () => {
  const receiver = new OtlpReceiver();
  let mesh: MeshFixture;
  let agent: AgentProcess;
  let a: SidecarProcess;
  let b: SidecarProcess;
  /** Another instance of app A's kind behind a sidecar at ratio 0. */
  let c: SidecarProcess;
  let gateway: GatewayProcess;

  const sidecar = (service: string, ratio: string, callHost?: string) =>
    mesh.sidecar(service, {
      app: APP,
      flags: ['--tracing-endpoint', receiver.url, '--tracing-sample-ratio', ratio],
      env: { ...FAST_EXPORT, ...(callHost === undefined ? {} : { CALL_HOST: callHost }) },
    });

  /** GET `path` on sidecar `s`'s inbound (the request a caller's sidecar would send). */
  const viaInbound = async (s: SidecarProcess, path: string, headers: Record<string, string>) => {
    const r = await http<Chain>(s.inboundUrl, 'GET', path, undefined, headers);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.downstream.status, 200, JSON.stringify(r.body));
    return r.body;
  };

  before(async () => {
    await receiver.start();
    mesh = await MeshFixture.start('tracing-');
    agent = mesh.agent;
    [b, a, c] = await Promise.all([
      sidecar('payments', '1'),
      sidecar('orders', '1', 'payments'),
      sidecar('orders-unsampled', '0', 'payments'),
    ]);
    gateway = mesh.track(
      await spawnGateway(
        [
          ...['--registry', agent.url, '--domain', 'mesh.local'],
          ...['--tracing-endpoint', receiver.url, '--tracing-sample-ratio', '1'],
        ],
        FAST_EXPORT,
      ),
    );
    // Until A and C route to payments and the gateway knows it (these requests are traced too).
    await until(
      async () => {
        const [ra, rc] = await Promise.all([
          http(a.inboundUrl, 'GET', '/ready'),
          http(c.inboundUrl, 'GET', '/ready'),
        ]);
        const rg = await http(gateway.url, 'GET', '/ready', undefined, {
          host: 'payments.mesh.local',
        });
        return ra.body?.downstream?.status === 200 &&
          rc.body?.downstream?.status === 200 &&
          rg.status === 200
          ? true
          : undefined;
      },
      30_000,
      'the sidecars and the gateway routing to payments',
      100,
    );
  });
  after(async () => {
    await mesh?.stop();
    await receiver.close();
  });

  it('makes one trace of a W3C request: parent/child right through sidecars and the app', async () => {
    const traceId = hex(16);
    const clientSpan = hex(8);
    const body = await viaInbound(a, '/checkout?cart=7', {
      traceparent: `00-${traceId}-${clientSpan}-01`,
      tracestate: 'shop=blue',
      'user-agent': 'tracing-test/1',
    });
    const spans = await receiver.trace(traceId, 3);
    const find = (service: string, kind: number): Span => {
      const s = spans.filter((x) => x.service === service && x.kind === kind);
      assert.equal(s.length, 1, `one ${service} span of kind ${kind}: ${JSON.stringify(spans)}`);
      return s[0] as Span;
    };
    const aIn = find('orders', SERVER);
    const aOut = find('orders', CLIENT);
    const bIn = find('payments', SERVER);
    assert.equal(spans.length, 3, JSON.stringify(spans));
    // The chain: client -> A inbound -> (app A) -> A outbound -> B inbound -> app B.
    assert.equal(aIn.parentSpanId, clientSpan);
    assert.equal(parentIdOf(body.received.traceparent), aIn.spanId, 'app A: parent is A inbound');
    assert.equal(aOut.parentSpanId, aIn.spanId);
    assert.equal(bIn.parentSpanId, aOut.spanId);
    const appB = body.downstream.body.received;
    assert.equal(appB.traceparent, `00-${traceId}-${bIn.spanId}-01`, 'app B: parent is B inbound');
    assert.equal(appB.tracestate, 'shop=blue', 'tracestate passes through');
    assert.equal(aIn.traceState, 'shop=blue');
    // The HTTP semantic conventions.
    assert.equal(aIn.name, 'GET');
    assert.equal(aIn.attributes['http.request.method'], 'GET');
    assert.equal(aIn.attributes['url.path'], '/checkout');
    assert.equal(aIn.attributes['url.query'], 'cart=7');
    assert.equal(aIn.attributes['http.response.status_code'], 200);
    assert.equal(aIn.attributes['user_agent.original'], 'tracing-test/1');
    assert.equal(aIn.attributes['network.peer.address'], '127.0.0.1');
    assert.equal(aOut.attributes['server.address'], 'payments');
    assert.equal(aOut.attributes['network.peer.port'], Number(new URL(b.inboundUrl).port));
    assert.equal(aOut.attributes['meshwork.upstream_cluster'], 'payments');
    assert.equal(aOut.attributes['meshwork.attempts'], 1);
    // A -> B went over mesh mTLS: B's span names the caller's identity.
    assert.equal(bIn.attributes['url.scheme'], 'https');
    assert.match(String(bIn.attributes['meshwork.peer.principal']), /\/sa\/orders$/);
    // Nested in time: each span inside its parent.
    const t = (ns: string): bigint => BigInt(ns);
    for (const [outer, inner] of [
      [aIn, aOut],
      [aOut, bIn],
    ] as const) {
      assert.ok(t(inner.startTimeUnixNano) >= t(outer.startTimeUnixNano), 'starts inside');
      assert.ok(
        t(inner.endTimeUnixNano) <= t(outer.endTimeUnixNano),
        `ends inside: ${JSON.stringify([outer, inner].map((s) => [s.service, s.kind, s.startTimeUnixNano, s.endTimeUnixNano]))}`,
      );
    }
    assert.ok([...receiver.contentTypes].every((ct) => ct.startsWith('application/json')));
    // The sidecar counts what it exported.
    const metrics = await http(a.adminUrl, 'GET', '/metrics');
    const exported = /meshwork_sidecar_trace_spans_total\{result="exported"\} (\d+)/.exec(
      metrics.text,
    );
    assert.ok(Number(exported?.[1]) >= 2, metrics.text);
  });

  it('joins a trace that came in B3 only', async () => {
    const traceId = hex(16);
    const caller = hex(8);
    const body = await viaInbound(a, '/b3', {
      'x-b3-traceid': traceId,
      'x-b3-spanid': caller,
      'x-b3-sampled': '1',
    });
    const spans = await receiver.trace(traceId, 3);
    const aIn = spans.find((s) => s.service === 'orders' && s.kind === SERVER);
    const bIn = spans.find((s) => s.service === 'payments' && s.kind === SERVER);
    assert.equal(aIn?.parentSpanId, caller);
    const appB = body.downstream.body.received;
    assert.equal(appB.traceparent, `00-${traceId}-${bIn?.spanId}-01`);
    // B3 went on updated too: app B's B3 parent is B's span.
    assert.equal(appB['x-b3-traceid'], traceId);
    assert.equal(appB['x-b3-spanid'], bIn?.spanId);
  });

  it('exports nothing of an unsampled request, and still carries its context to the app', async () => {
    // C samples nothing of its own: it starts the trace unsampled and says so downstream.
    const r = await http<Chain>(c.inboundUrl, 'GET', '/unsampled', undefined, {});
    assert.equal(r.status, 200);
    const atC = r.body.received.traceparent;
    assert.match(atC ?? '', /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    assert.equal(r.body.downstream.body.received.traceparent, atC, 'unchanged up to app B');
    const unsampledTrace = (atC ?? '').split('-')[1] as string;
    // A caller's -00 through A and B: untouched, no span.
    const callerTrace = hex(16);
    const callerParent = `00-${callerTrace}-${hex(8)}-00`;
    const viaA = await viaInbound(a, '/unsampled', { traceparent: callerParent });
    assert.equal(viaA.downstream.body.received.traceparent, callerParent);
    // A sampled request through both C and A afterwards: once its spans are in, everything
    // queued before them went out too (each exporter sends its queue in order).
    const barrier = hex(16);
    const barrierParent = `00-${barrier}-${hex(8)}-01`;
    await viaInbound(c, '/barrier', { traceparent: barrierParent });
    await viaInbound(a, '/barrier', { traceparent: barrierParent });
    await receiver.trace(barrier, 6);
    assert.deepEqual(receiver.of(unsampledTrace), []);
    assert.deepEqual(receiver.of(callerTrace), []);
  });

  it('makes a SERVER span and its CLIENT child at the gateway; B continues the CLIENT one', async () => {
    const traceId = hex(16);
    const clientSpan = hex(8);
    const r = await http<{ received: Record<string, string> }>(
      gateway.url,
      'GET',
      '/via-gateway',
      undefined,
      { host: 'payments.mesh.local', traceparent: `00-${traceId}-${clientSpan}-01` },
    );
    assert.equal(r.status, 200, r.text);
    const spans = await receiver.trace(traceId, 3);
    const gwServer = spans.find((s) => s.service === 'meshwork-gateway' && s.kind === SERVER);
    const gwClient = spans.find((s) => s.service === 'meshwork-gateway' && s.kind === CLIENT);
    const bIn = spans.find((s) => s.service === 'payments' && s.kind === SERVER);
    assert.equal(gwServer?.parentSpanId, clientSpan);
    assert.equal(gwClient?.parentSpanId, gwServer?.spanId);
    assert.equal(bIn?.parentSpanId, gwClient?.spanId);
    assert.equal(r.body.received.traceparent, `00-${traceId}-${bIn?.spanId}-01`);
    assert.equal(gwServer?.attributes['server.address'], 'payments.mesh.local');
  });
});

describe('tracing flags', () => {
  it('refuses a bad endpoint and ratio with exit 2, listing both, for sidecar and gateway', async () => {
    const bad = ['--tracing-endpoint', 'collector:4318', '--tracing-sample-ratio', '1.5'];
    const [side, gw] = await Promise.all([
      runCli(['sidecar', '--service', 'orders', '--app-port', '8081', ...bad]),
      runCli(['gateway', ...bad]),
    ]);
    for (const r of [side, gw]) {
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /tracingEndpoint: must be an http:\/\/ or https:\/\/ URL/);
      assert.match(r.stderr, /tracingSampleRatio: must be a number from 0 to 1/);
    }
  });
});
