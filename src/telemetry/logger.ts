/** @module createLogger: structured pino logs on stderr (stdout is for command results). */
import { destination, pino } from 'pino';
import type { Logger } from '../core/logger.js';

export type LogLevel = 'error' | 'warn' | 'info' | 'debug' | 'silent';
export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug', 'silent'];

/** A pino logger writing JSON lines to stderr (fd 2), synchronously so nothing is lost at exit. */
export function createLogger(options: { level: LogLevel; name?: string }): Logger {
  return pino(
    { level: options.level, name: options.name ?? 'meshwork', base: { pid: process.pid } },
    destination({ fd: 2, sync: true }),
  ) as unknown as Logger;
}
