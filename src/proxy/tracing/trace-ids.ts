/**
 * @module Random trace and span ids for the proxies' spans (issue 21): hex taken from a pool of
 * random bytes refilled in blocks, so an id costs a slice of a buffer, not a call into the
 * system's random source (W3C Trace Context §3.2.2.3/§3.2.2.4: random, not all zeros).
 */
import { randomFillSync } from 'node:crypto';

/** Makes ids. */
export interface TraceIdSource {
  /** 32 lowercase hex digits, not all zero. */
  traceId(): string;
  /** 16 lowercase hex digits, not all zero. */
  spanId(): string;
}

const POOL_BYTES = 4096;
const ZERO_SPAN = '0000000000000000';
const ZERO_TRACE = `${ZERO_SPAN}${ZERO_SPAN}`;

/** Ids from crypto-random bytes (a pool of 4 KiB, refilled when used up). */
export class RandomTraceIds implements TraceIdSource {
  readonly #pool = Buffer.allocUnsafe(POOL_BYTES);
  #at = POOL_BYTES;

  #hex(bytes: number): string {
    if (this.#at + bytes > POOL_BYTES) {
      randomFillSync(this.#pool);
      this.#at = 0;
    }
    const s = this.#pool.toString('hex', this.#at, this.#at + bytes);
    this.#at += bytes;
    return s;
  }

  traceId(): string {
    let id = this.#hex(16);
    while (id === ZERO_TRACE) id = this.#hex(16);
    return id;
  }

  spanId(): string {
    let id = this.#hex(8);
    while (id === ZERO_SPAN) id = this.#hex(8);
    return id;
  }
}
