/** @module Test helpers: a started Registry on the memory store and a fake clock (unit tests). */
import type { ParsedRegistration } from '../../src/protocol/registration.js';
import { createRegistry, type Registry } from '../../src/registry/registry.js';
import { createMemoryCatalogStore } from '../../src/registry/store/memory/memory-catalog-store.js';
import { FakeClock } from '../../src/testing/fake-clock.js';

/** A minimal registration of `id` in `service` at 10.0.0.1:80. */
export const registration = (service: string, id: string): ParsedRegistration => ({
  service,
  id,
  address: '10.0.0.1',
  port: 80,
});

/** A registry on a new memory store, with a fake clock and no jitter, started. */
export async function startMemoryRegistry(): Promise<{ registry: Registry; clock: FakeClock }> {
  const clock = new FakeClock();
  const registry = createRegistry({
    store: createMemoryCatalogStore(),
    nodeName: 'n1',
    clock,
    random: () => 0,
  });
  await registry.start();
  return { registry, clock };
}
