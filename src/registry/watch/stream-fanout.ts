/**
 * @module StreamFanout: pushes watch events to streaming watchers (SSE). Each event is serialised
 * once and handed to every sink; a sink that cannot keep up is dropped (and told to resync)
 * instead of stalling the others.
 */
import type { WatchEvent } from '../../protocol/api-types.js';
import type { StreamSink } from '../catalog-facade.js';

/** Serialises an event as one server-sent-events frame. */
export function sseFrame(event: WatchEvent): string {
  return `event: ${event.type}\nid: ${event.index}\ndata: ${JSON.stringify(event)}\n\n`;
}

/** Fan-out of watch events to per-service and catalog-wide streams. */
export class StreamFanout {
  /** '' = the whole catalog. */
  readonly #sinks = new Map<string, Set<StreamSink>>();
  #count = 0;
  #dropped = 0;

  get streams(): number {
    return this.#count;
  }

  /** Watchers dropped for being too slow, since start. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Streams that receive events about `service`: its own and the catalog-wide ones. */
  streamsOf(service: string): number {
    return (this.#sinks.get(service)?.size ?? 0) + (this.#sinks.get('')?.size ?? 0);
  }

  /** Whether any stream would receive an event about `service` (skip building events if not). */
  wants(service: string): boolean {
    return this.#sinks.has(service) || this.#sinks.has('');
  }

  /** Adds a sink for `service` (or the whole catalog when undefined); returns the unsubscribe. */
  subscribe(service: string | undefined, sink: StreamSink): () => void {
    const key = service ?? '';
    let set = this.#sinks.get(key);
    if (set === undefined) {
      set = new Set();
      this.#sinks.set(key, set);
    }
    set.add(sink);
    this.#count++;
    return () => this.#remove(key, sink);
  }

  /** Ends every stream (at shutdown). */
  closeAll(): void {
    const all = [...this.#sinks.values()];
    this.#sinks.clear();
    this.#count = 0;
    for (const set of all) for (const sink of set) sink.close?.();
  }

  /** Publishes an event about `service` to its streams and the catalog-wide streams. */
  publish(service: string, event: WatchEvent): void {
    const forService = this.#sinks.get(service);
    const forAll = this.#sinks.get('');
    if (forService === undefined && forAll === undefined) return;
    const frame = sseFrame(event);
    if (forService !== undefined) this.#deliver(service, forService, frame, event.index);
    if (forAll !== undefined) this.#deliver('', forAll, frame, event.index);
  }

  #deliver(key: string, sinks: Set<StreamSink>, frame: string, index: number): void {
    for (const sink of sinks) {
      if (!sink.write(frame)) {
        this.#remove(key, sink);
        this.#dropped++;
        sink.drop(
          sseFrame({ type: 'reset', index, reason: 'watcher too slow; reconnect to resync' }),
        );
      }
    }
  }

  #remove(key: string, sink: StreamSink): void {
    const set = this.#sinks.get(key);
    if (set?.delete(sink) === true) {
      this.#count--;
      if (set.size === 0) this.#sinks.delete(key);
    }
  }
}
