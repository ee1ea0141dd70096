/**
 * @module ChangePublisher: tells watchers of the changes the catalog view applied (streams and
 * blocking queries, on the next turn, in index order; `onCatalogChange` listeners at once) and
 * runs their waits and subscriptions.
 */
import type { Clock } from '../../core/clock.js';
import { silentLogger, type Logger } from '../../core/logger.js';
import type { CatalogChange } from '../mesh-catalog.js';
import type { ApplyOutcome, CatalogView } from '../catalog-view.js';
import {
  serviceTopic,
  type StreamSink,
  type Topic,
  type WaitCancellation,
  type WatchersNotified,
} from '../catalog-facade.js';
import { sseFrame, StreamFanout } from './stream-fanout.js';
import { WatchHub } from './watch-hub.js';

/** Watchers right now, and streams dropped since start (the agent's metrics). */
export interface WatcherCounts {
  /** Blocking queries waiting. */
  readonly blocking: number;
  /** Open streams. */
  readonly streams: number;
  /** Streams dropped for being too slow, since start. */
  readonly dropped: number;
}

/** What a {@link ChangePublisher} reads and how long its waits may be. */
export interface ChangePublisherOptions {
  readonly view: CatalogView;
  readonly clock: Clock;
  readonly random: () => number;
  /** Blocking queries wait at most this long. */
  readonly maxWaitMs: number;
  /** Where a throwing change listener is logged. */
  readonly logger?: Logger;
}

/** A listener of {@link ChangePublisher.onCatalogChange}. */
export type CatalogChangeListener = (change: CatalogChange) => void;

/**
 * Publishes the view's applied changes to streams ({@link StreamFanout}) and blocking queries
 * ({@link WatchHub}). The registry hands it each {@link ApplyOutcome} as the view applies it.
 */
