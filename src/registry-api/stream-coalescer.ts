/**
 * @module StreamCoalescer: at most one socket write per interval for a watch stream that asked
 * for it (`GET /api/v1/watch?interval=250ms`). A frame that comes after a quiet interval is
 * written at once (no added latency for a lone change); frames that come within the interval of
 * the last write are held and written together when it ends. Each write costs the agent a
 * syscall per stream: a dashboard that follows 100 changes a second needs four writes, not 100.
 */
import type { Clock, TimerHandle } from '../core/clock.js';

/** Where the frames go: a socket's write, and how many bytes it holds unsent. */
export interface StreamSink {
  write(chunk: string): void;
  /** Bytes written but not yet taken by the peer (`res.writableLength`). */
  buffered(): number;
}

/** What the stream fan-out calls per frame; `write` answers false when the peer is too slow. */
export interface CoalescedStream {
  /** Takes a frame; false when the sink plus the held frames exceed `maxBufferedBytes`. */
  write(frame: string): boolean;
  /** Writes what is held now (before a final frame, or the stream's end). */
  flush(): void;
  /** Drops the timer; held frames are discarded (the stream is gone). */
  close(): void;
}

export function coalesceStream(
  sink: StreamSink,
  intervalMs: number,
  maxBufferedBytes: number,
  clock: Clock,
): CoalescedStream {
  let held: string[] = [];
  let heldBytes = 0;
  /** When the last write went out (monotonic ms); -Infinity before the first. */
  let lastWriteMs = Number.NEGATIVE_INFINITY;
  let timer: TimerHandle | undefined;

  const flush = (): void => {
    if (timer !== undefined) {
      clock.clearTimeout(timer);
      timer = undefined;
    }
    if (held.length === 0) return;
    const chunk = held.length === 1 ? (held[0] as string) : held.join('');
    held = [];
    heldBytes = 0;
    lastWriteMs = clock.monotonicMs();
    sink.write(chunk);
  };

  return {
    write(frame) {
      if (sink.buffered() + heldBytes > maxBufferedBytes) return false;
      held.push(frame);
      heldBytes += frame.length;
      if (timer !== undefined) return true;
      const wait = lastWriteMs + intervalMs - clock.monotonicMs();
      if (wait <= 0) flush();
      else timer = clock.setTimeout(flush, wait);
      return true;
    },
    flush,
    close() {
      if (timer !== undefined) clock.clearTimeout(timer);
      timer = undefined;
      held = [];
      heldBytes = 0;
    },
  };
}
