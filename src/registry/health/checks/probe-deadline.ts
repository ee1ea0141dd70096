/** @module Helpers shared by the probes: a Clock-driven deadline joined with the caller's signal. */
import type { Clock } from '../../../core/clock.js';

/** An abort signal that fires on the caller's abort or after `timeoutMs`, whichever is first. */
export interface ProbeDeadline {
  readonly signal: AbortSignal;
  /** True when the deadline (not the caller) aborted. */
  timedOut(): boolean;
  /** Clears the timer and the listener; call once the probe is done. */
  dispose(): void;
}

/** Starts a deadline of `timeoutMs` on `clock`, also aborted by `signal`. */
export function startProbeDeadline(
  clock: Clock,
  timeoutMs: number,
  signal: AbortSignal,
): ProbeDeadline {
  const controller = new AbortController();
  let timedOut = false;
  const onAbort = (): void => controller.abort(signal.reason);
  const timer = clock.setTimeout(() => {
    timedOut = true;
    controller.abort(new Error(`timed out after ${timeoutMs} ms`));
  }, timeoutMs);
  timer.unref?.();
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  return {
    signal: controller.signal,
    timedOut: () => timedOut,
    dispose: () => {
      clock.clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    },
  };
}

/** A one-line description of a connection or protocol error. */
export function describeError(err: unknown): string {
  if (err instanceof AggregateError && err.message === '') {
    // Node's happy-eyeballs connect (autoSelectFamily) reports one error per address tried.
    const inner = err.errors.map(describeError).filter((m) => m !== '');
    if (inner.length > 0) return [...new Set(inner)].join('; ');
  }
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    if (err.message !== '') return err.message;
    if (typeof code === 'string') return code;
    return err.name;
  }
  return String(err);
}
