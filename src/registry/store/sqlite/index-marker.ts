/** @module IndexMarker: `<dataDir>/catalog.index`, the last catalog index known to be durable. */
import { open, rename, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { errors } from '../../../core/errors.js';

/**
 * A file beside the database holding one catalog index that is known durable: it is written
 * only after the commit it names has returned from SQLite (synchronous=FULL: on disk). At open,
 * a store whose index is below it lost commits (a damaged WAL, a truncated or replaced
 * `catalog.db`) and is refused instead of started empty or behind.
 *
 * A marker that lags is still correct (a lower bound), so it is written off the hot path, at
 * most once per interval, by the store. Writes are atomic: temp file, fsync, rename, fsync of
 * the directory; after a crash the file holds the old or the new index, never a torn one.
 *
 * @example
 * const marker = new IndexMarker('/var/lib/meshwork/catalog.index');
 * const durable = marker.read(); // undefined for a new data directory
 * await marker.write(42);
 */
export class IndexMarker {
  /** Path of the marker file. */
  readonly file: string;
  readonly #tmp: string;

  constructor(file: string) {
    this.file = file;
    this.#tmp = `${file}.tmp`;
  }

  /**
   * The index in the file, or undefined when there is no file. Throws
   * MESHWORK_ERR_STORE_CORRUPT when the file exists but does not hold an index.
   */
  read(): number | undefined {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw errors.storeCorrupt(`${this.file} cannot be read`, err);
    }
    const index = /^[1-9]\d{0,15}\n?$/.test(text) ? Number(text.trim()) : NaN;
    if (!Number.isSafeInteger(index)) {
      throw errors.storeCorrupt(`${this.file} does not hold a catalog index`);
    }
    return index;
  }

  /** Replaces the file's index atomically and durably. Rejects with the fs error. */
  async write(index: number): Promise<void> {
    try {
      const file = await open(this.#tmp, 'w');
      try {
        await file.writeFile(`${index}\n`);
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(this.#tmp, this.file);
    } catch (err) {
      await rm(this.#tmp, { force: true });
      throw err;
    }
    // The rename is durable only once the directory entry is.
    const dir = await open(dirname(this.file), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}
