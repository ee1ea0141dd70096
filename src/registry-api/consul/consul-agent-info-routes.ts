/**
 * @module The Consul /v1/agent endpoints tooling reads about the agent itself: `version`, `host`
 * (needs operator:read, as in Consul) and `metrics` (JSON, or the Prometheus text of /metrics
 * with `?format=prometheus` or a Prometheus `Accept`).
 */
import type { Registry as PromRegistry } from 'prom-client';
import type { Clock } from '../../core/clock.js';
import { CONSUL_API_VERSION } from './consul-agent-routes.js';
import type { ConsulContext } from './consul-context.js';
import { consulHostInfo } from './consul-host-info.js';
import { consulMetricsJson } from './consul-metrics-json.js';
import { first } from './consul-query.js';

/** What the agent-info routes read beyond the context. */
export interface ConsulAgentInfoOptions {
  /** The agent's metrics (absent: `agent/metrics` answers empty lists). */
  readonly metrics?: PromRegistry;
  readonly clock: Clock;
  /** When the agent started (`clock.now()`), for the counters' `Rate`. */
  readonly startedAtMs: number;
}

/**
 * `HumanVersion` of `agent/version`: the Consul API level the adapter answers, with Meshwork's own
 * version as semver build metadata (`1.17.0+meshwork.0.1.0`), so tools comparing versions read
 * 1.17.0 and a human reads which program answered.
 */
export function consulHumanVersion(meshworkVersion: string): string {
  // Semver build metadata: dot-separated, non-empty identifiers of [0-9A-Za-z-].
  const ids = meshworkVersion
    .split('.')
    .map((id) => id.replace(/[^0-9A-Za-z-]/g, '-'))
    .filter((id) => id !== '');
  return [`${CONSUL_API_VERSION}+meshwork`, ...ids].join('.');
}

/**
 * Whether a request asks for the Prometheus text: `?format=prometheus`, or without `?format=` an
 * `Accept` naming OpenMetrics or the Prometheus text format (Consul 1.7.2+ reads `Accept` too).
 */
export function wantsPrometheus(format: string | undefined, accept: string | undefined): boolean {
  if (format !== undefined) return format === 'prometheus';
  const a = (accept ?? '').toLowerCase();
  return a.includes('application/openmetrics-text') || /text\/plain;\s*version=0\.0\.4/.test(a);
}

/** Adds `agent/version`, `agent/host` and `agent/metrics` to the context's router. */
export function registerConsulAgentInfoRoutes(
  ctx: ConsulContext,
  options: ConsulAgentInfoOptions,
): void {
  const { route, q, json, version } = ctx;
  const { metrics, clock } = options;

  route(['GET'], '/agent/version', async (req, reply) =>
    json(req, reply, {
      // Meshwork's build stamps no commit and no date: empty, rather than made up.
      SHA: '',
      BuildDate: '',
      HumanVersion: consulHumanVersion(version),
      // Not a FIPS 140 build ("" as Consul's non-FIPS builds answer).
      FIPS: '',
    }),
  );

  route(['GET'], '/agent/host', async (req, reply) =>
    json(req, reply, await consulHostInfo(clock.now())),
  );

  route(['GET'], '/agent/metrics', async (req, reply) => {
    if (wantsPrometheus(first(q(req).format), req.headers.accept)) {
      const text = metrics === undefined ? '' : await metrics.metrics();
      return reply
        .status(200)
        .header('content-type', metrics?.contentType ?? 'text/plain; version=0.0.4; charset=utf-8')
        .send(text);
    }
    const now = clock.now();
    const all = metrics === undefined ? [] : await metrics.getMetricsAsJSON();
    return json(
      req,
      reply,
      consulMetricsJson(all, now, Math.max(0, (now - options.startedAtMs) / 1000)),
    );
  });
}
