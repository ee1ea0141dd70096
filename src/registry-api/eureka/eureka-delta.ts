/**
 * @module Eureka's recently-changed queue behind `GET /apps/delta`: every catalog change, heard
 * from the registry's in-process change listener (`onCatalogChange`, not a watch stream: it is
 * not counted among the API's watchers, and nothing is serialised for it), kept `retentionMs`
 * (Eureka's retentionTimeInMSInDeltaQueue) and at most `maxEntries`; a deletion with the
 * instance's last known copy (the change carries it), so it can still be rendered.
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
  readonly registry: Pick<CatalogReader, 'instance'> & Pick<MeshCatalogReader, 'onCatalogChange'>;
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
 * One queued change. An upsert is only its id and index: the instance is read when a delta is
 * asked for (most agents never serve one), and whether it was ADDED is told then, from its
 * createIndex. A deletion keeps the instance's last known copy, which the catalog no longer has.
 */
interface Queued {
  readonly atMs: number;
  readonly id: string;
  readonly index: number;
  readonly deleted: InstanceDto | undefined;
}

/**
 * The queue. It subscribes to the whole catalog's change stream once (`start`) and holds only
 * the bounded queue: no copy of the catalog's instances (a DTO kept per instance would double
 * the catalog's memory), and no DTO made per change but for deletions.
 */
export class EurekaDeltaQueue {
  readonly #opts: EurekaDeltaOptions;
  readonly #max: number;
  /** Oldest first. */
  #changes: Queued[] = [];
  #unsubscribe: (() => void) | undefined;

  constructor(options: EurekaDeltaOptions) {
    this.#opts = options;
    this.#max = options.maxEntries ?? DEFAULT_EUREKA_DELTA_MAX_ENTRIES;
  }

  /** Subscribes to the catalog's changes (idempotent). */
  start(): void {
    if (this.#unsubscribe !== undefined) return;
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
   * deletion with its last known copy, others as they are now: ADDED when that change created
   * them, else MODIFIED. An instance gone since its upsert is left to its deletion's entry.
   */
  recent(): EurekaChange[] {
    this.#prune();
    const latest = new Map<string, Queued>();
    for (const q of this.#changes) latest.set(q.id, q);
    const out: EurekaChange[] = [];
    for (const q of latest.values()) {
      if (q.deleted !== undefined) {
        out.push({ atMs: q.atMs, action: 'DELETED', instance: q.deleted });
        continue;
      }
      const now = this.#opts.registry.instance(q.id);
      if (now === undefined) continue;
      const action = now.createIndex === q.index ? 'ADDED' : 'MODIFIED';
      out.push({ atMs: q.atMs, action, instance: now });
    }
    return out;
  }

  /** Called as the change is applied: reads already see it. */
  #onChange(change: CatalogChange): void {
    const atMs = this.#opts.clock.now();
    for (const c of change.instances) {
      const deleted = c.kind === 'delete' ? c.lastKnown?.() : undefined;
      if (c.kind === 'delete' && deleted === undefined) continue;
      this.#push({ atMs, id: c.id, index: c.index, deleted });
      if (deleted !== undefined) this.#opts.onDeleted?.(deleted);
    }
  }

  #push(q: Queued): void {
    this.#changes.push(q);
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
