/**
 * @module Random trace and span ids for the proxies' spans (issue 21): hex taken from a pool of
 * random bytes refilled in blocks and turned into hex once per refill, so an id costs a substring,
 * not a call into the system's random source or into the hex encoder (a proxy with tracing on
 * makes ids for every request, sampled or not: W3C Trace Context §3.2.2.3/§3.2.2.4: random, not
 * all zeros).
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
  /** The pool as hex (two digits a byte); `#at` counts digits. */
  #hexPool = '';
  #at = 2 * POOL_BYTES;

  #hex(bytes: number): string {
    const digits = 2 * bytes;
    if (this.#at + digits > 2 * POOL_BYTES) {
      randomFillSync(this.#pool);
      this.#hexPool = this.#pool.toString('hex');
      this.#at = 0;
    }
    const s = this.#hexPool.slice(this.#at, this.#at + digits);
    this.#at += digits;
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
