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
export * from './resilience/index.js';
