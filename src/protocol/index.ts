/** @module protocol: wire shapes shared by server and client, and their schemas. */
export * from './api-types.js';
export * from './limits.js';
export * from './registration.js';
export * from './validation.js';
