/** @module meshwork: public types and factories. No logic lives here. */
export * from './core/index.js';
export * from './protocol/index.js';
export { createRegistry, Registry } from './registry/registry.js';
export { DEFAULT_REGISTRY_OPTIONS } from './registry/registry-options.js';
export type { RegistryOptions } from './registry/registry-options.js';
export type {
  CatalogFacade,
  CatalogReader,
  CatalogWatcher,
  CatalogWriter,
  InstanceFilter,
} from './registry/catalog-facade.js';
export type {
  CatalogStore,
  StoreOp,
  StoreEvent,
  StoreSnapshot,
  CommitResult,
} from './registry/store/catalog-store.js';
export {
  createMemoryCatalogStore,
  MemoryCatalogStore,
} from './registry/store/memory/memory-catalog-store.js';
export {
  createSqliteCatalogStore,
  SqliteCatalogStore,
} from './registry/store/sqlite/sqlite-catalog-store.js';
export { createApiServer } from './registry-api/server.js';
export type { ApiServerOptions } from './registry-api/server.js';
export { resolveAgentOptions, DEFAULT_AGENT_OPTIONS } from './agent/options.js';
export type { AgentOptions } from './agent/options.js';
export { createDnsServer, DnsServer } from './dns/dns-server.js';
export type { DnsServerOptions, DnsAddress } from './dns/dns-server.js';
export { DEFAULT_DNS_OPTIONS } from './dns/options.js';
export type { DnsOptions } from './dns/options.js';
export { createRegistryDiscovery } from './registry/discovery-adapter.js';
