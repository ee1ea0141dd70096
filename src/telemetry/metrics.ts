/** @module A Prometheus registry per process, with Node's default metrics (meshwork_process_*). */
import { collectDefaultMetrics, Registry } from 'prom-client';

/** A fresh metrics registry (never the global one, so tests and embedders do not collide). */
export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'meshwork_' });
  return registry;
}
