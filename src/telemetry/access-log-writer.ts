/**
 * @module The access log's writer: pino's asynchronous destination (sonic-boom: a write queues
 * the line; libuv writes it on its thread pool, batching what came in meanwhile), so a request
 * never waits on the disk or a full pipe. `close()` writes out what is queued. The line is the
 * entry's JSON as is: pino's logger would add a level (and, told not to, writes `{,`), and its
 * per-key serializer is no faster than JSON.stringify for a flat object of strings and numbers.
 */
import { destination } from 'pino';

/** Where access logs go: `stdout`, or a file path (appended to; its directory made). */
export type AccessLogTarget = 'stdout' | (string & {});

export interface AccessLogWriter {
  /** Queues one JSON line; MUST NOT block or throw. */
  write(entry: object): void;
  /** Writes out what is queued and closes the file (never stdout); resolves within `timeoutMs`. */
  close(timeoutMs?: number): Promise<void>;
}

/**
 * A writer of JSON lines to `target`. Lines hold the entry's fields only (no pino level, time,
 * pid or hostname: the entry has its own `start_time`).
 * @example
 * const w = createAccessLogWriter('/var/log/meshwork/access.log');
 * w.write({ start_time: '...', response_code: 200 });
 * await w.close();
 */
export function createAccessLogWriter(target: AccessLogTarget): AccessLogWriter {
  const dest = destination({
    dest: target === 'stdout' ? 1 : target,
    sync: false,
    mkdir: target !== 'stdout',
    // 0: every write goes at once (batched while one is in flight); a larger minLength would
    // hold lines of a quiet proxy until the buffer fills.
    minLength: 0,
  });
  let closed: Promise<void> | undefined;
  return {
    write: (entry) => {
      // A request finishing after close() (a drain deadline passed) is not logged.
      if (closed === undefined) dest.write(`${JSON.stringify(entry)}\n`);
    },
    close: (timeoutMs = 2_000) =>
      (closed ??= new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        timer.unref();
        const done = (): void => {
          clearTimeout(timer);
          resolve();
        };
        dest.once('close', done);
        dest.once('error', done);
        dest.end();
      })),
  };
}
