/**
 * @module repeatEvery: a task run every interval on an injected Clock, off the process's
 * keep-alive (unref'd timers). The next run is scheduled once the last one settled, so two runs
 * never overlap however slow one is.
 */
import type { Clock, TimerHandle } from './clock.js';

/** A repeating task; `stop()` ends it (a run in progress finishes, none follows). */
export interface Repeating {
  stop(): void;
}

/**
 * Runs `task` every `intervalMs` from now until `stop()`. `task` MUST NOT throw (a rejection is
 * ignored: the task reports its own failures).
 * @example
 * const r = repeatEvery(clock, 10_000, () => reporter.flush());
 * r.stop();
 */
export function repeatEvery(
  clock: Clock,
  intervalMs: number,
  task: () => Promise<void> | void,
): Repeating {
  let stopped = false;
  let timer: TimerHandle | undefined;
  const schedule = (): void => {
    if (stopped) return;
    timer = clock.setTimeout(() => {
      void Promise.resolve()
        .then(task)
        .catch(() => undefined)
        .finally(schedule);
    }, intervalMs);
    timer.unref?.();
  };
  schedule();
  return {
    stop: () => {
      stopped = true;
      if (timer !== undefined) clock.clearTimeout(timer);
    },
  };
}
