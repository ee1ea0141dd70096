/**
 * @module RuntimeSource: what an orchestrator source (Docker today, Kubernetes EndpointSlices
 * later) tells the reconcile loop: the whole set of workloads now, then each change.
 */
import type { RegistrationInput } from '../protocol/registration.js';

/** One workload (a container, a pod's endpoint) that asked to be registered. */
export interface Workload {
  /** The runtime's id, stable for the workload's life (a container id). */
  readonly id: string;
  /** A name for logs (the container's name). */
  readonly name: string;
  /** Paused (Docker) or not ready (Kubernetes): registered, but in maintenance. */
  readonly paused: boolean;
  /** The instance it becomes; undefined when `problems` is not empty. */
  readonly registration: RegistrationInput | undefined;
  /** Why it cannot be registered (bad labels), one line each naming the label. */
  readonly problems: readonly string[];
}

/** What a source calls; the reconcile loop implements it. */
export interface SourceHandlers {
  /**
   * Every workload that runs now and carries the service label. Called once connected and again
   * after every reconnection; the loop makes the catalog match it (a full reconcile).
   */
  snapshot(workloads: readonly Workload[]): void;
  /** One workload started, was paused or unpaused: its description now. */
  upsert(workload: Workload): void;
  /** One workload stopped, died or was removed (an unknown id is ignored). */
  remove(id: string): void;
  /** The connection to the runtime dropped; the source reconnects and sends a new snapshot. */
  disconnected(err: Error): void;
}

/**
 * A runtime the sync follows. `start` MUST return at once and then call `handlers` from its own
 * tasks: `snapshot` first, then changes in the order the runtime reported them, then (after a
 * drop) `disconnected` and a fresh `snapshot` once back. Handlers MUST NOT throw. `stop`
 * closes the connection; no handler is called once it resolves.
 */
export interface RuntimeSource {
  /** A short name for the apply set and logs (`docker`, `kubernetes`). */
  readonly kind: string;
  start(handlers: SourceHandlers): void;
  stop(): Promise<void>;
}
