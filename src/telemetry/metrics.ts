/** @module A Prometheus registry per process, with Node's default metrics (meshwork_process_*). */
import { collectDefaultMetrics, Registry } from 'prom-client';

export interface MetricsRegistryOptions {
  /**
   * How often the event-loop delay behind `meshwork_nodejs_eventloop_lag_{min,max,mean,p50,...}`
   * is sampled, ms (prom-client's default: 10). Each sample is a timer that wakes the process.
   */
  readonly eventLoopSampleMs?: number;
}

/** A fresh metrics registry (never the global one, so tests and embedders do not collide). */
export function createMetricsRegistry(options: MetricsRegistryOptions = {}): Registry {
  const registry = new Registry();
  collectDefaultMetrics({
    register: registry,
    prefix: 'meshwork_',
    ...(options.eventLoopSampleMs === undefined
      ? {}
      : { eventLoopMonitoringPrecision: options.eventLoopSampleMs }),
  });
  return registry;
}
