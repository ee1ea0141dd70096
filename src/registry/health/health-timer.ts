/** @module setHealthTimer: the health subsystem's timers, which never keep the process alive. */
import type { Clock, TimerHandle } from '../../core/clock.js';

/** Sets an unref'd timer on `clock`: a pending check timer must not hold the agent open. */
export function setHealthTimer(clock: Clock, fn: () => void, ms: number): TimerHandle {
  const handle = clock.setTimeout(fn, ms);
  handle.unref?.();
  return handle;
}
