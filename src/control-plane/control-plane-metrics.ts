/** @module ControlPlaneMetrics: the compiler's Prometheus metrics (meshwork_control_plane_*). */
import { Counter, Gauge, Histogram, type Registry as PromRegistry } from 'prom-client';
import type { ProxyKind } from '../protocol/mesh/snapshot.js';

/** Compiler metrics, registered on construction. */
export class ControlPlaneMetrics {
  readonly compiles: Counter<'kind'>;
  readonly compileSeconds: Histogram<'kind'>;
  readonly versions: Counter<'kind'>;
  readonly identities: Gauge;

  constructor(registry: PromRegistry, identities: () => number) {
    const registers = [registry];
    this.compiles = new Counter({
      name: 'meshwork_control_plane_compiles_total',
      help: 'Snapshot compiles, by proxy kind (one per distinct proxy identity and change).',
      labelNames: ['kind'],
      registers,
    });
    this.compileSeconds = new Histogram({
      name: 'meshwork_control_plane_compile_seconds',
      help: 'Time to compile one snapshot, by proxy kind.',
      labelNames: ['kind'],
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1],
      registers,
    });
    this.versions = new Counter({
      name: 'meshwork_control_plane_snapshot_versions_total',
      help: 'Compiles that gave a proxy identity a new snapshot version (its watchers were called).',
      labelNames: ['kind'],
      registers,
    });
    this.identities = new Gauge({
      name: 'meshwork_control_plane_proxy_identities',
      help: 'Distinct proxy identities compiled for (watchers of one identity share it).',
      registers,
      collect() {
        this.set(identities());
      },
    });
  }

  compiled(kind: ProxyKind, seconds: number, changed: boolean): void {
    this.compiles.inc({ kind });
    this.compileSeconds.observe({ kind }, seconds);
    if (changed) this.versions.inc({ kind });
  }
}
