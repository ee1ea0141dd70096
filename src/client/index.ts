/** @module meshwork/client: the SDK. Imports only core/ and protocol/. */
export {
  RegistryClient,
  createRegistryClient,
  DEFAULT_REGISTRY_CLIENT_OPTIONS,
} from './registry-client.js';
export type { RegistryClientOptions, InstanceQuery } from './registry-client.js';
export type { RegistryTlsOptions } from './tls-files.js';
export * from '../protocol/api-types.js';
export type { RegistrationInput, CheckInput } from '../protocol/registration.js';
export { MeshError, isMeshError, ERROR_CODES } from '../core/errors.js';
export {
  ServiceDiscovery,
  createServiceDiscovery,
  select as selectInstances,
  DEFAULT_SERVICE_DISCOVERY_OPTIONS,
} from './discovery.js';
export type {
  ServiceDiscoveryOptions,
  DiscoverFilter,
  ServiceCacheState,
  ServiceDiscoveryEvents,
} from './discovery.js';
export {
  SelfRegistration,
  registerSelf,
  DEFAULT_SELF_REGISTRATION_OPTIONS,
} from './self-registration.js';
export type {
  HeartbeatReport,
  SelfRegistrationOptions,
  SelfRegistrationEvents,
} from './self-registration.js';
export {
  HealthEndpoints,
  createHealthEndpoints,
  HEALTH_PATHS,
  DEFAULT_HEALTH_ENDPOINTS_OPTIONS,
} from './health-endpoints.js';
export type {
  HealthEndpointsOptions,
  DependencyCheck,
  ProbeKind,
  HealthReport,
} from './health-endpoints.js';
export { installGracefulShutdown, DEFAULT_GRACEFUL_SHUTDOWN_OPTIONS } from './graceful-shutdown.js';
export type { GracefulShutdown, GracefulShutdownOptions } from './graceful-shutdown.js';
export {
  createBalancer,
  toEndpoints,
  BALANCER_TYPES,
  DEFAULT_LEAST_REQUEST_OPTIONS,
  DEFAULT_MAGLEV_OPTIONS,
  DEFAULT_RING_HASH_OPTIONS,
  DEFAULT_ZONE_AWARE_OPTIONS,
} from './balancers/index.js';
export type {
  Balancer,
  BalancerOptions,
  BalancerSpec,
  BalancerType,
  Endpoint,
  PickContext,
  ResolvedBalancerSpec,
} from './balancers/index.js';
export * from './resilience/index.js';
export {
  MeshworkClient,
  createMeshworkClient,
  DEFAULT_MESHWORK_CLIENT_OPTIONS,
} from './mesh-client.js';
export type { MeshworkClientOptions } from './mesh-client.js';
export { createMeshInterceptor, defaultIsService } from './mesh-dispatcher.js';
export type { MeshInterceptorOptions, ServiceCluster } from './mesh-dispatcher.js';
export {
  MeshSubscriber,
  DEFAULT_MESH_SUBSCRIBER_OPTIONS,
  SNAPSHOT_FILE as MESH_SNAPSHOT_FILE,
} from './mesh-subscriber.js';
export type {
  MeshSubscriberOptions,
  MeshSubscriberEvents,
  MeshStartSource,
} from './mesh-subscriber.js';
export type {
  MeshSnapshot,
  ProxyIdentity,
  ProxyStatus,
  ProxyStatusList,
  PushAck,
  PushFrame,
} from '../protocol/mesh/snapshot.js';
