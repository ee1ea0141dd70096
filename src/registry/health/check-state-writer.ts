/** @module CheckStateWriter: hands check status changes to the host, one write per turn. */
import type { Logger } from '../../core/logger.js';
import type { CheckState } from '../../core/types.js';
import { describeError } from './checks/probe-deadline.js';
import type { HealthHost } from './health-types.js';

/** Where the writer notes the last state queued for a check (the manager's `TrackedCheck`). */
export interface WriteSlot {
  lastQueued: CheckState | undefined;
}

export interface CheckStateWriterOptions {
  readonly host: HealthHost;
  /** The health component's logger. */
  readonly logger: Logger;
  /** The slot of a check still tracked; undefined for one gone since, whose state is not written. */
  readonly slotOf: (instanceId: string, checkId: string) => WriteSlot | undefined;
}

/**
 * Batches check state changes: those queued in the same turn (a heartbeat to several TTL checks,
 * timers firing together) go out as one `host.writeStates()`. A failed write is not retried on its
 * own (HealthHost contract): its states ride along with the next change, unless a newer state of
 * the same check was queued meanwhile.
 *
 * @example
 * const writer = new CheckStateWriter({ host, logger, slotOf: (i, c) => findCheck(i, c) });
 * writer.queue(check, toCheckState(instanceId, check.def.id, check.machine));
 * await writer.settled();
 */
export class CheckStateWriter {
  readonly #host: HealthHost;
  readonly #log: Logger;
  readonly #slotOf: (instanceId: string, checkId: string) => WriteSlot | undefined;
  readonly #pending = new Map<string, CheckState>();
  readonly #unwritten = new Map<string, CheckState>();
  #flushQueued = false;
  /** The latest write handed to the host (settled, never rejects). */
  #lastWrite: Promise<void> = Promise.resolve();

  constructor(options: CheckStateWriterOptions) {
    this.#host = options.host;
    this.#log = options.logger;
    this.#slotOf = options.slotOf;
  }

  /** Queues `state` (replacing one queued earlier for the same check) for this turn's write. */
  queue(slot: WriteSlot, state: CheckState): void {
    const key = writeKey(state.instanceId, state.checkId);
    slot.lastQueued = state;
    this.#pending.set(key, state);
    this.#unwritten.delete(key);
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    // Changes made in the same turn (a heartbeat to several TTL checks, timers firing together)
    // go out as one write.
    queueMicrotask(() => this.#flush());
  }

  /** Drops what is queued or left unwritten for a check that stopped. */
  forget(instanceId: string, checkId: string): void {
    const key = writeKey(instanceId, checkId);
    this.#pending.delete(key);
    this.#unwritten.delete(key);
  }

  /**
   * Resolves once every state queued so far has been handed to the host and its write has settled
   * (written or failed).
   */
  async settled(): Promise<void> {
    // A flush queued earlier runs before this microtask, and sets #lastWrite.
    if (this.#flushQueued) await new Promise<void>((resolve) => queueMicrotask(resolve));
    await this.#lastWrite;
  }

  #flush(): void {
    this.#flushQueued = false;
    const batch = new Map(this.#unwritten);
    for (const [key, state] of this.#pending) batch.set(key, state);
    this.#pending.clear();
    this.#unwritten.clear();
    const states = [...batch.values()].filter(
      (s) => this.#slotOf(s.instanceId, s.checkId) !== undefined,
    );
    if (states.length === 0) return;
    let written: Promise<void>;
    try {
      written = this.#host.writeStates(states);
      this.#lastWrite = written.catch(() => undefined);
    } catch (err) {
      written = Promise.reject(err);
    }
    written.catch((err: unknown) => {
      // No retry loop: the states ride along with the next change (HealthHost contract).
      this.#log.warn(
        { count: states.length, err: describeError(err) },
        'check state write failed; will retry with the next change',
      );
      for (const s of states) {
        const key = writeKey(s.instanceId, s.checkId);
        const slot = this.#slotOf(s.instanceId, s.checkId);
        if (slot?.lastQueued === s && !this.#pending.has(key)) this.#unwritten.set(key, s);
      }
    });
  }
}

function writeKey(instanceId: string, checkId: string): string {
  return `${instanceId}\u0000${checkId}`;
}
