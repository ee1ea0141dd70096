/** @module A Prometheus registry per process, with Node's default metrics (meshwork_process_*). */
import { collectDefaultMetrics, Registry } from 'prom-client';

/**
 * How often every Meshwork process samples its event-loop delay (the
 * `meshwork_nodejs_eventloop_lag_{min,max,mean,stddev,p50,p90,p99}_seconds` metrics, kept since
 * the start), ms. prom-client's default, 10, is a timer that woke an idle process 100 times a
 * second and was most of its idle CPU: an idle sidecar 8.7 ms of CPU a second against 5.3 at
 * 100 ms, an idle agent 4.7 against 2.0 (docs/benchmarks.md, "An idle sidecar"). Stalls longer
 * than the interval are all seen; shorter ones are sampled.
 */
export const EVENT_LOOP_SAMPLE_MS = 100;

/** A fresh metrics registry (never the global one, so tests and embedders do not collide). */
export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({
    register: registry,
    prefix: 'meshwork_',
    eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS,
  });
  return registry;
}
