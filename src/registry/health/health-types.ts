/** @module Contracts between the health subsystem and the registry that hosts it. */
import type { CheckDefinition, CheckKind, CheckStatus, CheckState } from '../../core/types.js';

/** What the registry does for the health subsystem. */
export interface HealthHost {
  /**
   * Persists check states that changed status (or output on a status change). Called only on
   * changes, never for a heartbeat that keeps the status. MAY reject (store unavailable); the
   * health manager logs and retries on the next change.
   */
  writeStates(states: readonly CheckState[]): Promise<void>;
  /** Deregisters an instance whose check stayed critical past deregisterCriticalAfterMs. */
  deregister(instanceId: string, reason: string): Promise<void>;
  /**
   * External TTLs only: arms a fresh deadline for a check whose deadline passed but which is not
   * critical yet, so the next silent TTL counts as another failure.
   */
  renewTtl?(instanceId: string, checkId: string): Promise<void>;
}

/** Observes check runs for metrics. MUST be cheap and MUST NOT throw. */
export interface HealthObserver {
  checkRun(kind: CheckKind, status: CheckStatus, durationMs: number): void;
  /** The event loop stalled this long; TTL deadlines were restarted (no mass expiry). */
  stall?(stalledMs: number): void;
}

/** The outcome of one probe. */
export interface ProbeResult {
  readonly status: CheckStatus;
  readonly output: string;
}

/**
 * Runs one probe of one kind (http, tcp; grpc later). Contract: MUST resolve (never reject) within
 * about `def.timeoutMs`, honouring `signal`; a timeout or connection error is `critical` with an
 * output that says why.
 */
export interface CheckProbe {
  readonly kind: CheckKind;
  probe(def: CheckDefinition, signal: AbortSignal): Promise<ProbeResult>;
}
