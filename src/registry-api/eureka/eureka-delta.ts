/**
 * @module Eureka's recently-changed queue behind `GET /apps/delta`: every catalog change, heard
 * from the registry's change stream, kept `retentionMs` (Eureka's retentionTimeInMSInDeltaQueue)
 * and at most `maxEntries`, with the last known copy of each instance so a deletion can still be
 * rendered.
 */
import type { Clock } from '../../core/clock.js';
import type { InstanceDto, WatchEvent } from '../../protocol/api-types.js';
import type { CatalogReader, CatalogWatcher } from '../../registry/catalog-facade.js';
import type { EurekaAction } from './eureka-model.js';

/** One recent change: what happened to which instance, and when (epoch ms). */
export interface EurekaChange {
  readonly atMs: number;
  readonly action: EurekaAction;
  /** The instance as it was at the change (for a deletion: its last known copy). */
  readonly instance: InstanceDto;
}

export interface EurekaDeltaOptions {
  readonly registry: Pick<CatalogReader, 'instance'> & Pick<CatalogWatcher, 'subscribeStream'>;
  readonly clock: Pick<Clock, 'now'>;
  /** How long a change is kept (agent option `eureka.deltaRetentionMs`). */
  readonly retentionMs: number;
  /**
   * At most this many changes are kept (the oldest go first). A client whose delta missed some
   * sees a hash code that does not match its copy and fetches the full registry, as Eureka's do.
   */
  readonly maxEntries?: number;
  /** Told of every instance gone from the catalog (however it went), with its last known copy. */
  readonly onDeleted?: (instance: InstanceDto) => void;
}

export const DEFAULT_EUREKA_DELTA_MAX_ENTRIES = 10_000;

/**
 * The queue. It subscribes to the whole catalog's change stream once (`start`) and holds one
 * reference per instance of the catalog (the last known copy) plus the bounded queue.
 */
export class EurekaDeltaQueue {
  readonly #opts: EurekaDeltaOptions;
  readonly #max: number;
  /** Oldest first. */
  #changes: EurekaChange[] = [];
  readonly #lastKnown = new Map<string, InstanceDto>();
  #unsubscribe: (() => void) | undefined;

  constructor(options: EurekaDeltaOptions) {
    this.#opts = options;
    this.#max = options.maxEntries ?? DEFAULT_EUREKA_DELTA_MAX_ENTRIES;
  }

  /** Subscribes to the catalog's changes (idempotent). */
  start(): void {
    if (this.#unsubscribe !== undefined) return;
    this.#unsubscribe = this.#opts.registry.subscribeStream(undefined, {
      write: (frame) => {
        this.#onFrame(frame);
        // Never report backpressure: the queue is bounded by itself.
        return true;
      },
      drop: () => undefined,
    });
  }

  close(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  /** How many changes are queued now. */
  get size(): number {
    this.#prune();
    return this.#changes.length;
  }

  /**
   * The instances changed within the retention window, once each (their latest change): a
   * deletion with its last known copy, others as they are now (as they were, if gone since).
   */
  recent(): EurekaChange[] {
    this.#prune();
    const latest = new Map<string, EurekaChange>();
    for (const c of this.#changes) latest.set(c.instance.id, c);
    const out: EurekaChange[] = [];
    for (const c of latest.values()) {
      if (c.action === 'DELETED') {
        out.push(c);
        continue;
      }
      const now = this.#opts.registry.instance(c.instance.id);
      out.push(now === undefined ? c : { ...c, instance: now });
    }
    return out;
  }

  #onFrame(frame: string): void {
    const at = frame.indexOf('\ndata: ');
    if (at < 0) return;
    let event: WatchEvent;
    try {
      event = JSON.parse(frame.slice(at + 7)) as WatchEvent;
    } catch {
      return;
    }
    switch (event.type) {
      case 'snapshot':
        this.#lastKnown.clear();
        for (const i of event.instances) this.#lastKnown.set(i.id, i);
        return;
      case 'upsert': {
        const known = this.#lastKnown.has(event.instance.id);
        this.#lastKnown.set(event.instance.id, event.instance);
        this.#push(known ? 'MODIFIED' : 'ADDED', event.instance);
        return;
      }
      case 'delete': {
        const last = this.#lastKnown.get(event.id);
        this.#lastKnown.delete(event.id);
        if (last !== undefined) {
          this.#push('DELETED', last);
          this.#opts.onDeleted?.(last);
        }
        return;
      }
      default:
        return;
    }
  }

  #push(action: EurekaAction, instance: InstanceDto): void {
    this.#changes.push({ atMs: this.#opts.clock.now(), action, instance });
    if (this.#changes.length > this.#max) this.#changes.splice(0, this.#changes.length - this.#max);
    this.#prune();
  }

  #prune(): void {
    const oldest = this.#opts.clock.now() - this.#opts.retentionMs;
    let n = 0;
    while (n < this.#changes.length && (this.#changes[n]?.atMs ?? 0) < oldest) n++;
    if (n > 0) this.#changes.splice(0, n);
  }
}
