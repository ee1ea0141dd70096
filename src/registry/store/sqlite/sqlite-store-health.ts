/** @module SqliteStoreHealth: the sqlite store's degraded mode (failed writes, probe, metrics). */
import { statfsSync } from 'node:fs';
import { Counter, Gauge, type Registry as PromRegistry } from 'prom-client';
import type { Logger } from '../../../core/logger.js';

/** A probe recovers only with at least this much free space in the data directory. */
const PROBE_MIN_FREE_BYTES = 1024 * 1024;

/** Options of {@link SqliteStoreHealth}. */
export interface SqliteStoreHealthOptions {
  /** Path of `catalog.db`, for the logs. */
  readonly file: string;
  /** Directory whose free space a probe checks first. */
  readonly dataDir: string;
  readonly log: Logger;
  /** Where the `meshwork_store_*` metrics are registered. */
  readonly metrics: PromRegistry;
  readonly probeIntervalMs: number;
  /**
   * The open database's trial write, or undefined when none is open (the probe then stops).
   * Called from the probe timer; the returned function MUST throw when the write fails.
   */
  readonly trialWrite: () => (() => void) | undefined;
  /**
   * Called after a trial write succeeded. It MUST end the episode by calling
   * {@link SqliteStoreHealth.writeSucceeded} (the store also records the durable index).
   */
  readonly probeSucceeded: () => void;
}

/**
 * Whether writes to `catalog.db` succeed, and the `meshwork_store_*` metrics.
 *
 * A write that SQLite refuses (disk full, I/O error) makes the store degraded: logged once per
 * episode, `meshwork_store_degraded` 1, and a trial write every `probeIntervalMs` (with at least
 * 1 MiB free in the data directory) until one succeeds; any successful commit also recovers.
 *
 * @example
 * const health = new SqliteStoreHealth({
 *   file, dataDir, log, metrics, probeIntervalMs,
 *   trialWrite: () => opened?.probe,
 *   probeSucceeded: () => health.writeSucceeded(),
 * });
 * try {
 *   write(changes, index);
 *   health.writeSucceeded();
 * } catch (err) {
 *   health.writeFailed(err, batch.length);
 * }
 */
export class SqliteStoreHealth {
  readonly #file: string;
  readonly #dataDir: string;
  readonly #log: Logger;
  readonly #probeIntervalMs: number;
  readonly #trialWrite: SqliteStoreHealthOptions['trialWrite'];
  readonly #probeSucceeded: SqliteStoreHealthOptions['probeSucceeded'];
  readonly #writeErrors: Counter;
  readonly #degradedGauge: Gauge;
  readonly #dataLossAccepted: Gauge;
  /** Why writes fail (disk full, I/O error), while they do. */
  #degraded: string | undefined;
  #probeTimer: NodeJS.Timeout | undefined;

  constructor(options: SqliteStoreHealthOptions) {
    this.#file = options.file;
    this.#dataDir = options.dataDir;
    this.#log = options.log;
    this.#probeIntervalMs = options.probeIntervalMs;
    this.#trialWrite = options.trialWrite;
    this.#probeSucceeded = options.probeSucceeded;
    const registers = [options.metrics];
    this.#writeErrors = new Counter({
      name: 'meshwork_store_write_errors_total',
      help: 'Catalog write transactions that failed (disk full, I/O error).',
      registers,
    });
    this.#degradedGauge = new Gauge({
      name: 'meshwork_store_degraded',
      help: '1 while writes to catalog.db fail (the agent is not ready), else 0.',
      registers,
    });
    this.#dataLossAccepted = new Gauge({
      name: 'meshwork_store_data_loss_accepted',
      help: '1 when this start accepted a store behind catalog.index (--accept-data-loss).',
      registers,
    });
  }

  /** Why writes fail (disk full, I/O error) while the store is degraded, else undefined. */
  get degraded(): string | undefined {
    return this.#degraded;
  }

  /** Counts a failed write that does not degrade the store (the marker's). */
  countWriteError(): void {
    this.#writeErrors.inc();
  }

  /** Sets `meshwork_store_data_loss_accepted`: this start went on without lost data. */
  dataLossAccepted(): void {
    this.#dataLossAccepted.set(1);
  }

  /**
   * A write SQLite refused (disk full, I/O error) makes the store degraded: logged once per
   * episode, not once per failed commit. Any other failure is a bug and is logged each time.
   */
  writeFailed(cause: unknown, commits: number): void {
    this.#writeErrors.inc();
    const code = (cause as { code?: unknown } | null)?.code;
    if (typeof code !== 'string' || !code.startsWith('SQLITE_')) {
      this.#log.error({ file: this.#file, err: cause, commits }, 'catalog write failed');
      return;
    }
    if (this.#degraded !== undefined) {
      this.#log.debug({ file: this.#file, code, commits }, 'catalog write failed');
      return;
    }
    this.#degraded =
      code === 'SQLITE_FULL'
        ? `disk full (${code})`
        : code.startsWith('SQLITE_IOERR')
          ? `I/O error (${code})`
          : code;
    this.#degradedGauge.set(1);
    this.#log.error(
      { file: this.#file, code, reason: (cause as Error).message },
      'catalog writes failing: not ready, refusing writes until one succeeds',
    );
    this.#scheduleProbe();
  }

  /** After a write SQLite returned from: a degraded store recovers. */
  writeSucceeded(): void {
    if (this.#degraded === undefined) return;
    this.#log.info(
      { file: this.#file, was: this.#degraded },
      'catalog writes succeed again: ready',
    );
    this.#degraded = undefined;
    this.#degradedGauge.set(0);
    clearTimeout(this.#probeTimer);
  }

  /** Stops the probe (at close). */
  stop(): void {
    clearTimeout(this.#probeTimer);
  }

  /** While degraded, a trial write once per interval; it needs some free space to count. */
  #scheduleProbe(): void {
    this.#probeTimer = setTimeout(() => {
      const trialWrite = this.#trialWrite();
      if (this.#degraded === undefined || trialWrite === undefined) return;
      try {
        const fs = statfsSync(this.#dataDir);
        if (fs.bavail * fs.bsize < PROBE_MIN_FREE_BYTES) throw new Error('no free space');
        trialWrite();
      } catch {
        this.#scheduleProbe();
        return;
      }
      this.#probeSucceeded();
    }, this.#probeIntervalMs);
    this.#probeTimer.unref();
  }
}