export class ChangePublisher {
  readonly #hub: WatchHub;
  readonly #fanout = new StreamFanout();
  readonly #view: CatalogView;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #maxWaitMs: number;
  readonly #log: Logger;
  readonly #changeListeners = new Set<CatalogChangeListener>();
  #draining = false;
  /** Applied changes not yet told to watchers (published on the next turn). */
  #unpublished: ApplyOutcome[] = [];
  /** The highest index published to watchers, and who waits for one (see `notified`). */
  #publishedIndex = 0;
  readonly #publishWaiters: {
    index: number;
    service: string;
    resolve: (n: WatchersNotified) => void;
  }[] = [];

  constructor(options: ChangePublisherOptions) {
    this.#view = options.view;
    this.#clock = options.clock;
    this.#random = options.random;
    this.#maxWaitMs = options.maxWaitMs;
    this.#log = options.logger ?? silentLogger;
    this.#hub = new WatchHub(this.#clock);
  }

  /** Watchers right now, and streams dropped since start. */
  watchers(): WatcherCounts {
    return {
      blocking: this.#hub.waiting,
      streams: this.#fanout.streams,
      dropped: this.#fanout.dropped,
    };
  }

  /**
   * First step of a shutdown: blocking queries answer now with what they have, streams end, and
   * no new wait starts.
   */
  drain(): void {
    this.#draining = true;
    this.#hub.wakeAll();
    this.#fanout.closeAll();
  }

  /**
   * Calls `listener` synchronously for each outcome the view applies that touched services or
   * mesh resources (a KV-only change is not told), in index order. A listener that throws is
   * logged and kept. Answers the unsubscribe function.
   */
  onCatalogChange(listener: CatalogChangeListener): () => void {
    this.#changeListeners.add(listener);
    return () => this.#changeListeners.delete(listener);
  }

  /**
   * Queues an outcome the view applied; change listeners hear of it now, watchers on the next
   * turn. Call it once per applied batch of events (one index), right after the view applied it.
   */
  enqueue(outcome: ApplyOutcome): void {
    if (this.#changeListeners.size > 0) this.#tellChangeListeners(outcome);
    // Watchers hear of the change on the next turn, after the writer's answer has gone out: a
    // write need not wait for a thousand sockets to be written.
    this.#unpublished.push(outcome);
    if (this.#unpublished.length === 1) setImmediate(this.#publishPending);
  }

  /**
   * A blocking query: resolves when `currentIndex()` passes `minIndex`, or after `waitMs` plus a
   * small jitter (wait/16, as Consul does, so many watchers do not return in lockstep).
   */
  async waitForChange(
    topic: Topic,
    minIndex: number,
    waitMs: number,
    currentIndex: () => number,
    cancellation?: WaitCancellation,
  ): Promise<void> {
    if (minIndex <= 0 || currentIndex() > minIndex || this.#draining) return;
    const capped = Math.min(Math.max(waitMs, 0), this.#maxWaitMs);
    const total = capped + Math.floor(this.#random() * (capped / 16));
    const deadline = this.#clock.monotonicMs() + total;
    while (currentIndex() <= minIndex && cancellation?.cancelled !== true && !this.#draining) {
      const remaining = deadline - this.#clock.monotonicMs();
      if (remaining <= 0) return;
      await this.#hub.next(topic, remaining, cancellation);
    }
  }

  /** Subscribes a stream sink to a service (or the whole catalog); sends the snapshot first. */
  subscribeStream(service: string | undefined, sink: StreamSink): () => void {
    // Changes already in the view must reach the existing streams before this one's snapshot,
    // or the new stream would get them twice (in the snapshot and as deltas).
    this.#publishPending();
    const unsubscribe = this.#fanout.subscribe(service, sink);
    const instances =
      service === undefined ? this.#view.allInstances() : this.#view.serviceInstances(service);
    const index =
      service === undefined ? this.#view.catalogIndex : this.#view.serviceIndex(service);
    // The snapshot is written synchronously after subscribing, so no delta can slip between.
    sink.write(sseFrame({ type: 'snapshot', index, instances }));
    return unsubscribe;
  }

  /**
   * Resolves once the change at `index` has been sent to the watchers of `service`, with how many
   * were sent it: its streams (per-service and catalog-wide) and the blocking queries woken. A
   * draining instance uses it to know its consumers have heard of its deregistration.
   */
  notified(service: string, index: number): Promise<WatchersNotified> {
    if (index <= this.#publishedIndex && this.#unpublished.length === 0)
      return Promise.resolve(this.#watchersOf(service));
    return new Promise((resolve) => this.#publishWaiters.push({ index, service, resolve }));
  }

  /** The watchers a change of `service` is sent to: its streams and blocking queries. */
  #watchersOf(service: string): WatchersNotified {
    return {
      streams: this.#fanout.streamsOf(service),
      blockingQueries: this.#hub.waitingOn(serviceTopic(service)) + this.#hub.waitingOn('catalog'),
    };
  }

  #tellChangeListeners(outcome: ApplyOutcome): void {
    if (outcome.changes.length === 0 && outcome.mesh.length === 0) return;
    const services = [...new Set(outcome.changes.map((c) => c.service))].sort();
    const change: CatalogChange = {
      index: this.#view.index,
      services,
      instances: outcome.changes,
      meshResources: [...new Set(outcome.mesh)],
    };
    for (const listener of [...this.#changeListeners]) {
      try {
        listener(change);
      } catch (err) {
        this.#log.error({ err, index: change.index }, 'catalog change listener threw');
      }
    }
  }

  /** Publishes applied changes to streams and blocking queries, in index order. */
  readonly #publishPending = (): void => {
    const outcomes = this.#unpublished;
    if (outcomes.length === 0) return;
    this.#unpublished = [];
    const counts = this.#publishWaiters.map((w) => this.#watchersOf(w.service));
    const services = new Set<string>();
    let catalog = false;
    let kv = false;
    let reserved = false;
    let mesh = false;
    let sessions = false;
    for (const outcome of outcomes) {
      sessions ||= outcome.sessionsChanged;
      mesh ||= outcome.mesh.length > 0;
      catalog ||= outcome.changes.length > 0 || outcome.nodeChanged;
      kv ||= outcome.kvChanged;
      reserved ||= outcome.reservedChanged;
      // Every service's Consul health answer carries the node's checks.
      if (outcome.nodeChanged) for (const s of this.#view.serviceNames()) services.add(s);
      for (const c of outcome.changes) {
        services.add(c.service);
        if (c.kind === 'delete') {
          this.#fanout.publish(c.service, {
            type: 'delete',
            index: c.index,
            id: c.id,
            service: c.service,
          });
        } else if (this.#fanout.wants(c.service)) {
          const instance = this.#view.dto(c.id);
          if (instance !== undefined)
            this.#fanout.publish(c.service, { type: 'upsert', index: c.index, instance });
        }
      }
    }
    for (const s of services) this.#hub.publish(serviceTopic(s));
    if (catalog) this.#hub.publish('catalog');
    if (kv) this.#hub.publish('kv');
    if (reserved) this.#hub.publish('reserved');
    if (mesh) this.#hub.publish('mesh');
    if (sessions) this.#hub.publish('session');
    // Every outcome the view has applied is published now.
    this.#publishedIndex = this.#view.index;
    const waiters = this.#publishWaiters.splice(0);
    waiters.forEach((w, i) => {
      if (w.index <= this.#publishedIndex) w.resolve(counts[i] as WatchersNotified);
      else this.#publishWaiters.push(w);
    });
  };
}
