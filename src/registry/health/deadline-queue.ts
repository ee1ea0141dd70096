/**
 * @module DeadlineQueue: many deadlines on one timer (a binary min-heap), so 100k TTL checks do
 * not cost 100k timers and closures.
 */
import type { Clock, TimerHandle } from '../../core/clock.js';

interface Entry<T> {
  readonly dueMono: number;
  readonly item: T;
}

/**
 * Calls `onDue` with every item whose deadline has passed, from one clock timer set for the
 * earliest deadline. `lateMs` is how late that timer fired (a stall shows as a large value).
 * An item may be pushed several times; it is delivered once per push. Callers drop stale
 * entries themselves (e.g. with a generation number in the item).
 */
export class DeadlineQueue<T> {
  readonly #clock: Clock;
  readonly #onDue: (items: T[], lateMs: number) => void;
  readonly #heap: Entry<T>[] = [];
  #timer: TimerHandle | undefined;
  #timerDueMono = Number.POSITIVE_INFINITY;

  constructor(clock: Clock, onDue: (items: T[], lateMs: number) => void) {
    this.#clock = clock;
    this.#onDue = onDue;
  }

  get size(): number {
    return this.#heap.length;
  }

  push(item: T, dueMono: number): void {
    const heap = this.#heap;
    heap.push({ dueMono, item });
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent] as Entry<T>;
      const c = heap[i] as Entry<T>;
      if (p.dueMono <= c.dueMono) break;
      heap[parent] = c;
      heap[i] = p;
      i = parent;
    }
    if (dueMono < this.#timerDueMono) this.#arm();
  }

  /** Drops every entry and the timer. */
  clear(): void {
    this.#heap.length = 0;
    this.#disarm();
  }

  #pop(): Entry<T> | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined || heap.length === 0) return top;
    heap[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && (heap[l] as Entry<T>).dueMono < (heap[m] as Entry<T>).dueMono) m = l;
      if (r < heap.length && (heap[r] as Entry<T>).dueMono < (heap[m] as Entry<T>).dueMono) m = r;
      if (m === i) break;
      const tmp = heap[i] as Entry<T>;
      heap[i] = heap[m] as Entry<T>;
      heap[m] = tmp;
      i = m;
    }
    return top;
  }

  #disarm(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerDueMono = Number.POSITIVE_INFINITY;
  }

  #arm(): void {
    this.#disarm();
    const top = this.#heap[0];
    if (top === undefined) return;
    const dueMono = top.dueMono;
    this.#timerDueMono = dueMono;
    const handle = this.#clock.setTimeout(
      () => this.#fire(dueMono),
      Math.max(0, dueMono - this.#clock.monotonicMs()),
    );
    handle.unref?.();
    this.#timer = handle;
  }

  #fire(timerDueMono: number): void {
    this.#timer = undefined;
    this.#timerDueMono = Number.POSITIVE_INFINITY;
    const nowMono = this.#clock.monotonicMs();
    const due: T[] = [];
    while (this.#heap.length > 0 && (this.#heap[0] as Entry<T>).dueMono <= nowMono) {
      due.push((this.#pop() as Entry<T>).item);
    }
    try {
      if (due.length > 0) this.#onDue(due, nowMono - timerDueMono);
    } finally {
      if (this.#timer === undefined) this.#arm();
    }
  }
}
