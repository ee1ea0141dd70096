/** @module FakeClock: a Clock whose time moves only when a test advances it. */
import type { Clock, TimerHandle } from '../core/clock.js';

interface FakeTimer extends TimerHandle {
  readonly id: number;
  readonly dueMs: number;
  readonly fn: () => void;
}

/**
 * A deterministic clock for unit tests. `advance(ms)` fires due timers in due order (timers
 * scheduled while advancing fire too, if they fall due within the advance).
 */
export class FakeClock implements Clock {
  #nowMs: number;
  #mono = 0;
  #nextId = 1;
  readonly #timers = new Map<number, FakeTimer>();

  constructor(startEpochMs = Date.UTC(2026, 0, 1)) {
    this.#nowMs = startEpochMs;
  }

  now(): number {
    return this.#nowMs;
  }

  monotonicMs(): number {
    return this.#mono;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: FakeTimer = {
      id: this.#nextId++,
      dueMs: this.#mono + Math.max(0, ms),
      fn,
      unref: () => undefined,
    };
    this.#timers.set(timer.id, timer);
    return timer;
  }

  clearTimeout(handle: TimerHandle): void {
    this.#timers.delete((handle as FakeTimer).id);
  }

  /** Number of timers ever created (setTimeout calls). */
  get timersCreated(): number {
    return this.#nextId - 1;
  }

  /** Number of pending timers. */
  get pendingTimers(): number {
    return this.#timers.size;
  }

  /** Moves time forward by `ms`, firing every timer that falls due, in order. */
  advance(ms: number): void {
    const target = this.#mono + ms;
    for (;;) {
      let next: FakeTimer | undefined;
      for (const t of this.#timers.values()) {
        if (
          t.dueMs <= target &&
          (next === undefined || t.dueMs < next.dueMs || (t.dueMs === next.dueMs && t.id < next.id))
        )
          next = t;
      }
      if (next === undefined) break;
      this.#timers.delete(next.id);
      // A timer left overdue by jump() fires late, at the current time, as after a real stall;
      // time never moves back.
      if (next.dueMs > this.#mono) {
        this.#nowMs += next.dueMs - this.#mono;
        this.#mono = next.dueMs;
      }
      next.fn();
    }
    this.#nowMs += target - this.#mono;
    this.#mono = target;
  }

  /**
   * Advances time, letting promise callbacks run between timers: use when the code under test
   * awaits between timers (probe results, store commits).
   */
  async advanceAsync(ms: number, stepMs = 1): Promise<void> {
    const target = this.#mono + ms;
    while (this.#mono < target) {
      this.advance(Math.min(stepMs, target - this.#mono));
      await flushMicrotasks();
    }
  }

  /** Jumps the clock without firing timers (simulates an event-loop stall). */
  jump(ms: number): void {
    this.#nowMs += ms;
    this.#mono += ms;
  }
}

/** Lets pending promise callbacks run. */
export async function flushMicrotasks(rounds = 10): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
