/**
 * @module Two sidecar data paths in this process, as an in-process benchmark needs them: B's
 * inbound in front of an app (service `payments`), A (service `orders`) routing to B by a
 * compiled snapshot, each with the observers it is given; and one side's observer parts made
 * as `meshwork sidecar` makes them.
 */
import { join } from 'node:path';
import { Registry } from 'prom-client';
import type { Pool } from 'undici';
import { DEFAULT_TRACING_SAMPLE_RATIO } from '../../src/config/tracing-options.js';
import { silentLogger } from '../../src/core/logger.js';
import { EdgeCounter } from '../../src/proxy/edge-counts.js';
import { IstioMetrics } from '../../src/proxy/istio-metrics.js';
import type { RequestObserver } from '../../src/proxy/observe.js';
import type { ObserverParts } from '../../src/proxy/observer-lists.js';
import {
  createAccessLogWriter,
  type AccessLogWriter,
} from '../../src/telemetry/access-log-writer.js';
import { startOtlpTracing, type SpanExporterHandle } from '../../src/telemetry/tracing.js';
import { DEFAULT_SIDECAR_OPTIONS } from '../../src/sidecar/options.js';
import { startSidecarProxy, type RunningSidecarProxy } from '../../src/sidecar/sidecar-proxy.js';
import { fakeInstance } from '../../src/testing/fake-mesh-catalog.js';
import { compileSidecarSnapshot } from '../../test/helpers/mesh-snapshot.js';
import { SIDECAR_PROXY_BASE } from '../../test/helpers/sidecar.js';

export interface InProcessPair {
  /** `orders`: its outbound (`outboundUrl`) routes `Host: payments` to B. */
  readonly a: RunningSidecarProxy;
  /** `payments`: its inbound forwards to the app. */
  readonly b: RunningSidecarProxy;
  close(): Promise<void>;
}

/** Starts B (in front of the app on `appPort`), then A, and gives A the snapshot to reach B. */
export async function startInProcessPair(
  appPort: number,
  observers: {
    readonly outbound?: readonly RequestObserver[];
    readonly inbound?: readonly RequestObserver[];
  } = {},
): Promise<InProcessPair> {
  const b = await startSidecarProxy(
    { ...SIDECAR_PROXY_BASE, service: 'payments', appPort },
    silentLogger,
    observers.inbound === undefined ? {} : { inboundObservers: observers.inbound },
  );
  const a = await startSidecarProxy(
    SIDECAR_PROXY_BASE,
    silentLogger,
    observers.outbound === undefined ? {} : { outboundObservers: observers.outbound },
  );
  const instance = fakeInstance('p1', 'payments', {
    address: '127.0.0.1',
    port: Number(new URL(b.inboundUrl).port),
    meta: { 'sidecar-version': '0.1.0' },
  });
  a.applySnapshot(compileSidecarSnapshot('orders', [instance], []));
  return {
    a,
    b,
    close: async () => {
      await Promise.all([a.close(), b.close()]);
    },
  };
}

/** The observer parts a benchmark turns on (issue 21). */
const OBSERVER_PARTS = ['metrics', 'edges', 'tracing', 'access-log'] as const;

/**
 * The parts of a comma list (`none`, or nothing: no parts), for the flag `flag`; throws on a
 * name that is not one.
 */
export function parseObserverParts(list: string, flag: string): Set<string> {
  const parts = new Set(
    list
      .split(',')
      .map((p) => p.trim())
      .filter((p) => p !== '' && p !== 'none'),
  );
  for (const p of parts)
    if (!(OBSERVER_PARTS as readonly string[]).includes(p))
      throw new Error(`${flag}: unknown part "${p}" (${OBSERVER_PARTS.join(', ')}, none)`);
  return parts;
}

/**
 * `requests` GETs of `/x` with `Host: payments` through `pool` (an in-process pair's A),
 * `connections` at a time; throws on an answer other than 200.
 */
export async function driveRequests(
  pool: Pool,
  requests: number,
  connections: number,
  userAgent: string,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (next++ < requests) {
        const r = await pool.request({
          path: '/x',
          method: 'GET',
          headers: { host: 'payments', 'user-agent': userAgent },
        });
        if (r.statusCode !== 200) throw new Error(`status ${r.statusCode}`);
        await r.body.dump();
      }
    }),
  );
}

/**
 * One side's observer parts as `meshwork sidecar` makes them (src/sidecar/sidecar.ts), those of
 * `parts` only: Istio metrics, the access log to a file in `dir` at the sidecar's default sample,
 * tracing at the default ratio exported over OTLP/HTTP to `otlpUrl` (required for
 * `tracing`), edge counts.
 */
export async function sideParts(
  service: string,
  parts: ReadonlySet<string>,
  dir: string,
  otlpUrl: string | undefined,
): Promise<{ parts: ObserverParts; close: () => Promise<void> }> {
  const istio = parts.has('metrics')
    ? new IstioMetrics(new Registry(), {
        component: 'sidecar',
        workload: { name: service, namespace: 'default', version: undefined },
      })
    : undefined;
  const log: AccessLogWriter | undefined = parts.has('access-log')
    ? createAccessLogWriter(join(dir, `${service}-access.log`))
    : undefined;
  if (parts.has('tracing') && otlpUrl === undefined)
    throw new Error('sideParts: tracing needs an OTLP receiver');
  const tracing: SpanExporterHandle | undefined =
    parts.has('tracing') && otlpUrl !== undefined
      ? await startOtlpTracing({
          endpoint: otlpUrl,
          serviceName: service,
          version: 'bench',
          logger: silentLogger,
        })
      : undefined;
  return {
    parts: {
      istio,
      accessLog:
        log === undefined
          ? undefined
          : { sink: log, sampleRate: DEFAULT_SIDECAR_OPTIONS.accessLogSample },
      tracing:
        tracing === undefined
          ? undefined
          : { sink: tracing, sampleRatio: DEFAULT_TRACING_SAMPLE_RATIO },
      edges: parts.has('edges') ? { counter: new EdgeCounter(), service } : undefined,
    },
    close: async () => {
      await log?.close();
      await tracing?.shutdown();
    },
  };
}
