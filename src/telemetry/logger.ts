/** @module createLogger: structured pino logs on stderr (stdout is for command results). */
import { destination, pino, type Logger as PinoLogger } from 'pino';
import type { LogFields, Logger } from '../core/logger.js';

export type LogLevel = 'error' | 'warn' | 'info' | 'debug' | 'silent';
export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug', 'silent'];

/**
 * A pino logger writing JSON lines to stderr (fd 2), synchronously so nothing is lost at exit.
 * A child's binding replaces its parent's binding of the same key, so each line holds one
 * `component` key: the innermost component's.
 */
export function createLogger(options: { level: LogLevel; name?: string }): Logger {
  const root = pino(
    { level: options.level, name: options.name ?? 'meshwork', base: { pid: process.pid } },
    destination({ fd: 2, sync: true }),
  );
  return new MergingPinoLogger(root, {});
}

/**
 * pino's `child()` appends its bindings to the parent's, so a child of a child repeats a key both
 * bind (`"component":"registry","component":"health"`): a duplicate key in one JSON object. Here
 * every child is made from the root with the bindings merged, the child's values winning.
 */
class MergingPinoLogger implements Logger {
  readonly #root: PinoLogger;
  readonly #bindings: LogFields;
  readonly #log: PinoLogger;

  constructor(root: PinoLogger, bindings: LogFields) {
    this.#root = root;
    this.#bindings = bindings;
    this.#log = Object.keys(bindings).length === 0 ? root : root.child(bindings);
  }

  error(fields: LogFields, msg: string): void {
    this.#log.error(fields, msg);
  }

  warn(fields: LogFields, msg: string): void {
    this.#log.warn(fields, msg);
  }

  info(fields: LogFields, msg: string): void {
    this.#log.info(fields, msg);
  }

  debug(fields: LogFields, msg: string): void {
    this.#log.debug(fields, msg);
  }

  child(bindings: LogFields): Logger {
    return new MergingPinoLogger(this.#root, { ...this.#bindings, ...bindings });
  }
}
