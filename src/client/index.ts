/** @module meshwork/client: the SDK. Imports only core/ and protocol/. */
export {
  RegistryClient,
  createRegistryClient,
  DEFAULT_REGISTRY_CLIENT_OPTIONS,
} from './registry-client.js';
export type { RegistryClientOptions, InstanceQuery } from './registry-client.js';
export * from '../protocol/api-types.js';
export type { RegistrationInput, CheckInput } from '../protocol/registration.js';
export { MeshError, isMeshError, ERROR_CODES } from '../core/errors.js';
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
