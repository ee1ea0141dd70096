/** @module TrackedInstance: the health manager's record of an instance and of each of its checks. */
import type { TimerHandle } from '../../core/clock.js';
import type { CheckDefinition, CheckState, Instance } from '../../core/types.js';
import type { CheckMachineState } from './check-machine.js';

/** One probe of a check in flight. */
export interface ProbeRun {
  readonly controller: AbortController;
  readonly startedMono: number;
  /** Stall counter when the run started: a stall during the run voids its result. */
  readonly stallEpoch: number;
  backstop: TimerHandle | undefined;
}

/** A check the health manager runs: its machine, its timers and its probe in flight. */
export interface TrackedCheck {
  readonly def: CheckDefinition;
  machine: CheckMachineState;
  /** Next probe (http, tcp). TTL checks use the manager's deadline queue instead. */
  timer: TimerHandle | undefined;
  /**
   * TTL checks: monotonic ms of the deadline. A heartbeat only moves this; the queued entry is
   * re-queued for the rest when it falls due early, so heartbeats allocate nothing.
   */
  ttlDueMono: number;
  /** TTL checks: an entry for this check (of this generation) is in the deadline queue. */
  ttlQueued: boolean;
  /** Bumped when the check stops: queued entries of older generations are stale. */
  ttlGeneration: number;
  run: ProbeRun | undefined;
  deregisterTimer: TimerHandle | undefined;
  /** The last state handed to a write, to tell whether a failed write is still worth retrying. */
  lastQueued: CheckState | undefined;
  /** The output last handed to a write (or read from the store), and when (clock ms). */
  writtenOutput: string;
  writtenAt: number;
}

/** An instance the health manager tracks, with its checks. */
export interface TrackedInstance {
  instance: Instance;
  /** In definition order; an array, not a Map: instances have few checks, and many instances. */
  checks: TrackedCheck[];
  deregisterRequested: boolean;
  /** This agent runs the instance's checks (always true outside cluster mode). */
  owned: boolean;
}
