/**
 * @module The access log's options, shared by the sidecar's and the gateway's schemas: where
 * (`--access-log <path|stdout|off>`) and how much (`--access-log-sample <0..1>`).
 */
import { z } from 'zod';

/** `stdout`, `off`, or a file path (appended to, its directory made). */
export const accessLogSchema = z
  .string({ error: 'must be stdout, off or a file path' })
  .min(1, 'must be stdout, off or a file path')
  .max(4096, 'must be at most 4096 characters')
  .refine((v) => !v.includes('\0'), 'must not contain a NUL character');

/**
 * The share of successful requests logged: 0 (none: failed ones only) to 1 (every one). A failed
 * request (5xx, no response, a response flag) is always logged.
 */
export const accessLogSampleSchema = z
  .number({ error: 'must be a number from 0 to 1' })
  .min(0, 'must be a number from 0 to 1')
  .max(1, 'must be a number from 0 to 1');
