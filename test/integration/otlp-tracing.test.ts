/**
 * @module startOtlpTracing (issue 21) against a real OTLP/HTTP receiver on port 0: what a proxy
 * hands it arrives as OTLP JSON with the ids, parent, tracestate, times, kind, status and
 * attributes it was given, under the resource of the proxy; a receiver that answers 500 is
 * counted as failed, and the next good export as exported.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../src/core/logger.js';
import { startOtlpTracing, type SpanExporterHandle } from '../../src/telemetry/tracing.js';

interface OtlpKeyValue {
  key: string;
  value: { stringValue?: string; intValue?: number | string; boolValue?: boolean };
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  traceState?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: OtlpKeyValue[];
  status: { code?: number };
}
interface Received {
  resource: Record<string, unknown>;
  scope: { name: string; version?: string };
  span: OtlpSpan;
}

const flat = (kvs: OtlpKeyValue[] = []): Record<string, unknown> =>
  Object.fromEntries(
    kvs.map((kv) => [
      kv.key,
      kv.value.stringValue ?? kv.value.boolValue ?? Number(kv.value.intValue),
    ]),
  );

describe('startOtlpTracing', () => {
  let server: Server;
  let status = 200;
  const received: Received[] = [];
  const results: [string, number][] = [];
  let tracing: SpanExporterHandle;

  before(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        if (status === 200) {
          const doc = JSON.parse(body) as {
            resourceSpans: {
              resource: { attributes: OtlpKeyValue[] };
              scopeSpans: { scope: { name: string; version?: string }; spans: OtlpSpan[] }[];
            }[];
          };
          for (const rs of doc.resourceSpans)
            for (const ss of rs.scopeSpans)
              for (const span of ss.spans)
                received.push({ resource: flat(rs.resource.attributes), scope: ss.scope, span });
        }
        res.writeHead(status, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    tracing = await startOtlpTracing({
      endpoint: `http://127.0.0.1:${port}/v1/traces`,
      serviceName: 'orders',
      serviceNamespace: 'shop',
      serviceInstanceId: 'orders-1',
      version: '1.2.3',
      logger: silentLogger,
      onExport: (result, spans) => results.push([result, spans]),
    });
  });
  after(async () => {
    await tracing.shutdown();
    server.close();
  });

  it('sends what it is given as OTLP JSON', async () => {
    tracing.export({
      name: 'GET',
      kind: 'server',
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      parentSpanId: '1111111111111111',
      traceState: [
        ['rojo', '00f067aa0ba902b7'],
        ['congo', 't61rcWkgMzE'],
      ],
      startTimeMs: 1_700_000_000_123,
      durationMs: 2.5,
      attributes: { 'http.request.method': 'GET', 'http.response.status_code': 503, ok: false },
      error: true,
    });
    tracing.export({
      name: 'POST',
      kind: 'client',
      traceId: '4bf92f3577b34da6a3ce929d0e0e4737',
      spanId: '00f067aa0ba902b8',
      parentSpanId: undefined,
      traceState: undefined,
      startTimeMs: 1_700_000_000_000,
      durationMs: 1,
      attributes: {},
      error: false,
    });
    await tracing.flush();
    assert.equal(received.length, 2);
    const [server, client] = received as [Received, Received];
    assert.deepEqual(server.resource, {
      'service.name': 'orders',
      'service.namespace': 'shop',
      'service.instance.id': 'orders-1',
    });
    assert.deepEqual(server.scope, { name: 'meshwork', version: '1.2.3' });
    assert.equal(server.span.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
    assert.equal(server.span.spanId, '00f067aa0ba902b7');
    assert.equal(server.span.parentSpanId, '1111111111111111');
    assert.equal(server.span.traceState, 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE');
    assert.equal(server.span.kind, 2);
    assert.equal(server.span.startTimeUnixNano, '1700000000123000000');
    assert.equal(server.span.endTimeUnixNano, '1700000000125500000');
    assert.equal(server.span.status.code, 2, 'ERROR');
    assert.deepEqual(flat(server.span.attributes), {
      'http.request.method': 'GET',
      'http.response.status_code': 503,
      ok: false,
    });
    assert.equal(client.span.kind, 3);
    assert.ok(!client.span.parentSpanId, 'a root span has no parent');
    assert.ok(!client.span.status.code, 'UNSET');
    assert.deepEqual(results, [['exported', 2]]);
  });

  it('counts a batch the receiver refused as failed, and goes on', async () => {
    status = 500;
    const span = {
      name: 'GET',
      kind: 'client' as const,
      traceId: '4bf92f3577b34da6a3ce929d0e0e4738',
      spanId: '00f067aa0ba902b9',
      parentSpanId: undefined,
      traceState: undefined,
      startTimeMs: Date.now(),
      durationMs: 1,
      attributes: {},
      error: false,
    };
    tracing.export(span);
    // A 500 is not one the exporter retries (429, 502, 503, 504 are): the flush reports it.
    await assert.rejects(tracing.flush(), /Internal Server Error/);
    status = 200;
    tracing.export({ ...span, spanId: '00f067aa0ba902ba' });
    await tracing.flush();
    assert.deepEqual(results.slice(1), [
      ['failed', 1],
      ['exported', 1],
    ]);
    assert.equal(received.at(-1)?.span.spanId, '00f067aa0ba902ba');
  });
});
