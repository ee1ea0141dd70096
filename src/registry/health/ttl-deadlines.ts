/** @module TtlDeadlines: the TTL deadline of every check, on one timer. */
import type { Clock } from '../../core/clock.js';
import { DeadlineQueue } from './deadline-queue.js';
import type { StallMonitor } from './stall-monitor.js';
import type { TrackedCheck, TrackedInstance } from './tracked-instance.js';

/** An entry of the TTL deadline queue. */
interface TtlEntry {
  readonly tracked: TrackedInstance;
  readonly check: TrackedCheck;
  readonly generation: number;
}

export interface TtlDeadlinesOptions {
  readonly clock: Clock;
  readonly stall: StallMonitor;
  /** Deadlines are kept outside (cluster mode: etcd leases): `arm()` does nothing. */
  readonly external: boolean;
  /** A check's TTL passed in silence; its next deadline is armed already. */
  readonly expired: (tracked: TrackedInstance, check: TrackedCheck) => void;
}

/**
 * Keeps every TTL deadline in one {@link DeadlineQueue}. A heartbeat only moves the check's
 * deadline (`ttlDueMono`); an entry that falls due early is queued again for the rest, so
 * heartbeats allocate nothing. Each silent TTL period is one expiry.
 *
 * @example
 * const ttl = new TtlDeadlines({ clock, stall, external: false, expired: (t, c) => fail(t, c) });
 * ttl.start();
 * ttl.arm(tracked, check); // on start and on every heartbeat
 */
export class TtlDeadlines {
  readonly #clock: Clock;
  readonly #stall: StallMonitor;
  readonly #external: boolean;
  readonly #expired: TtlDeadlinesOptions['expired'];
  readonly #queue: DeadlineQueue<TtlEntry>;
  #running = false;

  constructor(options: TtlDeadlinesOptions) {
    this.#clock = options.clock;
    this.#stall = options.stall;
    this.#external = options.external;
    this.#expired = options.expired;
    this.#queue = new DeadlineQueue(options.clock, (due, lateMs) => this.#onDue(due, lateMs));
  }

  /** Deadlines that fall due from now on expire checks. */
  start(): void {
    this.#running = true;
  }

  /** Drops every queued deadline. */
  stop(): void {
    this.#running = false;
    this.#queue.clear();
  }

  /** (Re)starts the check's TTL: the deadline is one TTL from now. */
  arm(tracked: TrackedInstance, check: TrackedCheck): void {
    if (this.#external) return;
    check.ttlDueMono = this.#clock.monotonicMs() + (check.def.ttlMs ?? 0);
    this.#enqueue(tracked, check);
  }

  /** Forgets the check's deadline: entries queued for it are stale from now on. */
  forget(check: TrackedCheck): void {
    check.ttlGeneration++;
    check.ttlQueued = false;
  }

  #enqueue(tracked: TrackedInstance, check: TrackedCheck): void {
    if (check.ttlQueued) return;
    check.ttlQueued = true;
    this.#queue.push({ tracked, check, generation: check.ttlGeneration }, check.ttlDueMono);
  }

  #onDue(entries: TtlEntry[], lateMs: number): void {
    const live: TtlEntry[] = [];
    for (const e of entries) {
      if (e.generation !== e.check.ttlGeneration) continue; // the check stopped since
      e.check.ttlQueued = false;
      live.push(e);
    }
    if (!this.#running) return;
    if (this.#stall.noticeLate(lateMs)) return; // the stall re-armed every TTL, these included
    const nowMono = this.#clock.monotonicMs();
    for (const { tracked, check } of live) {
      if (check.ttlDueMono > nowMono) {
        // A heartbeat moved the deadline since this entry was queued: wait for the rest.
        this.#enqueue(tracked, check);
        continue;
      }
      // Each further silent TTL counts as one more failure, so failuresBeforeCritical applies.
      this.arm(tracked, check);
      this.#expired(tracked, check);
    }
  }
}
