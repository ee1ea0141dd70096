/** @module core: domain types, errors, clock, logger. No I/O; imports nothing else. */
export * from './errors.js';
export * from './types.js';
export * from './clock.js';
export * from './logger.js';
export * from './duration.js';
export * from './discovery.js';
