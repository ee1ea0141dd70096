/** @module Clock: the injected source of time and timers, so tests advance time instead of sleeping. */

/** An opaque timer handle. */
export interface TimerHandle {
  /** Let the process exit while this timer is pending. */
  unref?(): void;
}

/**
 * Time and timers. Components MUST take time only from their Clock, never from Date or global
 * timers, so tests can drive them with a fake clock.
 */
export interface Clock {
  /** Wall-clock epoch milliseconds. */
  now(): number;
  /** Monotonic milliseconds (for durations). */
  monotonicMs(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** The real clock. */
export const systemClock: Clock = Object.freeze({
  now: () => Date.now(),
  monotonicMs: () => performance.now(),
  setTimeout: (fn: () => void, ms: number): TimerHandle => setTimeout(fn, ms),
  clearTimeout: (handle: TimerHandle): void => {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
});
