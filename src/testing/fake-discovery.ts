/** @module FakeDiscovery: a Discovery over a plain list, and a seeded random source, for unit tests. */
import type { DiscoveredInstance, DiscoveredNode, Discovery } from '../core/discovery.js';

/**
 * A {@link Discovery} over instances a test sets. Every `set()` moves the index, as a catalog
 * change does.
 */
export class FakeDiscovery implements Discovery {
  index = 1;
  #instances: DiscoveredInstance[] = [];
  #nodes: DiscoveredNode[];

  constructor(
    instances: readonly Partial<DiscoveredInstance>[] = [],
    nodes: DiscoveredNode[] = [],
  ) {
    this.#nodes = nodes;
    this.set(instances);
  }

  /** Replaces the catalog; missing fields get defaults (passing, weight 1, priority 0, port 80). */
  set(instances: readonly Partial<DiscoveredInstance>[]): void {
    this.#instances = instances.map((i, n) => ({
      id: `i${n}`,
      service: 'web',
      address: `10.0.0.${n + 1}`,
      port: 80,
      ports: {},
      tags: [],
      meta: {},
      weights: { passing: 1, warning: 1 },
      priority: 0,
      status: 'passing',
      ...i,
    }));
    this.index++;
  }

  serviceIndex(): number {
    return this.index;
  }

  instances(service: string): readonly DiscoveredInstance[] {
    return this.#instances.filter((i) => i.service === service);
  }

  instancesByAddress(address: string): readonly DiscoveredInstance[] {
    return this.#instances.filter((i) => i.address === address);
  }

  node(name: string): DiscoveredNode | undefined {
    return this.#nodes.find((n) => n.name.toLowerCase() === name.toLowerCase());
  }

  nodes(): readonly DiscoveredNode[] {
    return this.#nodes;
  }
}

/** A deterministic [0, 1) source (mulberry32), so shuffles in tests repeat. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
