/**
 * @module The request observers of one side of a proxy (issue 21), in one order for the sidecar
 * (outbound: reporter `source`; inbound: `destination`) and the gateway (`source` only): Istio's
 * metrics, then the access log, then the caller's own observers, then tracing, then the call
 * graph's edge counts. Each part is there only when it is on.
 */
import { createAccessLogObserver, type AccessLogSink } from './access-log.js';
import { destinationEdgeObserver, sourceEdgeObserver, type EdgeCounter } from './edge-counts.js';
import type { IstioMetrics } from './istio-metrics.js';
import type { RequestObserver } from './observe.js';
import { TraceObserver } from './tracing/trace-observer.js';
import type { SpanSink } from '../telemetry/tracing.js';

/** The observability parts a proxy has on; undefined (or absent): off. */
export interface ObserverParts {
  /** Istio's standard metrics (`istioMetrics: 'off'`: undefined). */
  readonly istio?: IstioMetrics | undefined;
  /** Access logs (`accessLog: 'off'`: undefined): where entries go and the share logged. */
  readonly accessLog?:
    | {
        readonly sink: AccessLogSink;
        readonly sampleRate: number;
        /** Uniform in [0, 1) (tests: seeded). Default Math.random. */
        readonly random?: (() => number) | undefined;
      }
    | undefined;
  /** The caller's own observers (deps: tests, the gateway command's tracer). */
  readonly extra?: readonly RequestObserver[] | undefined;
  /**
   * Spans (no tracing endpoint: undefined): a CLIENT span per request on the `source` side, a
   * SERVER span on the `destination` side (a gateway passes its `server-client` tracer in
   * `extra` instead).
   */
  readonly tracing?: { readonly sink: SpanSink; readonly sampleRatio: number } | undefined;
  /**
   * The call graph (edge reports off: undefined): this side's counter and the proxy's service;
   * `tagCalls` (`source` side only): name the caller to the callee's sidecar (the gateway).
   */
  readonly edges?:
    | { readonly counter: EdgeCounter; readonly service: string; readonly tagCalls?: boolean }
    | undefined;
}

/**
 * The observers of one side, in the order of the module comment.
 *
 * @example
 * const outboundObservers = requestObservers('source', { istio, edges: { counter, service } });
 */
export function requestObservers(
  reporter: 'source' | 'destination',
  parts: ObserverParts,
): RequestObserver[] {
  const { istio, accessLog, tracing, edges } = parts;
  const source = reporter === 'source';
  const observers: RequestObserver[] = [];
  if (istio !== undefined) observers.push(source ? istio.source : istio.destination);
  if (accessLog !== undefined)
    observers.push(
      createAccessLogObserver({
        sink: accessLog.sink,
        reporter,
        sampleRate: accessLog.sampleRate,
        ...(accessLog.random === undefined ? {} : { random: accessLog.random }),
      }),
    );
  observers.push(...(parts.extra ?? []));
  if (tracing !== undefined)
    observers.push(
      new TraceObserver({
        sink: tracing.sink,
        sampleRatio: tracing.sampleRatio,
        spans: source ? 'client' : 'server',
      }),
    );
  if (edges !== undefined)
    observers.push(
      source
        ? sourceEdgeObserver(edges.counter, edges.service, { tagCalls: edges.tagCalls === true })
        : destinationEdgeObserver(edges.counter, edges.service),
    );
  return observers;
}
