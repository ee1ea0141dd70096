/** @module RegistryMetrics: the registry's Prometheus metrics (meshwork_registry_*). */
import { Counter, Gauge, Histogram, type Registry as PromRegistry } from 'prom-client';
import type { CheckKind, CheckStatus, InstanceStatus } from '../core/types.js';
import type { HealthObserver } from './health/health-types.js';

/** What the metrics read from the registry at scrape time. */
export interface RegistryMetricsSource {
  countsByStatus(): Record<InstanceStatus, number>;
  watchers(): { blocking: number; streams: number; dropped: number };
  index(): number;
  /** Bytes of KV keys and values held, and the quota on them. */
  kv(): { bytes: number; quotaBytes: number };
}

/** Registry metrics, registered on construction. */
export class RegistryMetrics implements HealthObserver {
  readonly registrations: Counter<'source'>;
  readonly deregistrations: Counter<'reason'>;
  readonly heartbeats: Counter;
  readonly checkRuns: Counter<'kind' | 'status'>;
  readonly checkDuration: Histogram<'kind'>;
  readonly stalls: Counter;
  readonly kvQuotaRefusals: Counter;

  constructor(registry: PromRegistry, source: RegistryMetricsSource) {
    const registers = [registry];
    this.registrations = new Counter({
      name: 'meshwork_registry_registrations_total',
      help: 'Registrations accepted (new or changed instances), by source.',
      labelNames: ['source'],
      registers,
    });
    this.deregistrations = new Counter({
      name: 'meshwork_registry_deregistrations_total',
      help: 'Instances removed, by reason (api, apply, critical).',
      labelNames: ['reason'],
      registers,
    });
    this.heartbeats = new Counter({
      name: 'meshwork_registry_heartbeats_total',
      help: 'Heartbeats received.',
      registers,
    });
    this.checkRuns = new Counter({
      name: 'meshwork_registry_check_runs_total',
      help: 'Probes run by the agent, by check kind and result.',
      labelNames: ['kind', 'status'],
      registers,
    });
    this.checkDuration = new Histogram({
      name: 'meshwork_registry_check_duration_seconds',
      help: 'Probe duration, by check kind.',
      labelNames: ['kind'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers,
    });
    this.stalls = new Counter({
      name: 'meshwork_registry_event_loop_stalls_total',
      help: 'Event-loop stalls longer than the stall threshold (TTL deadlines were restarted).',
      registers,
    });
    new Gauge({
      name: 'meshwork_registry_instances',
      help: 'Instances in the catalog, by aggregated status.',
      labelNames: ['status'],
      registers,
      collect() {
        for (const [status, n] of Object.entries(source.countsByStatus())) this.set({ status }, n);
      },
    });
    new Gauge({
      name: 'meshwork_registry_watchers',
      help: 'Watchers connected now, by kind (blocking, stream).',
      labelNames: ['kind'],
      registers,
      collect() {
        const w = source.watchers();
        this.set({ kind: 'blocking' }, w.blocking);
        this.set({ kind: 'stream' }, w.streams);
      },
    });
    new Gauge({
      name: 'meshwork_registry_watchers_dropped',
      help: 'Streaming watchers dropped for being too slow, since start.',
      registers,
      collect() {
        this.set(source.watchers().dropped);
      },
    });
    this.kvQuotaRefusals = new Counter({
      name: 'meshwork_registry_kv_quota_refusals_total',
      help: 'KV puts refused because the KV store would pass its quota.',
      registers,
    });
    new Gauge({
      name: 'meshwork_registry_kv_bytes',
      help: 'Bytes of KV keys and values held (what the KV quota counts).',
      registers,
      collect() {
        this.set(source.kv().bytes);
      },
    });
    new Gauge({
      name: 'meshwork_registry_kv_quota_bytes',
      help: 'The KV quota (agent option kv.quotaBytes).',
      registers,
      collect() {
        this.set(source.kv().quotaBytes);
      },
    });
    new Gauge({
      name: 'meshwork_registry_index',
      help: 'The catalog index.',
      registers,
      collect() {
        this.set(source.index());
      },
    });
  }

  stall(): void {
    this.stalls.inc();
  }

  checkRun(kind: CheckKind, status: CheckStatus, durationMs: number): void {
    this.checkRuns.inc({ kind, status });
    this.checkDuration.observe({ kind }, durationMs / 1000);
  }
}
