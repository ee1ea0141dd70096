/** @module PriorityBalancer: lowest priority first, for every balancer kind (RFC 2782). */
import type { Balancer, Endpoint, PickContext } from './balancer.js';

/**
 * Splits the endpoint set by `priority` and keeps one inner balancer per priority level, in
 * ascending order. A pick asks the best (lowest) level first and the next only when the inner
 * balancer finds nothing there, which happens when all of that level's endpoints are excluded.
 * Levels are kept across updates (matched by priority value), so least-request's in-flight
 * counts and round-robin's position survive a discovery change. With one level, the common
 * case, a pick costs one extra call.
 */
export class PriorityBalancer implements Balancer {
  readonly kind: string;
  readonly #makeLevel: () => Balancer;
  #levels: readonly Balancer[] = [];
  #byPriority = new Map<number, Balancer>();

  constructor(kind: string, makeLevel: () => Balancer) {
    this.kind = kind;
    this.#makeLevel = makeLevel;
  }

  update(endpoints: readonly Endpoint[]): void {
    const groups = new Map<number, Endpoint[]>();
    for (const e of endpoints) {
      const group = groups.get(e.priority);
      if (group === undefined) groups.set(e.priority, [e]);
      else group.push(e);
    }
    const byPriority = new Map<number, Balancer>();
    for (const priority of [...groups.keys()].sort((a, b) => a - b)) {
      const level = this.#byPriority.get(priority) ?? this.#makeLevel();
      level.update(groups.get(priority)!);
      byPriority.set(priority, level);
    }
    this.#byPriority = byPriority;
    this.#levels = [...byPriority.values()];
  }

  pick(ctx?: PickContext): Endpoint | undefined {
    const levels = this.#levels;
    for (let i = 0; i < levels.length; i++) {
      const e = levels[i]!.pick(ctx);
      if (e !== undefined) return e;
    }
    return undefined;
  }

  // An id is in one level at most; the others ignore it, as they ignore ids they never had.
  started(id: string): void {
    const levels = this.#levels;
    for (let i = 0; i < levels.length; i++) levels[i]!.started(id);
  }

  finished(id: string): void {
    const levels = this.#levels;
    for (let i = 0; i < levels.length; i++) levels[i]!.finished(id);
  }
}
