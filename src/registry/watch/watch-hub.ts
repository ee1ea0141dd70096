/**
 * @module WatchHub: wakes blocking queries by topic. A topic is one service (`svc:<name>`), the
 * whole catalog (`catalog`) or the KV space (`kv`), so a watch on service A never wakes for B.
 */
import type { Clock, TimerHandle } from '../../core/clock.js';
import type { Topic, WaitCancellation } from '../catalog-facade.js';

interface Waiter {
  wake(): void;
}

/** Topic-keyed wake-ups for blocking queries. */
export class WatchHub {
  readonly #waiters = new Map<Topic, Set<Waiter>>();
  readonly #clock: Clock;
  #count = 0;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** Blocking queries waiting on `topic` right now. */
  waitingOn(topic: Topic): number {
    return this.#waiters.get(topic)?.size ?? 0;
  }

  /** Number of blocking queries waiting right now. */
  get waiting(): number {
    return this.#count;
  }

  /**
   * Resolves on the next publish of `topic`, after `timeoutMs`, or when `cancellation` is used,
   * whichever comes first. Never rejects.
   */
  next(topic: Topic, timeoutMs: number, cancellation?: WaitCancellation): Promise<void> {
    return new Promise<void>((resolve) => {
      let set = this.#waiters.get(topic);
      if (set === undefined) {
        set = new Set();
        this.#waiters.set(topic, set);
      }
      const waiters = set;
      const handle: { timer?: TimerHandle } = {};
      const waiter: Waiter = {
        wake: () => {
          if (handle.timer !== undefined) this.#clock.clearTimeout(handle.timer);
          if (cancellation !== undefined) cancellation.cancel = undefined;
          if (waiters.delete(waiter)) this.#count--;
          if (waiters.size === 0 && this.#waiters.get(topic) === waiters)
            this.#waiters.delete(topic);
          resolve();
        },
      };
      if (cancellation?.cancelled === true) return resolve();
      waiters.add(waiter);
      this.#count++;
      handle.timer = this.#clock.setTimeout(waiter.wake, timeoutMs);
      if (cancellation !== undefined) cancellation.cancel = waiter.wake;
    });
  }

  /** Wakes every waiter of every topic (at shutdown, so blocking queries answer instead of hanging). */
  wakeAll(): void {
    const all = [...this.#waiters.values()];
    this.#waiters.clear();
    for (const set of all) for (const w of [...set]) w.wake();
  }

  /** Wakes every waiter of `topic`. */
  publish(topic: Topic): void {
    const set = this.#waiters.get(topic);
    if (set === undefined) return;
    this.#waiters.delete(topic);
    for (const w of [...set]) w.wake();
  }
}
