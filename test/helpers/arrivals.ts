/** @module Test helper: items that arrive over time (stream frames, events), awaited by count. */

export interface Arrivals<T> {
  readonly items: T[];
  /** Adds items and wakes the waiters they satisfy. */
  push(...items: T[]): void;
  /** Resolves once at least `n` items arrived. */
  until(n: number): Promise<void>;
}

export function arrivals<T>(): Arrivals<T> {
  const items: T[] = [];
  const waiters = new Set<() => void>();
  return {
    items,
    push: (...more) => {
      items.push(...more);
      for (const w of [...waiters]) w();
    },
    until: (n) =>
      new Promise<void>((resolve) => {
        const check = (): void => {
          if (items.length >= n) {
            waiters.delete(check);
            resolve();
          }
        };
        waiters.add(check);
        check();
      }),
  };
}
