/** @module meshwork/testing: fakes for unit tests of code that uses Meshwork. */
export { FakeClock, flushMicrotasks } from './fake-clock.js';
export { FakeDiscovery, seededRandom } from './fake-discovery.js';
export {
  FakeMeshCatalog,
  fakeInstance,
  fakeResource,
  fakeStored,
  type FakeMeshCatalogReads,
} from './fake-mesh-catalog.js';
