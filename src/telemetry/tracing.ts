/**
 * @module Span export for the proxies' tracing (issue 21): finished spans, made by the proxies'
 * trace observers with their own ids and times, go to an OTLP/HTTP endpoint through the
 * OpenTelemetry JS SDK: each becomes the SDK's ReadableSpan (the finished-span interface its
 * processors and exporters take) and goes to a BatchSpanProcessor and the OTLP/HTTP JSON
 * exporter. No Tracer: the proxy already chose the ids, the sampling and the times, and the
 * SDK's span object (made to be written while it runs) and copies of the attributes cost about
 * half of a sampled span's CPU (docs/benchmarks.md, tracing).
 * The SDK is loaded here, with a dynamic import, only when tracing is configured: a proxy that
 * does not trace neither loads it nor pays its memory.
 */
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { Logger } from '../core/logger.js';

/** An attribute value as OpenTelemetry takes it. */
export type SpanAttributeValue = string | number | boolean;

/** One finished span, as a proxy made it. Ids are lowercase hex. */
export interface FinishedSpan {
  readonly name: string;
  readonly kind: 'client' | 'server';
  readonly traceId: string;
  readonly spanId: string;
  /** undefined: a root span. */
  readonly parentSpanId: string | undefined;
  /** The parent's `tracestate`, already validated (list members in order). */
  readonly traceState: readonly (readonly [string, string])[] | undefined;
  /** Epoch ms. */
  readonly startTimeMs: number;
  readonly durationMs: number;
  readonly attributes: Readonly<Record<string, SpanAttributeValue>>;
  /** Status ERROR (a 5xx, a local failure); else UNSET, as the HTTP conventions want. */
  readonly error: boolean;
}

/** Takes finished spans. MUST NOT throw or block: it queues, and exports off the request path. */
export interface SpanSink {
  export(span: FinishedSpan): void;
}

/** The OTLP exporter as a proxy holds it. */
export interface SpanExporterHandle extends SpanSink {
  /** Exports what is queued (stop sequences call it before the process exits). */
  flush(): Promise<void>;
  /** Flushes, then stops exporting. */
  shutdown(): Promise<void>;
}

export interface OtlpTracingOptions {
  /** The OTLP/HTTP traces URL, e.g. http://127.0.0.1:4318/v1/traces. */
  readonly endpoint: string;
  /** The `service.name` resource attribute. */
  readonly serviceName: string;
  /** `service.namespace`. */
  readonly serviceNamespace?: string;
  /** `service.instance.id`. */
  readonly serviceInstanceId?: string;
  /** The instrumentation scope's version. */
  readonly version: string;
  readonly logger: Logger;
  /** Told of each batch the exporter sent (`exported`) or could not send (`failed`). */
  readonly onExport?: (result: 'exported' | 'failed', spans: number) => void;
}

/**
 * Starts the exporter. The SDK's batch processor takes its `OTEL_BSP_*` settings and the
 * exporter its `OTEL_EXPORTER_OTLP_*` ones (headers, timeout, compression) from the environment,
 * as OpenTelemetry documents; the endpoint is `options.endpoint`.
 */
export async function startOtlpTracing(options: OtlpTracingOptions): Promise<SpanExporterHandle> {
  const [api, core, sdk, otlp, resources] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/core'),
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
  ]);
  const log = options.logger.child({ component: 'tracing' });
  const exporter = new otlp.OTLPTraceExporter({ url: options.endpoint });
  // Say when export starts failing and when it works again, not at every batch.
  let failing = false;
  const exportBatch = exporter.export.bind(exporter);
  exporter.export = (spans, done) =>
    exportBatch(spans, (result) => {
      options.onExport?.(result.code === 0 ? 'exported' : 'failed', spans.length);
      if (result.code !== 0 && !failing) {
        failing = true;
        log.warn(
          { endpoint: options.endpoint, spans: spans.length, err: result.error?.message },
          'span export failed',
        );
      } else if (result.code === 0 && failing) {
        failing = false;
        log.info({ endpoint: options.endpoint }, 'span export works again');
      }
      done(result);
    });
  const resource = resources.resourceFromAttributes({
    'service.name': options.serviceName,
    ...(options.serviceNamespace === undefined
      ? {}
      : { 'service.namespace': options.serviceNamespace }),
    ...(options.serviceInstanceId === undefined
      ? {}
      : { 'service.instance.id': options.serviceInstanceId }),
  });
  const processor = new sdk.BatchSpanProcessor(exporter);
  const scope = { name: 'meshwork', version: options.version };
  const { SpanKind, SpanStatusCode, TraceFlags, createTraceState } = api;
  const { millisToHrTime } = core;
  const NONE: [] = [];
  log.info({ endpoint: options.endpoint }, 'tracing: exporting spans over OTLP/HTTP');
  return {
    export(span) {
      const traceState =
        span.traceState === undefined || span.traceState.length === 0
          ? undefined
          : createTraceState(span.traceState.map(([k, v]) => `${k}=${v}`).join(','));
      const context = {
        traceId: span.traceId,
        spanId: span.spanId,
        traceFlags: TraceFlags.SAMPLED,
        ...(traceState === undefined ? {} : { traceState }),
      };
      const readable: ReadableSpan = {
        name: span.name,
        kind: span.kind === 'client' ? SpanKind.CLIENT : SpanKind.SERVER,
        spanContext: () => context,
        ...(span.parentSpanId === undefined
          ? {}
          : {
              parentSpanContext: {
                traceId: span.traceId,
                spanId: span.parentSpanId,
                traceFlags: TraceFlags.SAMPLED,
                isRemote: true,
              },
            }),
        startTime: millisToHrTime(span.startTimeMs),
        endTime: millisToHrTime(span.startTimeMs + span.durationMs),
        duration: millisToHrTime(span.durationMs),
        status: { code: span.error ? SpanStatusCode.ERROR : SpanStatusCode.UNSET },
        attributes: span.attributes,
        links: NONE,
        events: NONE,
        ended: true,
        resource,
        instrumentationScope: scope,
        droppedAttributesCount: 0,
        droppedEventsCount: 0,
        droppedLinksCount: 0,
      };
      processor.onEnd(readable);
    },
    flush: () => processor.forceFlush(),
    shutdown: () => processor.shutdown(),
  };
}
