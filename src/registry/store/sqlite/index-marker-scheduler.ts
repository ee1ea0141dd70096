/** @module IndexMarkerScheduler: when the sqlite store rewrites `catalog.index`. */
import type { Logger } from '../../../core/logger.js';
import type { IndexMarker } from './index-marker.js';
import type { SqliteStoreHealth } from './sqlite-store-health.js';

/** Options of {@link IndexMarkerScheduler}. */
export interface IndexMarkerSchedulerOptions {
  readonly marker: IndexMarker;
  /** The marker is rewritten at most this often while commits arrive. */
  readonly intervalMs: number;
  readonly log: Logger;
  /** Counts failed marker writes; while it is degraded, they are not logged. */
  readonly health: SqliteStoreHealth;
  /** True once the store is closed: nothing more is scheduled. MUST NOT throw. */
  readonly isClosed: () => boolean;
}

/**
 * Tracks the durable index (the last commit SQLite returned from) and the marker's, and
 * rewrites the {@link IndexMarker} with the durable one at most once per interval and never two
 * at a time; a marker that lags is still a correct lower bound. A failed rewrite keeps the old
 * marker, counted in `meshwork_store_write_errors_total` and logged once until one succeeds.
 *
 * @example
 * const scheduler = new IndexMarkerScheduler({ marker, intervalMs: 1_000, log, health, isClosed });
 * scheduler.durable(42); // after the commit at index 42 returned from SQLite
 */
export class IndexMarkerScheduler {
  readonly #marker: IndexMarker;
  readonly #intervalMs: number;
  readonly #log: Logger;
  readonly #health: SqliteStoreHealth;
  readonly #isClosed: () => boolean;
  /** The index of the last commit SQLite returned from (durable), and the marker's. */
  #durableIndex = 0;
  #markerIndex = 0;
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> | undefined;
  #lastWriteMs = -Infinity;
  #failing = false;

  constructor(options: IndexMarkerSchedulerOptions) {
    this.#marker = options.marker;
    this.#intervalMs = options.intervalMs;
    this.#log = options.log;
    this.#health = options.health;
    this.#isClosed = options.isClosed;
  }

  /** The index of the last commit SQLite returned from. */
  get durableIndex(): number {
    return this.#durableIndex;
  }

  /**
   * At open: `index` is the store's, durable; `markerIndex` the marker's, or undefined when the
   * data directory has none (new, pre-marker, or unreadable and accepted): one is written now.
   */
  async opened(index: number, markerIndex: number | undefined): Promise<void> {
    this.#durableIndex = index;
    if (markerIndex === undefined) await this.#write();
    else this.#markerIndex = markerIndex;
  }

  /** After a commit SQLite returned from: `index` is durable; the marker follows later. */
  durable(index: number): void {
    this.#durableIndex = index;
    this.#schedule();
  }

  /** Cancels a scheduled rewrite (at close, before {@link IndexMarkerScheduler.flush}). */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Waits for a rewrite under way, then writes the durable index if the marker lags. */
  async flush(): Promise<void> {
    await this.#writing;
    if (this.#durableIndex > this.#markerIndex) await this.#write();
  }

  #schedule(): void {
    const busy = this.#timer !== undefined || this.#writing !== undefined;
    if (busy || this.#isClosed() || this.#durableIndex <= this.#markerIndex) return;
    const waitMs = Math.max(0, this.#lastWriteMs + this.#intervalMs - Date.now());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#lastWriteMs = Date.now();
      this.#writing = this.#write().finally(() => {
        this.#writing = undefined;
        if (this.#durableIndex > this.#markerIndex) this.#schedule();
      });
    }, waitMs);
    this.#timer.unref();
  }

  /** Writes the durable index to the marker; a failure keeps the old one (still a lower bound). */
  async #write(): Promise<void> {
    const index = this.#durableIndex;
    try {
      await this.#marker.write(index);
      this.#markerIndex = index;
      this.#failing = false;
    } catch (err) {
      this.#health.countWriteError();
      if (this.#failing || this.#health.degraded !== undefined) return;
      this.#failing = true;
      this.#log.warn(
        { file: this.#marker.file, index, err: (err as Error).message },
        'cannot update the durable index marker; keeping the previous one',
      );
    }
  }
}
