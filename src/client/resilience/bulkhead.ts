/** @module Bulkhead: a cap on concurrent calls with a bounded FIFO queue, so one slow dependency cannot take every socket and promise. */
import { z } from 'zod';
import { errors } from '../../core/errors.js';
import { resolveOptions } from './resolve-options.js';

export interface BulkheadOptions {
  /** Calls allowed to run at once. */
  readonly maxConcurrent: number;
  /** Calls allowed to wait for a slot; beyond that a call is rejected at once. */
  readonly maxQueue: number;
}

export const bulkheadOptionsSchema = z
  .object({
    maxConcurrent: z.number().int().min(1).max(1_000_000),
    maxQueue: z.number().int().min(0).max(1_000_000),
  })
  .strict();

export const DEFAULT_BULKHEAD_OPTIONS: Readonly<BulkheadOptions> = Object.freeze({
  maxConcurrent: 100,
  maxQueue: 0,
});

/**
 * Validates a bulkhead's options (`maxQueue` 0 when left out) without building one: one
 * CONFIG_INVALID MeshError lists every problem. The constructor runs the same check.
 */
export function resolveBulkheadOptions(
  maxConcurrent: number,
  maxQueue = 0,
): Readonly<BulkheadOptions> {
  return resolveOptions('bulkhead', bulkheadOptionsSchema, DEFAULT_BULKHEAD_OPTIONS, {
    maxConcurrent,
    maxQueue,
  });
}

/** Gives a slot back. Calling it more than once has no further effect. */
export type BulkheadRelease = () => void;

/** A queued acquire: called with its slot. */
type Waiter = (release: BulkheadRelease) => void;

/**
 * Caps concurrency. Decision-style for proxies that hold a slot across a streamed body
 * (`tryAcquire()` / `acquire()` return a release), or `execute(fn)`. A freed slot goes straight
 * to the oldest waiter, so a newcomer can never overtake the queue; a waiter whose signal aborts
 * leaves the queue at once.
 * @example
 * const bulkhead = new Bulkhead(10, 20);
 * const body = await bulkhead.execute(() => fetchUpstream());
 */
export class Bulkhead {
  readonly options: Readonly<BulkheadOptions>;
  readonly #queue: Waiter[] = [];
  #active = 0;

  constructor(maxConcurrent: number, maxQueue = 0) {
    this.options = resolveBulkheadOptions(maxConcurrent, maxQueue);
  }

  /** Calls running now. */
  get active(): number {
    return this.#active;
  }

  /** Calls waiting for a slot now. */
  get queued(): number {
    return this.#queue.length;
  }

  /** A slot now, or undefined when every slot is taken (the queue is not used). */
  tryAcquire(): BulkheadRelease | undefined {
    if (this.#active >= this.options.maxConcurrent) return undefined;
    this.#active++;
    return this.#release();
  }

  /**
   * A slot now, or after waiting in the queue.
   * @throws MeshError CLIENT_BULKHEAD_FULL when the queue is full too; the signal's reason when
   * it aborts while waiting.
   */
  acquire(signal?: AbortSignal): Promise<BulkheadRelease> {
    if (signal?.aborted === true) return Promise.reject(signal.reason);
    const now = this.tryAcquire();
    if (now !== undefined) return Promise.resolve(now);
    if (this.#queue.length >= this.options.maxQueue)
      return Promise.reject(errors.bulkheadFull(this.options.maxConcurrent, this.options.maxQueue));
    return new Promise<BulkheadRelease>((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.#queue.indexOf(waiter);
        if (i >= 0) this.#queue.splice(i, 1);
        reject(signal?.reason);
      };
      const waiter: Waiter = (release) => {
        signal?.removeEventListener('abort', onAbort);
        resolve(release);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#queue.push(waiter);
    });
  }

  /** Runs `fn` in a slot; the slot is released when `fn` settles. */
  async execute<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const release = await this.acquire(signal);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  #release(): BulkheadRelease {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#queue.shift();
      // The slot passes to the next waiter without ever being free.
      if (next !== undefined) next(this.#release());
      else this.#active--;
    };
  }
}
