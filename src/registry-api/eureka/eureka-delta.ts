/**
 * @module Eureka's recently-changed queue behind `GET /apps/delta`: every catalog change, heard
 * from the registry's in-process change listener (`onCatalogChange`, not a watch stream: it is
 * not counted among the API's watchers, and nothing is serialised for it), kept `retentionMs` (Eureka's retentionTimeInMSInDeltaQueue)
 * and at most `maxEntries`, with the last known copy of each instance so a deletion can still be
 * rendered.
 */
import type { Clock } from '../../core/clock.js';
import type { InstanceDto } from '../../protocol/api-types.js';
import type { CatalogReader } from '../../registry/catalog-facade.js';
import type { CatalogChange, MeshCatalogReader } from '../../registry/mesh-catalog.js';
import type { EurekaAction } from './eureka-model.js';

/** One recent change: what happened to which instance, and when (epoch ms). */
export interface EurekaChange {
  readonly atMs: number;
  readonly action: EurekaAction;
  /** The instance as it was at the change (for a deletion: its last known copy). */
  readonly instance: InstanceDto;
}

export interface EurekaDeltaOptions {
  readonly registry: Pick<CatalogReader, 'instance' | 'allInstances'> &
    Pick<MeshCatalogReader, 'onCatalogChange'>;
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
    for (const i of this.#opts.registry.allInstances()) this.#lastKnown.set(i.id, i);
    this.#unsubscribe = this.#opts.registry.onCatalogChange((c) => this.#onChange(c));
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

  /** Called as the change is applied: reads already see it. */
  #onChange(change: CatalogChange): void {
    for (const c of change.instances) {
      if (c.kind === 'delete') {
        const last = this.#lastKnown.get(c.id);
        this.#lastKnown.delete(c.id);
        if (last !== undefined) {
          this.#push('DELETED', last);
          this.#opts.onDeleted?.(last);
        }
        continue;
      }
      const now = this.#opts.registry.instance(c.id);
      if (now === undefined) continue;
      const known = this.#lastKnown.has(c.id);
      this.#lastKnown.set(c.id, now);
      this.#push(known ? 'MODIFIED' : 'ADDED', now);
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
