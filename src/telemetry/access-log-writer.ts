/**
 * @module The access log's writer: pino's asynchronous destination (sonic-boom: a write queues
 * the line; libuv writes the buffer on its thread pool every 4 KiB or every second), so a
 * request never waits on the disk or a full pipe. `close()` writes out what is queued. The line is the
 * entry's JSON as is: pino's logger would add a level (and, told not to, writes `{,`), and its
 * per-key serializer is no faster than JSON.stringify for a flat object of strings and numbers.
 */
import { destination } from 'pino';
import { Counter, type Registry } from 'prom-client';

/** The longest a line waits in the writer's buffer, ms. */
export const ACCESS_LOG_FLUSH_MS = 1000;

/** The most the writer holds unwritten, bytes; lines past it are dropped (counted). */
export const ACCESS_LOG_MAX_BUFFER_BYTES = 16 * 1024 * 1024;

/** Where access logs go: `stdout`, or a file path (appended to; its directory made). */
export type AccessLogTarget = 'stdout' | (string & {});

export interface AccessLogWriter {
  /** Queues one JSON line; MUST NOT block or throw. */
  write(entry: object): void;
  /** Lines dropped: the destination fell `maxBufferBytes` behind, or failed. */
  readonly dropped: number;
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
export function createAccessLogWriter(
  target: AccessLogTarget,
  maxBufferBytes = ACCESS_LOG_MAX_BUFFER_BYTES,
): AccessLogWriter {
  const dest = destination({
    dest: target === 'stdout' ? 1 : target,
    sync: false,
    mkdir: target !== 'stdout',
    // Lines are held until 4 KiB are queued or a second has passed (Envoy also flushes its
    // access logs every second): one write per ~15 lines instead of one per request (a write
    // costs the main thread a thread-pool round trip, more than the line itself).
    minLength: 4096,
    periodicFlush: ACCESS_LOG_FLUSH_MS,
    // A destination that stops taking lines (a full disk, a reader that went away) must not
    // grow the proxy's memory without bound: past this, lines are dropped and counted.
    maxLength: maxBufferBytes,
  });
  let dropped = 0;
  dest.on('drop', () => dropped++);
  // An access log never takes the proxy down: after a write error (EPIPE: stdout's reader went
  // away; a disk error) lines are dropped and counted.
  let failed = false;
  dest.on('error', () => {
    failed = true;
  });
  let closed: Promise<void> | undefined;
  return {
    get dropped() {
      return dropped;
    },
    write: (entry) => {
      // A request finishing after close() (a drain deadline passed) is not logged.
      if (closed !== undefined) return;
      if (failed) dropped++;
      else dest.write(`${JSON.stringify(entry)}\n`);
    },
    close: (timeoutMs = 2_000) =>
      (closed ??= new Promise<void>((resolve) => {
        // Not unref'd: a stop sequence awaiting this must end even when nothing else runs.
        const timer = setTimeout(resolve, timeoutMs);
        const done = (): void => {
          clearTimeout(timer);
          resolve();
        };
        dest.once('close', done);
        dest.once('error', done);
        // A destination that failed writes nothing more and may never say it closed.
        if (failed) {
          dest.destroy();
          done();
        } else dest.end();
      })),
  };
}

/** `meshwork_<component>_access_log_dropped_total`, read from `writer` at scrape time. */
export function registerAccessLogMetrics(
  registry: Registry,
  component: string,
  writer: AccessLogWriter,
): void {
  new Counter({
    name: `meshwork_${component}_access_log_dropped_total`,
    help: 'Access log lines dropped: the destination fell more than 16 MiB behind, or failed (EPIPE, disk errors).',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(writer.dropped);
    },
  });
}
