/** @module PushMetrics: the push server's Prometheus metrics (meshwork_mesh_*). */
import { Counter, Gauge, Histogram, type Registry as PromRegistry } from 'prom-client';
import type { ProxyKind } from '../../protocol/mesh/snapshot.js';

/** Push metrics, registered on construction (one PushMetrics per metrics registry). */
export class PushMetrics {
  /** Proxies with a push stream open on this agent, by kind. */
  readonly connected: Gauge<'kind'>;
  /** Snapshot frames written to proxies. */
  readonly pushes: Counter;
  /** Answers received, by result (`ack`, `nack`). */
  readonly acks: Counter<'result'>;
  /** From writing a snapshot to a proxy to its ACK of that version. */
  readonly pushToAck: Histogram;

  constructor(registry: PromRegistry) {
    const registers = [registry];
    this.connected = new Gauge({
      name: 'meshwork_mesh_proxies_connected',
      help: 'Proxies holding a push stream on this agent, by kind (gateway, sidecar).',
      labelNames: ['kind'],
      registers,
    });
    for (const kind of ['gateway', 'sidecar'] satisfies ProxyKind[])
      this.connected.set({ kind }, 0);
    this.pushes = new Counter({
      name: 'meshwork_mesh_pushes_total',
      help: 'Snapshots written to proxies.',
      registers,
    });
    this.acks = new Counter({
      name: 'meshwork_mesh_acks_total',
      help: 'ACKs and NACKs received from proxies, by result (ack, nack).',
      labelNames: ['result'],
      registers,
    });
    this.pushToAck = new Histogram({
      name: 'meshwork_mesh_push_ack_seconds',
      help: 'Time from writing a snapshot to a proxy to its ACK of that version.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
  }
}
