/**
 * @module The access log's writer: lines are gathered into batches and a batch goes out as one
 * write, once 64 KiB are gathered or a second has passed (Envoy also flushes its access logs
 * every second), so a request never waits on the disk or a full pipe and a write costs ~100
 * lines one syscall. A file is written through `fs.createWriteStream` (libuv's thread pool);
 * stdout through `process.stdout`. `close()` writes out what is gathered. A line is the entry's
 * JSON as is.
 *
 * Measured before this writer (docs/benchmarks.md, "Sidecar pair with observability on"): pino's
 * asynchronous destination (sonic-boom) with 4 KiB writes cost 12-20 µs of CPU per line all
 * told, against ~4 µs with 64 KiB batches written as one buffer (the JSON itself is ~1.7 µs):
 * the access log was most of what observability cost a sidecar.
 */
import { mkdirSync, createWriteStream } from 'node:fs';
import { dirname } from 'node:path';
import type { Writable } from 'node:stream';
import { Counter, type Registry } from 'prom-client';

/** The longest a line waits before it is written, ms. */
export const ACCESS_LOG_FLUSH_MS = 1000;

/** A batch goes out as soon as it holds this much (bytes of JSON lines). */
export const ACCESS_LOG_BATCH_BYTES = 64 * 1024;

/** A batch's buffer: a batch, and room for one more line of up to 8 K characters (UTF-8). */
const BATCH_CAPACITY = ACCESS_LOG_BATCH_BYTES + 24 * 1024;

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

/** The stream lines go to: the file (its directory made; opened in append mode) or stdout. */
function openTarget(target: AccessLogTarget): Writable {
  if (target === 'stdout') return process.stdout;
  mkdirSync(dirname(target), { recursive: true });
  return createWriteStream(target, { flags: 'a' });
}

/**
 * A writer of JSON lines to `target`. Lines hold the entry's fields only (no level, time, pid or
 * hostname: the entry has its own `start_time`).
 * @example
 * const w = createAccessLogWriter('/var/log/meshwork/access.log');
 * w.write({ start_time: '...', response_code: 200 });
 * await w.close();
 */
export function createAccessLogWriter(
  target: AccessLogTarget,
  maxBufferBytes = ACCESS_LOG_MAX_BUFFER_BYTES,
): AccessLogWriter {
  const out = openTarget(target);
  // The batch is bytes from the start: a line is copied out of the JS heap as it comes, so the
  // ~100 lines of a batch do not outlive young-generation collections and get promoted (as an
  // array of line strings did, for up to a second each).
  let batch = Buffer.allocUnsafe(BATCH_CAPACITY);
  let batchBytes = 0;
  let batchLines = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let dropped = 0;
  // An access log never takes the proxy down: after a write error (EPIPE: the reader went away;
  // a disk error) lines are dropped and counted.
  let failed = false;
  const onError = (): void => {
    failed = true;
  };
  out.on('error', onError);

  /** Hands `bytes` (`lines` lines) to the stream, or drops them (see below). */
  const send = (bytes: Buffer, lines: number): void => {
    // A destination that stops taking lines (a full disk, a reader that went away) must not
    // grow the proxy's memory without bound: past maxBufferBytes, lines are dropped and counted.
    if (failed || out.destroyed || out.writableLength + bytes.length > maxBufferBytes) {
      dropped += lines;
      return;
    }
    out.write(bytes);
  };

  const flush = (): void => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (batchLines === 0) return;
    const bytes = batch.subarray(0, batchBytes);
    const lines = batchLines;
    batch = Buffer.allocUnsafe(BATCH_CAPACITY);
    batchBytes = 0;
    batchLines = 0;
    send(bytes, lines);
  };

  let closed: Promise<void> | undefined;
  return {
    get dropped() {
      return dropped;
    },
    write: (entry) => {
      // A request finishing after close() (a drain deadline passed) is not logged.
      if (closed !== undefined) return;
      if (failed) {
        dropped++;
        return;
      }
      const line = `${JSON.stringify(entry)}\n`;
      // UTF-8 takes at most 3 bytes per UTF-16 unit: a line that may not fit goes after the batch.
      const most = 3 * line.length;
      if (batchBytes + most > BATCH_CAPACITY) {
        flush();
        if (most > BATCH_CAPACITY) {
          send(Buffer.from(line), 1);
          return;
        }
      }
      batchBytes += batch.write(line, batchBytes);
      batchLines++;
      if (batchBytes >= ACCESS_LOG_BATCH_BYTES) flush();
      else if (timer === undefined) {
        timer = setTimeout(flush, ACCESS_LOG_FLUSH_MS);
        timer.unref();
      }
    },
    close: (timeoutMs = 2_000) =>
      (closed ??= new Promise<void>((resolve) => {
        flush();
        // Not unref'd: a stop sequence awaiting this must end even when nothing else runs.
        const deadline = setTimeout(done, timeoutMs);
        function done(): void {
          clearTimeout(deadline);
          out.off('error', onError);
          // A write left blocked (a pipe nobody reads) must not keep the file open past close.
          if (out !== process.stdout && !out.destroyed) out.destroy();
          resolve();
        }
        if (failed || out.destroyed) done();
        else if (out === process.stdout) {
          // stdout stays open for the process's own logs: wait until what was written left.
          if (out.writableLength === 0) done();
          else out.once('drain', done);
        } else {
          out.once('close', done);
          out.once('error', done);
          out.end();
        }
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
