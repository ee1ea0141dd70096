/** @module Limits on registration fields and request sizes (shared by server and SDK). */

export const LIMITS = Object.freeze({
  /** Request bodies larger than this are refused with 413. */
  maxBodyBytes: 1024 * 1024,
  /** Request URLs (path and query) longer than this are refused with 414. */
  maxUrlBytes: 8 * 1024,
  /** Path segments (an id, a service name) longer than this are refused with 414. */
  maxParamLength: 1024,
  /** Request heads (request line and headers) larger than this are refused with 431. */
  maxHeaderBytes: 16 * 1024,
  maxIdLength: 128,
  maxAddressLength: 253,
  maxTags: 64,
  maxTagLength: 255,
  /** Consul's limits on service meta. */
  maxMetaPairs: 64,
  maxMetaKeyLength: 128,
  maxMetaValueLength: 512,
  maxPorts: 32,
  maxProtocols: 16,
  maxChecks: 32,
  maxHeaders: 32,
  maxOutputLength: 4096,
  maxKvKeyLength: 512,
  maxKvValueBytes: 512 * 1024,
  maxApplyInstances: 10_000,
});
